/**
 * Thin async wrapper over an OCI runtime CLI with runc's command line (runc, crun, ...). One
 * instance per RuntimeClass handler: a binary path plus its `--root` state directory.
 */
import { BerthError, type ErrorCode } from "../common/errors.js";
import { describeExit, type Runner, type RunResult, run } from "../common/process.js";

export interface RuntimeBinary {
  /** Absolute path of the runtime executable, e.g. /usr/sbin/runc. */
  path: string;
  /** The runtime's state directory (`--root`), e.g. /run/runc. */
  root: string;
  /** More global flags, after `--root` (a handler's runtime_args, e.g. --platform=ptrace). */
  args?: readonly string[];
}

/** The global flags of every command of this runtime (what conmon gets as `--runtime-arg`s). */
export function runtimeGlobalArgs(binary: RuntimeBinary): string[] {
  return [`--root=${binary.root}`, ...(binary.args ?? [])];
}

export type OciStatus = "creating" | "created" | "running" | "paused" | "stopped";

export interface OciState {
  status: OciStatus;
  /** 0 once stopped. */
  pid: number;
  bundle?: string;
}

/** An OCI runtime command failed. `code` is chosen from the runtime's message. */
export class OciRuntimeError extends BerthError {
  readonly op: string;
  readonly containerId: string;
  /** The runtime's own error text, unwrapped from its log line. */
  readonly runtimeMessage: string;
  constructor(code: ErrorCode, op: string, containerId: string, runtimeMessage: string, detail?: string) {
    super(
      code,
      `${op} container ${containerId}: ${runtimeMessage}${detail ? ` (${detail})` : ""}`.replace(/\s+$/, ""),
    );
    this.op = op;
    this.containerId = containerId;
    this.runtimeMessage = runtimeMessage;
  }
}

/** Unquotes a Go/logfmt double-quoted string body (`\"`, `\\`, `\n`, `\t`). */
function unquoteGo(s: string): string {
  return s.replace(/\\(["\\nt])/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
}

/**
 * Extracts the human message from runc's stderr or log text. runc logs either as JSON lines
 * (`{"level":"error","msg":"..."}` with --log-format json) or logfmt lines
 * (`time="..." level=error msg="..."`); conmon forwards the latter verbatim. The last
 * error-level message wins; unrecognised text is returned trimmed.
 */
export function parseRuntimeMessage(text: string): string {
  const messages: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith("{")) {
      try {
        const j = JSON.parse(line) as { level?: unknown; msg?: unknown };
        if (
          typeof j.msg === "string" &&
          (j.level === undefined || j.level === "error" || j.level === "fatal")
        ) {
          messages.push(j.msg);
          continue;
        }
        if (typeof j.msg === "string") continue; // warning/info lines
      } catch {
        // not JSON after all
      }
    }
    const m = /(?:^|\s)level=(\w+).*?\smsg="((?:[^"\\]|\\.)*)"/.exec(line);
    if (m) {
      if (m[1] === "error" || m[1] === "fatal") messages.push(unquoteGo(m[2] ?? ""));
      continue;
    }
    messages.push(line);
  }
  return messages.length > 0 ? messages[messages.length - 1]! : text.trim();
}

/** Maps a runtime error message to a Berth error code. */
export function classifyRuntimeMessage(message: string): ErrorCode {
  const m = message.toLowerCase();
  if (m.includes("does not exist") || m.includes("container not found")) return "NotFound";
  if (m.includes("already exists") || m.includes("id already in use")) return "AlreadyExists";
  // The container's command cannot be executed: the request (image + command) is wrong.
  if (
    m.includes("executable file not found") ||
    (m.includes("exec:") && (m.includes("no such file or directory") || m.includes("permission denied"))) ||
    m.includes("exec format error")
  ) {
    return "InvalidArgument";
  }
  // Limits or mounts the kernel refuses for this request (e.g. a memory limit below current usage).
  if (m.includes("unable to set memory limit") || m.includes("not a directory")) return "InvalidArgument";
  if (
    m.includes("not running") ||
    m.includes("is paused") ||
    m.includes("not paused") ||
    m.includes("has stopped") ||
    m.includes("not in created state") ||
    m.includes("cannot exec") ||
    m.includes("cannot start")
  ) {
    return "FailedPrecondition";
  }
  return "Internal";
}

