/**
 * Exec in a running container: `runc --root <root> exec --process <file> --pid-file <file> <id>`
 * as our child, exiting with the process's exit status (128+n for a signal). When the client
 * goes away (io.signal), the exec'd process is SIGKILLed by the pid runc wrote, and runc with it.
 *
 *  - without a tty, runc's stdio pipes go straight to the process;
 *  - with a tty (as CRI-O does), runc runs in the foreground on a pty of ours: it allocates the
 *    container's terminal and copies between it and its own stdio. A resize sets our pty's size
 *    and sends runc SIGWINCH, on which runc copies the size to the container's terminal. The pty
 *    master is served by the addon's relay thread (Node cannot stream a pty without blocking).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { close } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { invalidArgument } from "../common/errors.js";
import { native } from "../common/native.js";
import type { ExecIO } from "../streaming/remotecommand.js";
import { applyResizes } from "./attach.js";
import { runtimeError } from "./runc.js";

/** The OCI runtime-spec `process` object (what `runc exec --process` reads). */
export interface OciProcess {
  args: string[];
  env?: string[];
  cwd: string;
  user?: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
  terminal?: boolean;
  [key: string]: unknown;
}

export interface RuncExecOptions {
  runtimePath: string;
  runtimeRoot: string;
  /** More global flags after --root (the handler's runtime_args). */
  runtimeArgs?: readonly string[];
  containerId: string;
  processSpec: OciProcess;
  tty: boolean;
  /** Directory for the process/pid files. Default os.tmpdir(). */
  tmpDir?: string;
  /**
   * For a sandbox runtime (runsc), whose exec'd process runs inside the sandbox, not below the
   * runtime process: kills it by its pid in the sandbox (`--internal-pid-file`).
   */
  killInSandbox?: (pid: number) => Promise<void>;
}

/** Runs the process; resolves with its exit code (128+signal if killed by a signal). */
export async function runcExec(o: RuncExecOptions, io: ExecIO): Promise<number> {
  if (o.processSpec.args.length === 0) throw invalidArgument("exec: empty command");
  if (io.signal.aborted) throw new Error("client disconnected");
  const dir = await mkdtemp(join(o.tmpDir ?? tmpdir(), "berth-exec-"));
  try {
    const processFile = join(dir, "process.json");
    const pidFile = join(dir, "pid");
    const internalPidFile = join(dir, "internal-pid");
    const args = [
      "--root",
      o.runtimeRoot,
      ...(o.runtimeArgs ?? []),
      "exec",
      "--process",
      processFile,
      "--pid-file",
      pidFile,
      ...(o.killInSandbox ? ["--internal-pid-file", internalPidFile] : []),
      o.containerId,
    ];
    const kill = async (runtimePid: number | undefined) => {
      if (o.killInSandbox) {
        const pid = Number.parseInt(await readFile(internalPidFile, "utf8").catch(() => ""), 10);
        if (pid > 0) await o.killInSandbox(pid).catch(() => {});
      }
      await killExec(pidFile, runtimePid);
    };
    await writeFile(processFile, JSON.stringify(execProcess(o.processSpec, o.tty)), { mode: 0o600 });
    if (o.tty) return await ttyExec(o.runtimePath, args, kill, io);
    const child = spawn(o.runtimePath, args, {
      stdio: [io.stdin ? "pipe" : "ignore", io.stdout ? "pipe" : "ignore", "pipe"],
    });
    // runc's own complaints (e.g. "container not running") come on stderr too; keep a tail for
    // the error message when runc fails before starting the process.
    let runcErr = "";
    const exited = childExit(child);
    if (io.stdin && child.stdin) {
      child.stdin.on("error", () => {}); // EPIPE once the process is gone
      io.stdin.pipe(child.stdin);
    }
    const outputs: Promise<void>[] = [];
    if (io.stdout && child.stdout) outputs.push(copy(child.stdout, io.stdout));
    if (child.stderr) {
      const target = io.stderr;
      child.stderr.on("data", (b: Buffer) => {
        runcErr = (runcErr + b.toString("utf8")).slice(-4096);
        target?.write(b);
      });
      outputs.push(
        new Promise((resolve) => {
          child.stderr!.once("close", () => resolve());
        }),
      );
    }

    const onAbort = () => void kill(child.pid);
    io.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const r = await exited;
      if (r.error) throw r.error;
      // The output pipes may stay open in a background child of the process; don't wait forever.
      await Promise.race([Promise.all(outputs), new Promise((res) => setTimeout(res, 2000).unref())]);
      child.stdout?.destroy();
      child.stderr?.destroy();
      if (io.stdin && child.stdin) io.stdin.unpipe(child.stdin);
      if (r.code === null) return 128 + signalNumber(r.signal);
      // runc's own failures (container not found / not running, command not found) come
      // before a pid exists.
      if (r.code !== 0 && !(await exists(pidFile)) && runcErr.trim() !== "") {
        throw runtimeError("exec in", o.containerId, runcErr.trim().split("\n").pop() ?? "");
      }
      return r.code;
    } finally {
      io.signal.removeEventListener("abort", onAbort);
    }
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** What conmon reports for an exec that timed out (its TimedOutMessage), kept for probes. */
export const EXEC_TIMED_OUT_MESSAGE = "command timed out";
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Cap on the output ExecSync keeps per stream (as CRI-O's maxExecSyncSize). */
export const MAX_EXEC_SYNC_OUTPUT = 16 * 1024 * 1024;

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  /** -1 when the command timed out. */
  exitCode: number;
  timedOut: boolean;
}

/** A Writable keeping the first `max` bytes written to it (the rest is read and dropped). */
class CappedSink extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    const room = this.max - this.size;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.chunks.push(part);
      this.size += part.length;
    }
    cb();
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * ExecSync: the command without stdin or a terminal, its output collected (16 MiB a stream at
 * most). A timeout (seconds, 0 = none) SIGKILLs the process and is a result, not an error:
 * exit code -1 and "command timed out" on stderr, which is what kubelet's probes get from CRI-O.
 * A command that cannot be started rejects with an OciRuntimeError naming runc's reason.
 */
