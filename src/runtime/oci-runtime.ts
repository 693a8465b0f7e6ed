/**
 * The container runtime as the CRI runtime service sees it: an `OciRuntime` per RuntimeClass
 * handler, implemented by conmon (monitor) + an OCI runtime CLI (runc, crun).
 *
 * On-disk layout under `stateDir` (shared by all handlers; container ids are unique):
 *   exits/<id>                  exit code written by conmon (mtime = finish time)
 *   attach/                     conmon --socket-dir-path (attach sockets)
 *   containers/<id>/            conmon --persist-dir: pidfile, conmon.pid, conmon.stderr
 */
import { watch } from "node:fs";
import { mkdir, readlink, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, pino } from "pino";
import {
  errnoCode,
  failedPrecondition,
  invalidArgument,
  isBerthError,
  notFound,
  unavailable,
} from "../common/errors.js";
import type { Runner } from "../common/process.js";
import type { ExecIO } from "../streaming/remotecommand.js";
import { attachContainer } from "./attach.js";
import {
  type CreatedContainer,
  conmonAlive,
  createContainer,
  DEFAULT_CONMON_PATH,
  type ExitFile,
  REOPEN_LOG_MESSAGE,
  readExitFile,
  readPidFile,
  writeControl,
} from "./conmon.js";
import { criuLogErrors, criuProblem, defaultCriuPath } from "./criu.js";
import { type OciState, RuncCli, type RuntimeBinary } from "./runc.js";
import {
  type ExecSyncResult,
  type OciProcess,
  type RuncExecOptions,
  runcExec,
  runcExecSync,
} from "./runc-exec.js";

export interface ContainerCreateSpec {
  id: string;
  /** Human name (conmon -n); defaults to the id. */
  name?: string;
  /** OCI bundle directory holding config.json and the rootfs. */
  bundle: string;
  /** The CRI log file. */
  logPath: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  logSizeMax?: number;
  /** Restore the container's processes from these CRIU images (it runs at once: no start). */
  restoreFrom?: string;
}

/** Where a checkpoint goes: CRIU's images, and its log and stats. */
export interface CheckpointTarget {
  imagePath: string;
  workPath: string;
  timeoutMs?: number;
}

export type ExitStatus = ExitFile;

/** What a handler runs, for verbose status (containerd's runtimeType / runtimeOptions). */
export interface RuntimeDescription {
  runtimeType: string;
  runtimeOptions: { binaryName: string; root: string; monitor: string; args?: string[] };
}

export interface OciRuntime {
  readonly handler: string;
  readonly description: RuntimeDescription;
  /**
   * A sandbox runtime (gVisor): a pod's containers run in one sandbox, which the pod's root
   * container (its init) starts and every app container joins by the CRI annotations.
   */
  readonly sandboxed?: boolean;
  /** Creates (not starts) the container under a daemonized conmon; resolves with its init pid. */
  create(spec: ContainerCreateSpec): Promise<CreatedContainer>;
  start(id: string): Promise<void>;
  /** Runtime state, or undefined if the runtime does not know the id. */
  state(id: string): Promise<OciState | undefined>;
  /**
   * Sends `signal` (default SIGTERM), waits up to `timeoutSec` for the exit, then SIGKILLs and
   * waits for conmon's exit file. Resolves with the exit status (undefined if the container
   * was never started or its monitor is gone without one).
   */
  stop(id: string, signal?: string | number, timeoutSec?: number): Promise<ExitStatus | undefined>;
  kill(id: string, signal: string | number, all?: boolean): Promise<void>;
  /** Force-deletes the runtime container and its monitor state. Idempotent. */
  delete(id: string): Promise<void>;
  /** Runs a command to completion (no stdin, no terminal) and collects its output. */
  execSync(id: string, processSpec: OciProcess, timeoutSec: number): Promise<ExecSyncResult>;
  /** Runs a process in the container wired to a streaming session; resolves with its exit code. */
  exec(id: string, processSpec: OciProcess, tty: boolean, io: ExecIO): Promise<number>;
  /**
   * Connects a streaming session to the container's stdio until it exits or the client leaves
   * (or, unless stdin_once without a terminal, closes its stdin: a detach).
   */
  attach(id: string, io: ExecIO, stdio?: { stdinOnce: boolean; tty: boolean }): Promise<number>;
  /** Makes the monitor reopen the container's log file (after the kubelet rotated it). */
  reopenLog(id: string): Promise<void>;
  /** The container's init pid as the monitor recorded it; 0 when unknown. */
  initPid(id: string): Promise<number>;
  /** Calls `onExit(id)` whenever a container of this handler exits; returns the stop function. */
  watchExits(onExit: (id: string) => void): Promise<() => void>;
  update(id: string, resources: object): Promise<void>;
  /** The exit status conmon recorded, or undefined while running / never started. */
  exitStatus(id: string): Promise<ExitStatus | undefined>;
  /** Whether the container's conmon is still running. */
  monitorAlive(id: string): Promise<boolean>;
  /** Why this handler cannot checkpoint or restore here (undefined: it can). */
  checkpointProblem(): Promise<string | undefined>;
  /**
   * Dumps the running container's processes with CRIU; they keep running. `whileFrozen` runs
   * after the dump, before they go on (what must match the dump: the writable layer, the log).
   */
  checkpoint(id: string, target: CheckpointTarget, whileFrozen?: () => Promise<void>): Promise<void>;
}

