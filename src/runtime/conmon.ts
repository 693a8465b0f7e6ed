/**
 * Driving conmon, the per-container monitor (as CRI-O does). conmon runs `runtime create`,
 * daemonizes (re-parented to init, its own session, stdio on /dev/null) and stays the
 * container's parent: it owns the container's stdio, writes the CRI-format log and, when the
 * container exits, `<exit-dir>/<id>` with the exit code. berthd is never its parent once create
 * has returned, so containers outlive berthd restarts and crashes.
 *
 * Handshake: conmon gets two inherited fds, named by env `_OCI_SYNCPIPE` (it writes JSON to
 * it) and `_OCI_STARTPIPE` (it waits for one byte on it before doing anything). Without
 * `--api-version` (a flag that switches the key to "data"), create reports `{"pid": N}` or
 * `{"pid": -1, "message": "<runc log>"}`. (Exec does not go through conmon: see runc-exec.ts.)
 */
import { constants } from "node:fs";
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import { deadlineExceeded, errnoCode, internal } from "../common/errors.js";
import { native } from "../common/native.js";
import { describeExit, type Runner, run } from "../common/process.js";
import { RuncCli, type RuntimeBinary, runtimeError, runtimeGlobalArgs } from "./runc.js";

export const DEFAULT_CONMON_PATH = "/usr/bin/conmon";

export interface ConmonCommon {
  /** Defaults to /usr/bin/conmon. */
  conmonPath?: string;
  /** conmon --log-level (error, warn, info, debug); its messages go to syslog/stderr. */
  conmonLogLevel?: string;
  runner?: Runner;
}

export interface CreateContainerOptions extends ConmonCommon {
  id: string;
  name: string;
  /** OCI bundle directory (config.json + rootfs). */
  bundle: string;
  runtime: RuntimeBinary;
  /** The container's CRI log file (k8s-file format). */
  logPath: string;
  /** conmon writes `<exitDir>/<id>` holding the exit code. */
  exitDir: string;
  /** Per-container directory conmon may use (it writes `exit` there too); we keep conmon.stderr there. */
  persistDir: string;
  /** Parent of attach sockets; must exist or conmon exits silently. */
  socketDir: string;
  /** Container init pid file (`runtime create --pid-file`). */
  pidFile: string;
  /** conmon's own (daemon) pid file. */
  conmonPidFile: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  /** Bytes; conmon rotates/truncates the log above it. */
  logSizeMax?: number;
  /** How long to wait for conmon to report the pid; default 60 s. */
  timeoutMs?: number;
  /**
   * Restore from these CRIU images instead of creating (conmon --restore: `runtime restore
   * --detach --image-path DIR --work-path BUNDLE`); the container runs once this resolves.
   */
  restorePath?: string;
  /** The CRIU binary the runtime uses for a restore (runc --criu). */
  criuPath?: string;
}

export interface CreatedContainer {
  /** The container's init pid (created, not yet started). */
  pid: number;
  /** The conmon daemon's pid. */
  conmonPid: number;
}

interface SyncMessage {
  value: number;
  message?: string;
}

/** Parses one conmon sync-pipe JSON line; accepts the `pid`, `exit_code` and (API v1) `data` keys. */
export function parseSyncMessage(line: string): SyncMessage | undefined {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const value = j["pid"] ?? j["exit_code"] ?? j["data"];
  if (typeof value !== "number") return undefined;
  return typeof j["message"] === "string" ? { value, message: j["message"] } : { value };
}

/** Collects newline-terminated JSON messages from a sync pipe. */
class SyncReader {
  private buf = "";
  private readonly messages: SyncMessage[] = [];
  private waiters: (() => void)[] = [];
  ended = false;