export async function runcExecSync(
  o: Omit<RuncExecOptions, "tty">,
  timeoutSec: number,
): Promise<ExecSyncResult> {
  const stdout = new CappedSink(MAX_EXEC_SYNC_OUTPUT);
  const stderr = new CappedSink(MAX_EXEC_SYNC_OUTPUT);
  const timeout = new AbortController();
  // Node's timers hold at most 2^31-1 ms (~24.8 days); a longer timeout is that long.
  const ms = Math.min(timeoutSec * 1000, MAX_TIMER_MS);
  const timer = timeoutSec > 0 ? setTimeout(() => timeout.abort(), ms) : undefined;
  const timedOut: ExecSyncResult = {
    stdout: Buffer.alloc(0),
    stderr: Buffer.from(EXEC_TIMED_OUT_MESSAGE),
    exitCode: -1,
    timedOut: true,
  };
  // Once timed out, the answer does not wait for the killed process's runc for long: a probe
  // must not hang on a process that will not die (e.g. in uninterruptible sleep).
  const deadline = new Promise<"late">((resolve) =>
    timeout.signal.addEventListener("abort", () => setTimeout(() => resolve("late"), 2000).unref(), {
      once: true,
    }),
  );
  try {
    const run = runcExec({ ...o, tty: false }, { stdout, stderr, signal: timeout.signal });
    run.catch(() => {});
    const exitCode = await Promise.race([run, deadline]);
    if (exitCode === "late" || timeout.signal.aborted) return timedOut;
    return { stdout: stdout.data, stderr: stderr.data, exitCode, timedOut: false };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** The exec'd process: the container's spec with the command; a terminal gets TERM if unset. */
export function execProcess(spec: OciProcess, tty: boolean): OciProcess {
  if (!tty) return { ...spec, terminal: false };
  const env = spec.env ?? [];
  return {
    ...spec,
    terminal: true,
    env: env.some((e) => e.startsWith("TERM=")) ? env : [...env, "TERM=xterm"],
  };
}

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

function childExit(child: ChildProcess): Promise<ChildExit> {
  return new Promise((resolve) => {
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

/** The initial terminal size, before the client's first resize arrives. */
const DEFAULT_TTY = { rows: 24, cols: 80 };

async function ttyExec(
  runtimePath: string,
  args: string[],
  kill: (runtimePid: number | undefined) => Promise<void>,
  io: ExecIO,
): Promise<number> {
  const n = native();
  const pty = n.openPty(DEFAULT_TTY.rows, DEFAULT_TTY.cols);
  let slaveOpen = true;
  const closeSlave = () => {
    if (slaveOpen) close(pty.slave, () => {});
    slaveOpen = false;
  };
  let term: net.Socket;
  try {
    term = new net.Socket({ fd: n.startRelay(pty.master, false), readable: true, writable: true });
  } catch (e) {
    close(pty.master, () => {});
    closeSlave();
    throw e;
  }
  term.on("error", () => {});
  const outputDone = new Promise<void>((resolve) => {
    term.once("end", () => resolve());
    term.once("close", () => resolve());
  });
  if (io.stdout) term.pipe(io.stdout, { end: false });
  else term.resume();
  let child: ChildProcess;
  try {
    // runc gets the pty slave as its stdio (its own errors show on the terminal, as with CRI-O).
    child = spawn(runtimePath, args, { stdio: [pty.slave, pty.slave, pty.slave] });
  } catch (e) {
    closeSlave();
    term.destroy();
    throw e;
  }
  const exited = childExit(child);
  if (io.stdin) {
    io.stdin.on("error", () => {});
    io.stdin.pipe(term, { end: false }); // stdin EOF does not end a terminal session
  }
  if (io.resize) {
    void applyResizes(io.resize, (s) => {
      if (!slaveOpen) return;
      n.resizePty(pty.slave, s.height, s.width);
      if (child.pid !== undefined && child.exitCode === null) child.kill("SIGWINCH");
    });
  }
  const onAbort = () => void kill(child.pid);
  io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const r = await exited;
    // runc has copied all the output to our pty; closing our slave lets the relay see EIO.
    closeSlave();
    if (r.error) throw r.error;
    await Promise.race([outputDone, new Promise((res) => setTimeout(res, 2000).unref())]);
    if (r.code === null) return 128 + signalNumber(r.signal);
    return r.code;
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    closeSlave();
    if (io.stdin) io.stdin.unpipe(term);
    if (io.stdout) term.unpipe(io.stdout);
    term.destroy();
  }
}

/** Pids of the processes below `pid` (from /proc/<pid>/task/<tid>/children). */
async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 4096) {
    const p = queue.shift()!;
    const tasks = await readdir(`/proc/${p}/task`).catch(() => [] as string[]);
    for (const t of tasks) {
      const children = await readFile(`/proc/${p}/task/${t}/children`, "utf8").catch(() => "");
      for (const c of children.split(" ")) {
        const n = Number.parseInt(c, 10);
        if (n > 0 && !out.includes(n)) {
          out.push(n);
          queue.push(n);
        }
      }
    }
  }
  return out;
}

async function killExec(pidFile: string, runcPid: number | undefined): Promise<void> {
  // The pid file appears once runc has started the process; give it a moment if we are early.
  for (let i = 0; i < 20; i++) {
    const pid = Number.parseInt(await readFile(pidFile, "utf8").catch(() => ""), 10);
    if (pid > 0) {
      // The process and what it started (`sh -c "sleep 20; echo"`: the sleep holds the output
      // pipes, and runc waits for them): children first would let them be re-parented, so the
      // whole tree is collected, then killed.
      for (const p of [pid, ...(await descendants(pid))]) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // already gone
        }
      }
      return;
    }
    if (runcPid === undefined) return;
    try {
      process.kill(runcPid, 0);
    } catch {
      return; // runc is gone, nothing to kill
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (runcPid !== undefined) {
    try {
      process.kill(runcPid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

function copy(src: NodeJS.ReadableStream, dst: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    src.on("data", (b: Buffer) => {
      if (!dst.write(b)) {
        src.pause();
        dst.once("drain", () => src.resume());
      }
    });
    src.once("end", () => resolve());
    src.once("close", () => resolve());
    dst.once?.("error", () => {});
  });
}

async function exists(f: string): Promise<boolean> {
  return readFile(f).then(
    () => true,
    () => false,
  );
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig ? (constants.signals[sig] ?? 0) : 0;
}