/**
 * What a container's monitor says of its process: the exit status conmon recorded, "running"
 * while conmon lives without one, or "lost" when conmon is gone without one (killed). conmon
 * writes the exit file before it exits, so a second look closes the race with an exit that
 * happened between the two reads.
 */
export async function observeExit(
  rt: Pick<OciRuntime, "exitStatus" | "monitorAlive">,
  id: string,
): Promise<ExitStatus | "running" | "lost"> {
  const exit = await rt.exitStatus(id);
  if (exit) return exit;
  if (await rt.monitorAlive(id)) return "running";
  return (await rt.exitStatus(id)) ?? "lost";
}

export interface ConmonRuntimeOptions {
  handler: string;
  runtimePath: string;
  runtimeRoot: string;
  /** Global flags for every runtime command, after --root (config runtime_args). */
  runtimeArgs?: readonly string[];
  stateDir: string;
  conmonPath?: string;
  conmonLogLevel?: string;
  /** The CRIU binary for checkpoint and restore; default: defaultCriuPath(). */
  criuPath?: string;
  runner?: Runner;
  logger?: Logger;
  /** After SIGKILL, how long to wait for conmon's exit file; default 10 s. */
  killWaitMs?: number;
  /** Longest exit-file poll interval; default 20 ms (polls start at 1 ms and double up to it). */
  pollMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isCode(e: unknown, ...codes: string[]): boolean {
  return isBerthError(e) && codes.includes(e.code);
}

export class ConmonOciRuntime implements OciRuntime {
  readonly handler: string;
  readonly runc: RuncCli;
  protected readonly o: ConmonRuntimeOptions;
  protected readonly log: Logger;

  constructor(o: ConmonRuntimeOptions) {
    this.o = o;
    this.handler = o.handler;
    this.runc = new RuncCli(
      { path: o.runtimePath, root: o.runtimeRoot, ...(o.runtimeArgs?.length ? { args: o.runtimeArgs } : {}) },
      o.runner ? { runner: o.runner } : {},
    );
    this.log = (o.logger ?? pino({ level: "silent" })).child({ component: "runtime", handler: o.handler });
  }

  get description(): RuntimeDescription {
    return {
      runtimeType: "oci",
      runtimeOptions: {
        binaryName: this.o.runtimePath,
        root: this.o.runtimeRoot,
        monitor: this.o.conmonPath ?? DEFAULT_CONMON_PATH,
        ...(this.o.runtimeArgs?.length ? { args: [...this.o.runtimeArgs] } : {}),
      },
    };
  }

  /** The runtime conmon runs `create` with (a sandbox runtime puts its wrapper here). */
  protected async monitorRuntime(): Promise<RuntimeBinary> {
    return this.runc.binary;
  }

