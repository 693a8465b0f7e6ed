/**
 * The one process runner: every one-shot runc, conmon, unshare, nsenter and CNI plugin
 * invocation goes through a `Runner` (no shell), so tests can inject a fake and the real one
 * lives in one place. (A streamed exec's runc is the exception: its stdio is the session's.)
 */
import { Socket } from "node:net";
import { constants } from "node:os";
import type { Duplex } from "node:stream";
import { errnoCode, failedPrecondition, internal } from "./errors.js";
import { native, SLOT_NULL, SLOT_PAIR, SLOT_PIPE_IN, SLOT_PIPE_OUT } from "./native.js";

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

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

function envList(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out.push(`${k}=${v}`);
  return out;
}

function slot(t: OutputTarget): number {
  return t === "pipe" ? SLOT_PIPE_OUT : t === "ignore" ? SLOT_NULL : t;
}

/**
 * Runs `cmd` and resolves when it has exited and its captured stdout/stderr are drained. Rejects
 * only when the process cannot be started (missing binary → FailedPrecondition); a non-zero
 * exit is a normal result for the caller to interpret.
 *
 * The child is started by the native addon (vfork + exec), not child_process.spawn: libuv forks
 * the whole daemon (2–4 ms of blocked event loop for a 100 MB process), vfork copies
 * nothing. `cmd` without a slash is looked up in berthd's own PATH.
 */
export const run: Runner = (cmd, args, opts = {}) =>
  new Promise<RunResult>((resolve, reject) => {
    const stdio = [
      opts.input === undefined ? SLOT_NULL : SLOT_PIPE_IN,
      slot(opts.stdout ?? "pipe"),
      slot(opts.stderr ?? "pipe"),
      ...Array.from({ length: opts.extraPipes ?? 0 }, () => SLOT_PAIR),
    ];
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const max = opts.maxOutput ?? 16 * 1024 * 1024;
    const keep = (into: Buffer[], d: Buffer) => {
      const room = max - into.reduce((n, b) => n + b.length, 0);
      if (room > 0) into.push(d.length > room ? d.subarray(0, room) : d);
    };
    let pending = 1; // the exit plus each captured stream's 'close'
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;

    const finish = () => {
      if (--pending > 0) return;
      if (timer) clearTimeout(timer);
      resolve({
        exitCode,
        signal: exitSignal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    };

    let child: { pid: number; fds: number[] };
    try {
      child = native().spawn(
        cmd,
        [cmd, ...args],
        envList(opts.env ?? process.env),
        opts.cwd ?? null,
        stdio,
        opts.detached ?? false,
        (status) => {
          const sig = status & 0x7f;
          if (sig === 0) exitCode = (status >> 8) & 0xff;
          else exitSignal = SIGNAL_NAMES.get(sig) ?? "SIGKILL";
          finish();
        },
      );
    } catch (e) {
      reject(
        errnoCode(e) === "ENOENT"
          ? failedPrecondition(`cannot run ${cmd}: executable not found`, e)
          : internal(`cannot run ${cmd}: ${e instanceof Error ? e.message : String(e)}`, e),
      );
      return;
    }
    const pid = child.pid;
    const socket = (i: number, readable: boolean): Socket | undefined => {
      const fd = child.fds[i] ?? -1;
      return fd < 0 ? undefined : new Socket({ fd, readable, writable: !readable || i >= 3 });
    };
    const capture = (s: Socket | undefined, into: Buffer[]) => {
      if (!s) return;
      pending++;
      s.on("data", (d: Buffer) => keep(into, d));
      s.on("error", () => {});
      s.on("close", finish);
    };
    const stdin = socket(0, false);
    capture(socket(1, true), out);
    capture(socket(2, true), err);
    const pipes = stdio.slice(3).map((_, i) => socket(3 + i, true)!);

    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        native().killChild(pid, constants.signals.SIGKILL);
      }, opts.timeoutMs);
    }
    if (stdin && opts.input !== undefined) {
      stdin.on("error", () => {}); // EPIPE if the child does not read its input
      stdin.end(opts.input);
    }
    opts.onSpawn?.({ pid, pipes, kill: (sig) => native().killChild(pid, constants.signals[sig]) });
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
