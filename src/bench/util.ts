/**
 * Benchmark plumbing: bounded waits, a cleanup stack that runs once (on success, error or
 * signal), mount-aware directory removal, and process helpers.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { MNT_DETACH, native } from "../common/native.js";

export { sleep };

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

export class TimeoutError extends Error {}

/** Resolves like `p`, or rejects with TimeoutError after `ms` (the work itself is not cancelled). */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what}: no result after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Last-in first-out cleanup actions; each runs at most once and is bounded in time. */
export class Cleanup {
  private readonly actions: Array<{ id: number; what: string; fn: () => Promise<void> }> = [];
  private nextId = 1;

  /** Registers an action; the returned function runs it now (and unregisters it). */
  add(what: string, fn: () => Promise<void>): () => Promise<void> {
    const id = this.nextId++;
    this.actions.push({ id, what, fn });
    return async () => {
      const i = this.actions.findIndex((a) => a.id === id);
      if (i < 0) return;
      const [action] = this.actions.splice(i, 1);
      if (action) await this.runOne(action);
    };
  }

  async runAll(): Promise<void> {
    for (let a = this.actions.pop(); a; a = this.actions.pop()) await this.runOne(a);
  }

  private async runOne(a: { what: string; fn: () => Promise<void> }): Promise<void> {
    try {
      await withTimeout(a.fn(), 60_000, `cleanup: ${a.what}`);
    } catch (err) {
      log(`cleanup of ${a.what} failed: ${errorText(err)}`);
    }
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Mount points at or below `dir` (from /proc/self/mountinfo), deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const decodeOctal = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const points = text
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map(decodeOctal)
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Lazily unmounts everything below `dir`, then removes it. */
export async function removeTree(dir: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const mounts = await mountsUnder(dir);
    if (mounts.length === 0) break;
    for (const m of mounts) {
      await native()
        .umount2(m, MNT_DETACH)
        .catch((err: unknown) => log(`umount ${m}: ${errorText(err)}`));
    }
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited (bounded). */
export async function terminate(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  try {
    await withTimeout(exited, graceMs, `pid ${child.pid} exit after SIGTERM`);
  } catch {
    child.kill("SIGKILL");
    await withTimeout(exited, 10_000, `pid ${child.pid} exit after SIGKILL`);
  }
}

/** Pids whose command line contains `needle` (used only with unique temp paths we created). */
export async function pidsWithArg(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (cmdline.split("\0").includes(needle)) out.push(Number(name));
  }
  return out;
}

export function run(file: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(" ")}: ${errorText(err)} ${stderr}`.trim()));
      else resolve(`${stdout}`);
    });
  });
}

/** Flushes dirty pages so one run's writeback does not slow the next. */
export async function syncDisks(): Promise<void> {
  await run("sync", [], 120_000).catch((err: unknown) => log(`sync: ${errorText(err)}`));
}
