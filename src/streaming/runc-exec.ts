/**
 * Non-tty exec in a running container: `runc --root <root> exec --process <file> --pid-file <file> <id>`
 * as our child, its stdio pipes wired to the exec streams. runc passes the pipes straight to the
 * process and exits with its exit status (128+n for a signal). When the client goes away
 * (io.signal), the exec'd process is SIGKILLed by the pid runc wrote, and runc with it.
 *
 * TTY exec is not done here: runc hands the pty master over a console socket with SCM_RIGHTS,
 * which Node cannot receive; that goes through conmon.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { invalidArgument } from "../common/errors.js";
import type { ExecIO } from "./remotecommand.js";

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
  containerId: string;
  processSpec: OciProcess;
  tty: boolean;
  /** Directory for the process/pid files. Default os.tmpdir(). */
  tmpDir?: string;
}

/** Runs the process; resolves with its exit code (128+signal if killed by a signal). */
export async function runcExec(o: RuncExecOptions, io: ExecIO): Promise<number> {
  if (o.tty) throw invalidArgument("tty exec is not supported by runcExec (needs a console socket)");
  if (o.processSpec.args.length === 0) throw invalidArgument("exec: empty command");
  if (io.signal.aborted) throw new Error("client disconnected");
  const dir = await mkdtemp(join(o.tmpDir ?? tmpdir(), "berth-exec-"));
  try {
    const processFile = join(dir, "process.json");
    const pidFile = join(dir, "pid");
    await writeFile(processFile, JSON.stringify({ ...o.processSpec, terminal: false }), { mode: 0o600 });
    const child = spawn(
      o.runtimePath,
      ["--root", o.runtimeRoot, "exec", "--process", processFile, "--pid-file", pidFile, o.containerId],
      { stdio: [io.stdin ? "pipe" : "ignore", io.stdout ? "pipe" : "ignore", "pipe"] },
    );
    // runc's own complaints (e.g. "container not running") come on stderr too; keep a tail for
    // the error message when runc fails before starting the process.
    let runcErr = "";
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
      (resolve) => {
        child.once("error", (error) => resolve({ code: null, signal: null, error }));
        child.once("exit", (code, signal) => resolve({ code, signal }));
      },
    );
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

    const onAbort = () => void killExec(pidFile, child.pid);
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
      // runc's own failures (container not found / not running) exit 1 before a pid exists.
      if (r.code !== 0 && !(await exists(pidFile)) && runcErr.trim() !== "") {
        throw new Error(`runc exec failed: ${runcErr.trim().split("\n").pop()}`);
      }
      return r.code;
    } finally {
      io.signal.removeEventListener("abort", onAbort);
    }
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

async function killExec(pidFile: string, runcPid: number | undefined): Promise<void> {
  // The pid file appears once runc has started the process; give it a moment if we are early.
  for (let i = 0; i < 20; i++) {
    const pid = Number.parseInt(await readFile(pidFile, "utf8").catch(() => ""), 10);
    if (pid > 0) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
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
