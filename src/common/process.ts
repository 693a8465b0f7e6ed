/**
 * The one process runner: every one-shot runc, conmon, unshare, nsenter and CNI plugin
 * invocation goes through a `Runner` (no shell), so tests can inject a fake and the real one
 * lives in one place. (A streamed exec's runc is the exception: its stdio is the session's.)
 */
import { spawn } from "node:child_process";
import type { Duplex } from "node:stream";
import { errnoCode, failedPrecondition, internal } from "./errors.js";

/** Where a child's stdout/stderr goes: captured ("pipe"), /dev/null ("ignore") or an open fd we own. */
export type OutputTarget = "pipe" | "ignore" | number;

export interface RunOptions {
  /** Written to the child's stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL the child after this long; the result then has `timedOut: true`. */
  timeoutMs?: number;
  /** Start the child in a new session (setsid), so signals to our process group miss it. */
  detached?: boolean;
  stdout?: OutputTarget;
  stderr?: OutputTarget;
  /**
   * Number of extra socketpair ends handed to the child as fds 3, 4, ... They are given to
   * `onSpawn`; the runner does not wait for them to close (a daemonizing child may keep them).
   */
  extraPipes?: number;
  /** Bytes kept of each captured stream (default 16 MiB); the rest is read and dropped. */
  maxOutput?: number;
  /** Called once the child has been spawned, before it exits. */
  onSpawn?: (child: SpawnedChild) => void;
}

export interface SpawnedChild {
  pid: number;
  /** Our ends of the extra pipes: index 0 is the child's fd 3. */
  pipes: Duplex[];
  kill(signal: NodeJS.Signals): void;
}

export interface RunResult {
  /** null when killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export type Runner = (cmd: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

/**
 * Runs `cmd` and resolves when it has exited and its captured stdout/stderr are drained. Rejects
 * only when the process cannot be started (missing binary → FailedPrecondition); a non-zero
 * exit is a normal result for the caller to interpret.
 */
export const run: Runner = (cmd, args, opts = {}) =>
  new Promise<RunResult>((resolve, reject) => {
    const extra: "pipe"[] = Array.from({ length: opts.extraPipes ?? 0 }, () => "pipe");
    const stdoutTarget = opts.stdout ?? "pipe";
    const stderrTarget = opts.stderr ?? "pipe";
    const child = spawn(cmd, [...args], {
      stdio: [opts.input === undefined ? "ignore" : "pipe", stdoutTarget, stderrTarget, ...extra],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: opts.detached ?? false,
    });

    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const max = opts.maxOutput ?? 16 * 1024 * 1024;
    const keep = (into: Buffer[], d: Buffer) => {
      const room = max - into.reduce((n, b) => n + b.length, 0);
      if (room > 0) into.push(d.length > room ? d.subarray(0, room) : d);
    };
    let pending = 1; // 'exit' plus each captured stream's 'close'
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let timedOut = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;

    const finish = () => {
      if (--pending > 0 || settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({
        exitCode,
        signal: exitSignal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    };

    if (child.stdout) {
      pending++;
      child.stdout.on("data", (d: Buffer) => keep(out, d));
      child.stdout.on("close", finish);
    }
    if (child.stderr) {
      pending++;
      child.stderr.on("data", (d: Buffer) => keep(err, d));
      child.stderr.on("close", finish);
    }
    child.on("error", (e) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      for (const s of child.stdio) s?.destroy();
      reject(
        errnoCode(e) === "ENOENT"
          ? failedPrecondition(`cannot run ${cmd}: executable not found`, e)
          : internal(`cannot run ${cmd}: ${e.message}`, e),
      );
    });
    child.on("spawn", () => {
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, opts.timeoutMs);
      }
      if (opts.input !== undefined && child.stdin) {
        child.stdin.on("error", () => {}); // EPIPE if the child does not read its input
        child.stdin.end(opts.input);
      }
      if (opts.onSpawn && child.pid !== undefined) {
        const pipes = child.stdio.slice(3).filter((s): s is NonNullable<typeof s> => s != null) as Duplex[];
        opts.onSpawn({ pid: child.pid, pipes, kill: (sig) => child.kill(sig) });
      }
    });
    child.on("exit", (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      finish();
    });
  });

/** The last `n` characters of s, trimmed, for error messages. */
export function tail(s: string, n = 2000): string {
  const t = s.trim();
  return t.length <= n ? t : `…${t.slice(t.length - n)}`;
}

/** "exit status 3" / "killed by SIGKILL" for messages. */
export function describeExit(r: RunResult): string {
  if (r.timedOut) return "timed out";
  return r.exitCode !== null ? `exit status ${r.exitCode}` : `killed by ${r.signal ?? "signal"}`;
}
