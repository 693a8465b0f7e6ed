/**
 * One child process, no shell: collects stdout/stderr (capped), writes stdin, kills the
 * process group leader with SIGKILL on timeout. Used for `unshare` and for CNI plugins.
 */
import { spawn } from "node:child_process";

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (stdin is /dev/null when absent). */
  input?: string;
  timeoutMs: number;
  /** Bytes kept of each of stdout and stderr (default 4 MiB); the rest is dropped. */
  maxOutput?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs `file` with `args`; rejects only when the process cannot be started (ENOENT, EACCES…). */
export function runProcess(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const max = opts.maxOutput ?? 4 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    let settled = false;
    child.stdout?.on("data", (b: Buffer) => {
      if (outLen < max) out.push(b.subarray(0, max - outLen));
      outLen += b.length;
    });
    child.stderr?.on("data", (b: Buffer) => {
      if (errLen < max) err.push(b.subarray(0, max - errLen));
      errLen += b.length;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    });
    if (opts.input !== undefined && child.stdin) {
      // A plugin that exits without reading stdin gives EPIPE; the exit status tells the story.
      child.stdin.on("error", () => {});
      child.stdin.end(opts.input);
    }
  });
}

/** The last `n` characters of s, trimmed, for error messages. */
export function tail(s: string, n = 2000): string {
  const t = s.trim();
  return t.length <= n ? t : `…${t.slice(t.length - n)}`;
}
