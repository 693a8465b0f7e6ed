/**
 * Disk usage of a directory tree (a container's writable layer), as `du` and containerd's
 * snapshot usage count it: bytes are allocated blocks (st_blocks × 512), inodes are distinct
 * (dev, ino) pairs, so a hardlinked file is counted once. Symlinks are counted as themselves and
 * never followed. Entries vanishing mid-walk (the container writing and deleting) are skipped.
 */

import type { BigIntStats } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode } from "../common/errors.js";
import { epochNowNs } from "../common/time.js";

export interface DirUsage {
  bytes: bigint;
  inodes: bigint;
}

/** Gone or replaced between readdir and lstat: not an error for a live tree. */
const VANISHED = new Set(["ENOENT", "ENOTDIR"]);

function vanished(err: unknown): boolean {
  const code = errnoCode(err);
  return code !== undefined && VANISHED.has(code);
}

/** Runs at most `n` of the given tasks at a time (a slot is handed straight to the next waiter). */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next !== undefined) next();
      else active--;
    }
  };
}

export interface DirUsageOptions {
  /** Concurrent readdir/lstat calls (default 32). */
  concurrency?: number;
}

/** Usage of the tree at `root`, root included; zeros when `root` does not exist. */
export async function dirUsage(root: string, opts: DirUsageOptions = {}): Promise<DirUsage> {
  const limit = limiter(Math.max(1, opts.concurrency ?? 32));
  const seen = new Set<string>();
  let bytes = 0n;
  let inodes = 0n;

  const count = (st: BigIntStats): void => {
    if (!st.isDirectory() && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    bytes += st.blocks * 512n;
    inodes += 1n;
  };

  const stat = async (path: string): Promise<BigIntStats | undefined> => {
    try {
      return await limit(() => lstat(path, { bigint: true }));
    } catch (err) {
      if (vanished(err)) return undefined;
      throw err;
    }
  };

  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await limit(() => readdir(dir));
    } catch (err) {
      if (vanished(err)) return;
      throw err;
    }
    await Promise.all(
      names.map(async (name) => {
        const path = join(dir, name);
        const st = await stat(path);
        if (st === undefined) return;
        count(st);
        if (st.isDirectory()) await walk(path);
      }),
    );
  };

  const top = await stat(root);
  if (top === undefined) return { bytes: 0n, inodes: 0n };
  count(top);
  if (top.isDirectory()) await walk(root);
  return { bytes, inodes };
}

export interface TimedDirUsage extends DirUsage {
  /** When the walk started, ns since the epoch. */
  timestampNs: bigint;
}

export interface DirUsageCacheOptions extends DirUsageOptions {
  /** How long a result is reused (default 10 s, containerd's snapshot stats period). */
  ttlNs?: bigint;
  now?: () => bigint;
  /** The walker (tests). */
  measure?: (dir: string) => Promise<DirUsage>;
}

/**
 * Walking a big writable layer on every stats call is expensive: this keeps each directory's
 * last result for `ttlNs` and shares one in-flight walk between concurrent callers.
 */
export class DirUsageCache {
  private readonly done = new Map<string, TimedDirUsage>();
  private readonly running = new Map<string, Promise<TimedDirUsage>>();
  private readonly ttlNs: bigint;
  private readonly now: () => bigint;
  private readonly measure: (dir: string) => Promise<DirUsage>;

  constructor(opts: DirUsageCacheOptions = {}) {
    this.ttlNs = opts.ttlNs ?? 10_000_000_000n;
    this.now = opts.now ?? epochNowNs;
    this.measure = opts.measure ?? ((dir) => dirUsage(dir, opts));
  }

  get(dir: string): Promise<TimedDirUsage> {
    const hit = this.done.get(dir);
    if (hit !== undefined && this.now() - hit.timestampNs < this.ttlNs) return Promise.resolve(hit);
    const inFlight = this.running.get(dir);
    if (inFlight !== undefined) return inFlight;
    const timestampNs = this.now();
    const p: Promise<TimedDirUsage> = this.measure(dir)
      .then((u) => {
        const r: TimedDirUsage = { ...u, timestampNs };
        if (this.running.get(dir) === p) this.done.set(dir, r); // not forgotten meanwhile
        return r;
      })
      .finally(() => {
        if (this.running.get(dir) === p) this.running.delete(dir);
      });
    this.running.set(dir, p);
    return p;
  }

  /** Drops a directory's entry (call when its container is removed). */
  forget(dir: string): void {
    this.done.delete(dir);
    this.running.delete(dir);
  }

  get size(): number {
    return this.done.size;
  }
}
