/**
 * Reading positions, kept in one JSON document in the state dir and replaced atomically
 * (temp file, fsync, rename, fsync of the directory), so a collector killed at any moment
 * leaves the old or the new positions, never a torn file. A position is set only after the
 * sinks acknowledged everything before it; the file is written on a timer and at shutdown
 * (a SIGKILL may repeat up to one interval of records, never lose any).
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { SerialQueue, writeFileAtomic } from "../store/atomic.js";
import type { FilePosition } from "./file-tail.js";

export interface SourceCheckpoint {
  position?: FilePosition;
  /** Read to the end after its container exited: nothing more will come. */
  done?: boolean;
  /** When it was last set (ms since the epoch). */
  updated: number;
}

interface Document {
  version: 1;
  sources: Record<string, SourceCheckpoint>;
}

export class CheckpointStore {
  private sources = new Map<string, SourceCheckpoint>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly queue = new SerialQueue();
  readonly file: string;

  constructor(
    readonly dir: string,
    private readonly intervalMs = 1000,
  ) {
    this.file = join(dir, "checkpoints.json");
  }

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const doc = JSON.parse(text) as Document;
    if (doc.version !== 1 || typeof doc.sources !== "object") {
      throw new Error(`${this.file}: not a berth-collector checkpoint file (version ${String(doc.version)})`);
    }
    this.sources = new Map(Object.entries(doc.sources));
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush().catch(() => {}), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  get(key: string): SourceCheckpoint | undefined {
    return this.sources.get(key);
  }

  set(key: string, cp: Omit<SourceCheckpoint, "updated">): void {
    this.sources.set(key, { ...cp, updated: Date.now() });
    this.dirty = true;
  }

  delete(key: string): void {
    if (this.sources.delete(key)) this.dirty = true;
  }

  keys(): string[] {
    return [...this.sources.keys()];
  }

  /** Writes the document if anything changed since the last write. */
  flush(): Promise<void> {
    return this.queue.run(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const doc: Document = { version: 1, sources: Object.fromEntries(this.sources) };
      try {
        await writeFileAtomic(this.file, `${JSON.stringify(doc)}\n`, 0o600);
      } catch (err) {
        this.dirty = true;
        throw err;
      }
    });
  }
}
