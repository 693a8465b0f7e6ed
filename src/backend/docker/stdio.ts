/**
 * Exec and attach through the engine: a hijacked connection carries the process's stdio
 * (multiplexed without a terminal, raw with one); resizes go to the resize endpoints; a client
 * that leaves kills an exec'd process (the Engine API has no exec kill: its host pid is known).
 */
import type { Socket } from "node:net";
import type { Writable } from "node:stream";
import type { DockerEngine } from "../../docker/engine.js";
import { demux } from "../../docker/frames.js";
import type { ExecIO } from "../../streaming/remotecommand.js";
import type { ExecSyncResult } from "../backend.js";

const MAX_EXEC_SYNC_OUTPUT = 16 * 1024 * 1024;

interface ExecInspect {
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
}

async function execCreate(
  engine: DockerEngine,
  containerId: string,
  cmd: string[],
  o: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean },
): Promise<string> {
  const r = await engine.json<{ Id: string }>("POST", `/containers/${containerId}/exec`, {
    body: { Cmd: cmd, Tty: o.tty, AttachStdin: o.stdin, AttachStdout: o.stdout, AttachStderr: o.stderr },
  });
  return r.Id;
}

/** The exit code once the exec'd process is gone (the engine records it just after the stream ends). */
async function execExitCode(engine: DockerEngine, execId: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const s = await engine.json<ExecInspect>("GET", `/exec/${execId}/json`);
    if (!s.Running && s.ExitCode !== null) return s.ExitCode;
    await new Promise((r) => setTimeout(r, 20 * Math.min(i + 1, 10)));
  }
  return -1;
}

async function killExec(engine: DockerEngine, execId: string): Promise<void> {
  const s = await engine.json<ExecInspect>("GET", `/exec/${execId}/json`).catch(() => undefined);
  if (s?.Running && s.Pid > 0) {
    try {
      process.kill(s.Pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

export async function execSync(
  engine: DockerEngine,
  containerId: string,
  cmd: string[],
  timeoutSec: number,
): Promise<ExecSyncResult> {
  const execId = await execCreate(engine, containerId, cmd, {
    tty: false,
    stdin: false,
    stdout: true,
    stderr: true,
  });
  const socket = await engine.hijack(`/exec/${execId}/start`, { body: { Detach: false, Tty: false } });
  let timedOut = false;
  const timer =
    timeoutSec > 0
      ? setTimeout(() => {
          timedOut = true;
          void killExec(engine, execId);
        }, timeoutSec * 1000)
      : undefined;
  const out: Record<"stdout" | "stderr", Buffer[]> = { stdout: [], stderr: [] };
  let size = 0;
  try {
    for await (const f of demux(socket)) {
      if (f.stream === "stdin") continue;
      size += f.data.length;
      if (size <= MAX_EXEC_SYNC_OUTPUT) out[f.stream].push(Buffer.from(f.data));
    }
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
  const exitCode = await execExitCode(engine, execId);
  return { stdout: Buffer.concat(out.stdout), stderr: Buffer.concat(out.stderr), exitCode, timedOut };
}

/** Pumps a hijacked connection to and from the session's streams; settles when the output ends. */
async function pump(
  socket: Socket,
  tty: boolean,
  io: ExecIO,
  resize: (w: number, h: number) => Promise<void>,
) {
  socket.on("error", () => {}); // the read loop below sees the end
  if (io.stdin) {
    io.stdin.on("data", (d: Buffer) => socket.write(d));
    io.stdin.once("end", () => socket.end());
    io.stdin.on("error", () => socket.end());
  } else {
    socket.end();
  }
  if (io.resize) {
    const sizes = io.resize;
    void (async () => {
      try {
        for await (const s of sizes) await resize(s.width, s.height).catch(() => {});
      } catch {
        // the client went away: nothing more to resize
      }
    })();
  }
  const write = (w: Writable | undefined, data: Buffer) =>
    w && !w.destroyed ? new Promise<void>((r) => (w.write(data) ? r() : w.once("drain", r))) : undefined;
  try {
    if (tty) {
      for await (const d of socket) await write(io.stdout, d as Buffer);
    } else {
      for await (const f of demux(socket)) {
        if (f.stream === "stdout") await write(io.stdout, Buffer.from(f.data));
        else if (f.stream === "stderr") await write(io.stderr, Buffer.from(f.data));
      }
    }
  } catch (err) {
    if (!io.signal.aborted) throw err;
  } finally {
    socket.destroy();
  }
}

export async function exec(
  engine: DockerEngine,
  containerId: string,
  cmd: string[],
  tty: boolean,
  io: ExecIO,
): Promise<number> {
  const execId = await execCreate(engine, containerId, cmd, {
    tty,
    stdin: io.stdin !== undefined,
    stdout: io.stdout !== undefined,
    stderr: io.stderr !== undefined,
  });
  const socket = await engine.hijack(`/exec/${execId}/start`, { body: { Detach: false, Tty: tty } });
  const onAbort = () => {
    void killExec(engine, execId);
    socket.destroy();
  };
  io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await pump(socket, tty, io, (w, h) =>
      engine.json("POST", `/exec/${execId}/resize`, { query: { w, h } }).then(() => {}),
    );
  } finally {
    io.signal.removeEventListener("abort", onAbort);
  }
  return execExitCode(engine, execId);
}

export async function attach(
  engine: DockerEngine,
  containerId: string,
  tty: boolean,
  io: ExecIO,
): Promise<number> {
  const socket = await engine.hijack(`/containers/${containerId}/attach`, {
    query: {
      stream: true,
      stdin: io.stdin !== undefined,
      stdout: io.stdout !== undefined,
      stderr: io.stderr !== undefined,
    },
  });
  const onAbort = () => socket.destroy();
  io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await pump(socket, tty, io, (w, h) =>
      engine.json("POST", `/containers/${containerId}/resize`, { query: { w, h } }).then(() => {}),
    );
  } finally {
    io.signal.removeEventListener("abort", onAbort);
  }
  const s = await engine
    .json<{ State: { Running: boolean; ExitCode: number } }>("GET", `/containers/${containerId}/json`)
    .catch(() => undefined);
  return s && !s.State.Running ? s.State.ExitCode : 0;
}
