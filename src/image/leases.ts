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

/** Runs one promise per key at a time; concurrent callers with the same key share it. */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  run(key: string, task: () => Promise<T>): Promise<T> {
    const existing = this.running.get(key);
    if (existing) return existing;
    const p = task().finally(() => this.running.delete(key));
    this.running.set(key, p);
    return p;
  }
}

/** Maps items with at most `limit` in flight; rejects with the first error. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