  constructor(private readonly pipe: Duplex) {
    pipe.setEncoding("utf8");
    pipe.on("data", (d: string) => {
      this.buf += d;
      let nl = this.buf.indexOf("\n");
      while (nl >= 0) {
        const msg = parseSyncMessage(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
        if (msg) this.messages.push(msg);
        nl = this.buf.indexOf("\n");
      }
      this.wake();
    });
    const end = () => {
      if (this.buf.trim()) {
        const msg = parseSyncMessage(this.buf);
        if (msg) this.messages.push(msg);
        this.buf = "";
      }
      this.ended = true;
      this.wake();
    };
    pipe.on("end", end);
    pipe.on("close", end);
    pipe.on("error", end);
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The first message, or undefined on EOF / timeout (then `timedOut` is set). */
  async first(timeoutMs: number): Promise<{ msg?: SyncMessage; timedOut: boolean }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const msg = this.messages[0];
      if (msg) return { msg, timedOut: false };
      if (this.ended) return { timedOut: false };
      const left = deadline - Date.now();
      if (left <= 0) return { timedOut: true };
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** All messages once the pipe has closed. */
  async all(): Promise<SyncMessage[]> {
    while (!this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.messages;
  }

  destroy() {
    this.pipe.destroy();
  }
}

function conmonEnv(): NodeJS.ProcessEnv {
  return {
    _OCI_SYNCPIPE: "3",
    _OCI_STARTPIPE: "4",
    PATH: process.env["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ...(process.env["XDG_RUNTIME_DIR"] ? { XDG_RUNTIME_DIR: process.env["XDG_RUNTIME_DIR"] } : {}),
  };
}

/** The argument list for `conmon` creating a container (exported for tests and docs). */
export function createArgs(o: CreateContainerOptions): string[] {
  const args = [
    "-b",
    o.bundle,
    "-c",
    o.id,
    "-u",
    o.id,
    "-n",
    o.name,
    "-r",
    o.runtime.path,
    ...runtimeGlobalArgs(o.runtime).flatMap((a) => ["--runtime-arg", a]),
    "-p",
    o.pidFile,
    "-P",
    o.conmonPidFile,
    "-l",
    `k8s-file:${o.logPath}`,
    "--exit-dir",
    o.exitDir,
    "--persist-dir",
    o.persistDir,
    "--socket-dir-path",
    o.socketDir,
    "--log-level",
    o.conmonLogLevel ?? "error",
  ];
  if (o.restorePath !== undefined) {
    args.push("--restore", o.restorePath);
    if (o.criuPath) args.push("--runtime-arg", `--criu=${o.criuPath}`);
  }
  if (o.logSizeMax !== undefined && o.logSizeMax > 0) args.push("--log-size-max", String(o.logSizeMax));
  if (o.terminal) {
    args.push("-t");
  } else if (o.stdin) {
    args.push("-i");
    if (!o.stdinOnce) args.push("--leave-stdin-open");
  }
  return args;
}

async function readTail(path: string, max = 4096): Promise<string> {
  try {
    const b = await readFile(path);
    return b
      .subarray(Math.max(0, b.length - max))
      .toString("utf8")
      .trim();
  } catch {
    return "";
  }
}

/** Reads a pid file; undefined if absent or garbage. */
export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await readFile(path, "utf8")).trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** True if `pid` exists and is not a zombie. */
export async function pidAlive(pid: number): Promise<boolean> {
  try {
    const st = await readFile(`/proc/${pid}/stat`, "utf8");
    // pid (comm) S ...: the state follows the last ')'
    const state = st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** True if the conmon named by the pid file is running. */
export async function conmonAlive(conmonPidFile: string): Promise<boolean> {
  const pid = await readPidFile(conmonPidFile);
  if (pid === undefined || !(await pidAlive(pid))) return false;
  try {
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8")).trim();
    return comm.includes("conmon"); // guard against pid reuse
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits up to `graceMs` for the conmon in `conmonPidFile` to exit, then SIGKILLs it. */
export async function reapConmon(conmonPidFile: string, graceMs = 2000): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (await conmonAlive(conmonPidFile)) {
    if (Date.now() >= deadline) {
      const pid = await readPidFile(conmonPidFile);
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      return;
    }
    await sleep(50);
  }
}

/**
 * Spawns conmon, which runs `runtime create` and daemonizes, and resolves with the container's
 * init pid. A runtime failure (e.g. the command's executable is missing, which runc reports at
 * create time) rejects with an OciRuntimeError carrying runc's message; nothing is left running.
 */
export async function createContainer(o: CreateContainerOptions): Promise<CreatedContainer> {
  const runner = o.runner ?? run;
  const conmonPath = o.conmonPath ?? DEFAULT_CONMON_PATH;
  for (const d of [o.exitDir, o.persistDir, o.socketDir, dirname(o.logPath), dirname(o.pidFile)]) {
    await mkdir(d, { recursive: true });
  }
  await mkdir(dirname(o.conmonPidFile), { recursive: true });
  // A stale exit file would make a new container look finished.
  await rm(join(o.exitDir, o.id), { force: true });
  await rm(join(o.persistDir, "exit"), { force: true });

  // conmon's own diagnostics (before it daemonizes) go to a file, never to a pipe: a pipe
  // would SIGPIPE the daemon once berthd is gone.
  const stderrPath = join(o.persistDir, "conmon.stderr");
  const stderrFile = await open(stderrPath, "w");
  let reader: SyncReader | undefined;
  let spawned: number | undefined;
  let result: Awaited<ReturnType<Runner>>;
  try {
    result = await runner(conmonPath, createArgs(o), {
      env: conmonEnv(),
      cwd: o.bundle,
      detached: true,
      stdout: "ignore",
      stderr: stderrFile.fd,
      extraPipes: 2,
      timeoutMs: o.timeoutMs ?? 60_000,
      onSpawn: (child) => {
        spawned = child.pid;
        const [sync, start] = child.pipes;
        if (!sync || !start) throw internal("conmon spawned without its sync/start pipes");
        reader = new SyncReader(sync);
        start.on("error", () => {});
        // Nothing to set up (no cgroup move): let conmon proceed at once.
        start.end(Buffer.from([0]));
      },
    });
  } finally {
    await stderrFile.close();
  }

  const cleanup = async () => {
    reader?.destroy();
    await reapConmon(o.conmonPidFile);
    await new RuncCli(o.runtime, { runner }).delete(o.id, { force: true }).catch(() => {});
  };

  if (result.exitCode !== 0 || !reader) {
    await cleanup();
    const why = (await readTail(stderrPath)) || describeExit(result);
    throw internal(`conmon (pid ${spawned ?? "?"}) failed creating container ${o.id}: ${why}`);
  }

  const { msg, timedOut } = await reader.first(o.timeoutMs ?? 60_000);
  reader.destroy();
  if (timedOut) {
    await cleanup();
    throw deadlineExceeded(`container ${o.id}: conmon did not report a pid in time`);
  }
  if (!msg) {
    await cleanup();
    const why = await readTail(stderrPath);
    throw internal(`container ${o.id}: conmon exited without reporting a pid${why ? `: ${why}` : ""}`);
  }
  if (msg.value <= 0) {
    await cleanup();
    throw runtimeError("create", o.id, msg.message ?? "container create failed");
  }
  const conmonPid = (await readPidFile(o.conmonPidFile)) ?? 0;
  return { pid: msg.value, conmonPid };
}

/** The control-FIFO line that makes conmon reopen the container's log file. */
export const REOPEN_LOG_MESSAGE = "2 0 0\n";

/** Control writes in flight, per FIFO: each waits for the one before. */
const controlQueues = new Map<string, Promise<void>>();

/**
 * Writes one message to conmon's control FIFO without ever blocking (ENXIO when conmon is
 * gone). Messages to one FIFO go one at a time, each once conmon has read the one before:
 * conmon 2.1.6 (Debian 12's) applies only the first message of a read that holds several, so
 * kubectl's attach resize pair (size+1, then size) would leave the terminal one size too big.
 */
export function writeControl(ctlPath: string, line: string): Promise<void> {
  const prev = controlQueues.get(ctlPath) ?? Promise.resolve();
  const next = prev.catch(() => {}).then(() => writeControlAlone(ctlPath, line));
  controlQueues.set(ctlPath, next);
  const forget = () => {
    if (controlQueues.get(ctlPath) === next) controlQueues.delete(ctlPath);
  };
  next.then(forget, forget);
  return next;
}

/** How long a control write waits for conmon to read the previous one before it goes anyway. */
const CONTROL_DRAIN_WAIT_MS = 2000;

async function writeControlAlone(ctlPath: string, line: string): Promise<void> {
  const fh = await open(ctlPath, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    const deadline = Date.now() + CONTROL_DRAIN_WAIT_MS;
    while (native().pendingBytes(fh.fd) > 0 && Date.now() < deadline) {
      await sleep(2);
    }
    await fh.write(line);
  } finally {
    await fh.close();
  }
}

export interface ExitFile {
  exitCode: number;
  /** The exit file's mtime: when conmon saw the container exit. */
  finishedAt: Date;
}

/** Reads `<exitDir>/<id>`; undefined while the container has not exited (or the file is partial). */
export async function readExitFile(exitDir: string, id: string): Promise<ExitFile | undefined> {
  const path = join(exitDir, id);
  try {
    const [text, st] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    const s = text.trim();
    if (!/^-?\d+$/.test(s)) return undefined;
    return { exitCode: Number.parseInt(s, 10), finishedAt: st.mtime };
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  }
}