  get exitDir(): string {
    return join(this.o.stateDir, "exits");
  }
  get socketDir(): string {
    return join(this.o.stateDir, "attach");
  }
  containerDir(id: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id))
      throw invalidArgument(`invalid container id ${JSON.stringify(id)}`);
    return join(this.o.stateDir, "containers", id);
  }
  conmonPidFile(id: string): string {
    return join(this.containerDir(id), "conmon.pid");
  }

  async create(spec: ContainerCreateSpec): Promise<CreatedContainer> {
    const dir = this.containerDir(spec.id);
    const created = await createContainer({
      ...(spec.restoreFrom !== undefined
        ? { restorePath: spec.restoreFrom, criuPath: await this.criuPath() }
        : {}),
      id: spec.id,
      name: spec.name ?? spec.id,
      bundle: spec.bundle,
      runtime: await this.monitorRuntime(),
      logPath: spec.logPath,
      exitDir: this.exitDir,
      persistDir: dir,
      socketDir: this.socketDir,
      pidFile: join(dir, "pidfile"),
      conmonPidFile: join(dir, "conmon.pid"),
      ...(spec.terminal !== undefined ? { terminal: spec.terminal } : {}),
      ...(spec.stdin !== undefined ? { stdin: spec.stdin } : {}),
      ...(spec.stdinOnce !== undefined ? { stdinOnce: spec.stdinOnce } : {}),
      ...(spec.logSizeMax !== undefined ? { logSizeMax: spec.logSizeMax } : {}),
      ...(this.o.conmonPath ? { conmonPath: this.o.conmonPath } : {}),
      ...(this.o.conmonLogLevel ? { conmonLogLevel: this.o.conmonLogLevel } : {}),
      ...(this.o.runner ? { runner: this.o.runner } : {}),
    }).catch(async (err: unknown) => {
      // A failed restore: CRIU's own words (restore.log in the bundle, its work path) say why.
      const errors = spec.restoreFrom === undefined ? [] : await criuLogErrors(spec.bundle, "restore.log");
      if (errors.length === 0) throw err;
      throw failedPrecondition(
        `CRIU could not restore container ${spec.id}: ${errors.slice(0, 4).join("; ")}`,
        err,
      );
    });
    // Where conmon's control FIFO lives, for attach and reopen-log later (also after a restart).
    await symlink(spec.bundle, join(dir, "bundle")).catch((err: unknown) => {
      if (errnoCode(err) !== "EEXIST") throw err;
    });
    this.log.debug({ id: spec.id, pid: created.pid, conmonPid: created.conmonPid }, "container created");
    return created;
  }

  private criuPath(): Promise<string> {
    return this.o.criuPath !== undefined ? Promise.resolve(this.o.criuPath) : defaultCriuPath();
  }

  checkpointProblem(): Promise<string | undefined> {
    return this.criuPath().then((path) => criuProblem(path, this.o.runner));
  }

  async checkpoint(id: string, target: CheckpointTarget, whileFrozen?: () => Promise<void>): Promise<void> {
    const problem = await this.checkpointProblem();
    if (problem) throw failedPrecondition(problem);
    // Frozen (cgroup freezer) from before the dump until the writable layer is copied; CRIU
    // leaves an already frozen cgroup frozen.
    await this.runc.pause(id);
    try {
      await this.runc.checkpoint(id, { criuPath: await this.criuPath(), ...target });
      await whileFrozen?.();
    } catch (err) {
      const errors = await criuLogErrors(target.workPath, "dump.log");
      if (errors.length === 0) throw err;
      throw failedPrecondition(
        `CRIU could not checkpoint container ${id}: ${errors.slice(0, 4).join("; ")}`,
        err,
      );
    } finally {
      await this.runc
        .resume(id)
        .catch((err: unknown) =>
          this.log.error({ err, id }, "resuming the container after its checkpoint failed"),
        );
    }
  }

  private async bundleOf(id: string): Promise<string> {
    const link = await readlink(join(this.containerDir(id), "bundle")).catch(() => undefined);
    const bundle = link ?? (await this.runc.state(id))?.bundle;
    if (!bundle) throw notFound(`container ${id} has no bundle known to its runtime`);
    return bundle;
  }

  async reopenLog(id: string): Promise<void> {
    await writeControl(join(await this.bundleOf(id), "ctl"), REOPEN_LOG_MESSAGE);
  }

  async initPid(id: string): Promise<number> {
    return (await readPidFile(join(this.containerDir(id), "pidfile"))) ?? 0;
  }

  async watchExits(onExit: (id: string) => void): Promise<() => void> {
    await mkdir(this.exitDir, { recursive: true });
    const w = watch(this.exitDir, (_event, file) => {
      const id = file?.toString();
      if (id) onExit(id);
    });
    w.unref();
    return () => w.close();
  }

  async start(id: string): Promise<void> {
    await this.runc.start(id);
  }

  state(id: string): Promise<OciState | undefined> {
    return this.runc.state(id);
  }

  async kill(id: string, signal: string | number, all = false): Promise<void> {
    await this.runc.kill(id, signal, all);
  }

  exitStatus(id: string): Promise<ExitStatus | undefined> {
    return readExitFile(this.exitDir, id);
  }

  monitorAlive(id: string): Promise<boolean> {
    return conmonAlive(this.conmonPidFile(id));
  }

  /** Polls for the exit file until `ms` elapse; stops early if the monitor is gone. */
  private async waitExit(id: string, ms: number): Promise<ExitStatus | undefined> {
    const deadline = Date.now() + ms;
    const maxPoll = this.o.pollMs ?? 20;
    // A SIGKILLed container is usually gone within a few ms: short polls first.
    for (let poll = 1; ; poll = Math.min(poll * 2, maxPoll)) {
      const seen = await observeExit(this, id);
      if (seen === "lost") return undefined;
      if (seen !== "running") return seen;
      if (Date.now() >= deadline) return undefined;
      await sleep(Math.min(poll, Math.max(0, deadline - Date.now())));
    }
  }

  async stop(
    id: string,
    signal: string | number = "SIGTERM",
    timeoutSec = 0,
  ): Promise<ExitStatus | undefined> {
    const done = await this.exitStatus(id);
    if (done) return done;
    if (timeoutSec <= 0) {
      // Straight to SIGKILL, without asking `runc state` first (one runtime exec less, 10-50 ms):
      // running, created (the waiting init) and, on cgroup v2, paused processes all die of it.
      // When the runtime refuses (not running, gone) or the exit does not come, the path below
      // finds out why from the state, as before.
      const killed = await this.runc.kill(id, "KILL").then(
        () => true,
        (e: unknown) => {
          if (!isCode(e, "NotFound", "FailedPrecondition")) throw e;
          return false;
        },
      );
      if (killed) {
        const exited = await this.waitExit(id, this.o.killWaitMs ?? 10_000);
        if (exited) return exited;
      }
    }
    const st = await this.runc.state(id);
    if (!st || st.status === "stopped" || st.status === "created") {
      if (st?.status === "created") {
        // Never started: there is no process to signal gracefully; kill the init that waits.
        await this.runc.kill(id, "KILL").catch(() => {});
      }
      return this.waitExit(id, this.o.killWaitMs ?? 10_000);
    }
    if (st.status === "paused") await this.runc.resume(id).catch(() => {});
    if (timeoutSec > 0) {
      try {
        await this.runc.kill(id, signal);
      } catch (e) {
        if (!isCode(e, "NotFound", "FailedPrecondition")) throw e;
      }
      const exited = await this.waitExit(id, timeoutSec * 1000);
      if (exited) return exited;
      this.log.info({ id, signal, timeoutSec }, "stop signal timed out; killing");
    }
    try {
      await this.runc.kill(id, "KILL");
    } catch (e) {
      if (!isCode(e, "NotFound", "FailedPrecondition")) throw e;
    }
    const exited = await this.waitExit(id, this.o.killWaitMs ?? 10_000);
    if (exited) return exited;
    const after = await this.runc.state(id);
    if (after && after.status !== "stopped") {
      throw unavailable(`container ${id} is still ${after.status} after SIGKILL`);
    }
    return undefined;
  }

  async delete(id: string): Promise<void> {
    const dir = this.containerDir(id);
    await this.runc.delete(id, { force: true });
    // The container is gone, so its conmon exits on its own; don't leave one behind if not.
    const pidFile = this.conmonPidFile(id);
    // It is usually on its way out already: short polls first (1, 2, 4… ms, then 50), ~2 s in all.
    for (
      let waited = 0, poll = 1;
      waited < 2000 && (await conmonAlive(pidFile));
      waited += poll, poll = Math.min(poll * 2, 50)
    ) {
      await sleep(poll);
    }
    if (await conmonAlive(pidFile)) {
      const pid = await readPidFile(pidFile);
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    await rm(dir, { recursive: true, force: true });
    await rm(join(this.exitDir, id), { force: true });
  }

  protected execTarget(id: string, processSpec: OciProcess): Omit<RuncExecOptions, "tty"> {
    const { path, root, args } = this.runc.binary;
    return {
      runtimePath: path,
      runtimeRoot: root,
      ...(args && { runtimeArgs: args }),
      containerId: id,
      processSpec,
    };
  }

  execSync(id: string, processSpec: OciProcess, timeoutSec: number): Promise<ExecSyncResult> {
    return runcExecSync(this.execTarget(id, processSpec), timeoutSec);
  }

  exec(id: string, processSpec: OciProcess, tty: boolean, io: ExecIO): Promise<number> {
    return runcExec({ ...this.execTarget(id, processSpec), tty }, io);
  }

  async attach(id: string, io: ExecIO, stdio?: { stdinOnce: boolean; tty: boolean }): Promise<number> {
    const ctlPath = join(await this.bundleOf(id), "ctl");
    return attachContainer({ socketDir: join(this.socketDir, id), ctlPath, ...stdio }, io);
  }

  async update(id: string, resources: object): Promise<void> {
    await this.runc.update(id, resources);
  }
}

/** What the managers use of the handlers (tests pass fakes). */
export interface HandlerLookup {
  readonly defaultHandler: string;
  /** The runtime for a RuntimeClass handler ("" or undefined → the default); NotFound if unknown. */
  get(handler?: string): OciRuntime;
  names(): string[];
}
