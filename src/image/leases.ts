/**
 * Leases keep content and snapshots that a pull or import is still assembling safe from
 * garbage collection until the image record that references them is saved.
 */
export class Leases {
  private readonly held = new Map<string, number>();

  acquire(keys: Iterable<string>): () => void {
    const list = [...keys];
    for (const k of list) this.held.set(k, (this.held.get(k) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of list) {
        const n = (this.held.get(k) ?? 1) - 1;
        if (n <= 0) this.held.delete(k);
        else this.held.set(k, n);
      }
    };
  }

  has(key: string): boolean {
    return this.held.has(key);
  }
}