export function runtimeError(op: string, id: string, text: string, detail?: string): OciRuntimeError {
  const msg = parseRuntimeMessage(text) || "unknown runtime error";
  return new OciRuntimeError(classifyRuntimeMessage(msg), op, id, msg, detail);
}

export interface CheckpointOptions {
  criuPath: string;
  imagePath: string;
  workPath: string;
  timeoutMs?: number;
}

export interface DeleteOptions {
  force?: boolean;
}

export class RuncCli {
  readonly binary: RuntimeBinary;
  private readonly runner: Runner;
  private readonly timeoutMs: number;

  constructor(binary: RuntimeBinary, opts: { runner?: Runner; timeoutMs?: number } = {}) {
    this.binary = binary;
    this.runner = opts.runner ?? run;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
  }

  /** Global args put before the subcommand; also what conmon gets as `--runtime-arg`s. */
  globalArgs(): string[] {
    return runtimeGlobalArgs(this.binary);
  }

  private async exec(
    op: string,
    id: string,
    args: string[],
    input?: string,
    timeoutMs = this.timeoutMs,
  ): Promise<RunResult> {
    const r = await this.runner(this.binary.path, [...this.globalArgs(), "--log-format=json", ...args], {
      input,
      timeoutMs,
    });
    if (r.exitCode !== 0) throw runtimeError(op, id, r.stderr || r.stdout, describeExit(r));
    return r;
  }

  /** The runtime's view of the container, or undefined when it does not know the id. */
  async state(id: string): Promise<OciState | undefined> {
    let r: RunResult;
    try {
      r = await this.exec("state", id, ["state", id]);
    } catch (e) {
      if (e instanceof OciRuntimeError && e.code === "NotFound") return undefined;
      throw e;
    }
    let j: { status?: unknown; pid?: unknown; bundle?: unknown };
    try {
      j = JSON.parse(r.stdout) as typeof j;
    } catch {
      throw new OciRuntimeError(
        "Internal",
        "state",
        id,
        `unparsable state output: ${r.stdout.slice(0, 200)}`,
      );
    }
    const status = typeof j.status === "string" ? (j.status as OciStatus) : "stopped";
    return {
      status,
      pid: typeof j.pid === "number" ? j.pid : 0,
      ...(typeof j.bundle === "string" ? { bundle: j.bundle } : {}),
    };
  }

  async start(id: string): Promise<void> {
    await this.exec("start", id, ["start", id]);
  }

  /** `signal` as a name ("TERM", "SIGKILL") or number. */
  async kill(id: string, signal: string | number, all = false): Promise<void> {
    await this.exec("kill", id, ["kill", ...(all ? ["--all"] : []), id, String(signal)]);
  }

  /** Idempotent: a container the runtime does not know is already deleted. */
  async delete(id: string, opts: DeleteOptions = {}): Promise<void> {
    try {
      await this.exec("delete", id, ["delete", ...(opts.force ? ["--force"] : []), id]);
    } catch (e) {
      if (e instanceof OciRuntimeError && e.code === "NotFound") return;
      throw e;
    }
  }

  /** Applies OCI LinuxResources (as JSON) to a live container. */
  async update(id: string, resources: object): Promise<void> {
    await this.exec("update", id, ["update", "--resources", "-", id], JSON.stringify(resources));
  }

  /**
   * `runc checkpoint --leave-running`: CRIU dumps the container's processes into `imagePath`
   * (its log and stats into `workPath`) and lets them run on.
   */
  async checkpoint(id: string, o: CheckpointOptions): Promise<void> {
    await this.exec(
      "checkpoint",
      id,
      [
        `--criu=${o.criuPath}`,
        "checkpoint",
        "--leave-running",
        "--image-path",
        o.imagePath,
        "--work-path",
        o.workPath,
        id,
      ],
      undefined,
      o.timeoutMs,
    );
  }

  async pause(id: string): Promise<void> {
    await this.exec("pause", id, ["pause", id]);
  }

  async resume(id: string): Promise<void> {
    await this.exec("resume", id, ["resume", id]);
  }
}
