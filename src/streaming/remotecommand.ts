/**
 * Server side of Kubernetes' remotecommand protocol over SPDY (k8s.io/apimachinery
 * pkg/util/remotecommand + kubelet pkg/cri/streaming/remotecommand): the client opens one stream
 * per `streamtype` header (error, stdin, stdout, stderr, resize); we reply to each as it arrives
 * (clients wait for the SYN_REPLY before opening the next), wait until all expected ones are
 * there, run the command, end stdout/stderr, then write the exit status to the error stream:
 *  - v4.channel.k8s.io: a metav1.Status JSON (Success, or NonZeroExitCode with an ExitCode cause);
 *  - v1..v3 (channel.k8s.io, v2/v3.channel.k8s.io): nothing on success, else the error text.
 * Resize (tty only, v3+) carries concatenated JSON objects {"Width":w,"Height":h}.
 *
 * runExecSession() (handler, streams, status) is transport-neutral: the WebSocket transport
 * (websocket/exec.ts) runs it too.
 */
import { PassThrough, type Readable, type Writable } from "node:stream";
import type { SpdyConnection, SpdyStream } from "./spdy/connection.js";

export const EXEC_PROTOCOLS = [
  "v4.channel.k8s.io",
  "v3.channel.k8s.io",
  "v2.channel.k8s.io",
  "channel.k8s.io",
] as const;

/** The CRI ExecRequest / AttachRequest fields the streaming server needs. */
export interface ExecRequest {
  containerId: string;
  /** Command (exec only; empty for attach). */
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface TerminalSize {
  width: number;
  height: number;
}

/** What an exec/attach handler gets: streams per the request's flags, and cancellation. */
export interface ExecIO {
  /** The client's stdin; ends when the client closes it. */
  stdin?: Readable;
  /** Write the process output here; the server ends them after the handler returns. */
  stdout?: Writable;
  stderr?: Writable;
  /** Terminal size changes (tty only). */
  resize?: AsyncIterable<TerminalSize>;
  /** Aborted when the client goes away (or the server closes): kill the process then. */
  signal: AbortSignal;
}

/** Runs the command; resolves with its exit code, throws for "could not run". */
export type ExecHandler = (req: ExecRequest, io: ExecIO) => Promise<number>;

export interface ServeExecOptions {
  /** How long to wait for the client's streams. Default 30 s. */
  streamCreationTimeoutMs?: number;
  /** After the status is sent, the connection is destroyed if the client has not closed it. Default 10 s. */
  closeTimeoutMs?: number;
}

/** metav1.Status for an exit code (what the kubelet writes on the v4 error stream). */
export function exitStatus(exitCode: number, cmd: readonly string[]): Record<string, unknown> {
  if (exitCode === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${cmd.join(" ")}], exit code ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  };
}

/** metav1.Status for a failure to run at all. */
export function errorStatus(err: unknown): Record<string, unknown> {
  const message = err instanceof Error ? err.message : String(err);
  return {
    metadata: {},
    status: "Failure",
    message,
    reason: "InternalError",
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** One resize message as clients send it (kubectl's TerminalSize JSON). */
export function encodeResize(size: TerminalSize): string {
  return JSON.stringify({ Width: size.width, Height: size.height });
}

/** Parses concatenated JSON objects (Go's json.Decoder stream) into terminal sizes. */
export async function* parseResize(stream: Readable): AsyncGenerator<TerminalSize> {
  let buf = "";
  const scanner = new ObjectScanner();
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
    buf += (chunk as Buffer).toString("utf8");
    for (;;) {
      const end = scanner.end(buf);
      if (end < 0) break;
      const text = buf.slice(0, end);
      buf = buf.slice(end);
      try {
        const v = JSON.parse(text) as { Width?: unknown; Height?: unknown };
        // The kubelet decodes into uint16 fields.
        if (isUint16(v.Width) && isUint16(v.Height)) yield { width: v.Width, height: v.Height };
      } catch {
        return; // garbage: the kubelet stops reading resizes too
      }
    }
    if (buf.length > 64 * 1024) return;
  }
}

const isUint16 = (n: unknown): n is number =>
  Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffff;

/**
 * Finds the end of the first complete top-level JSON object in a growing buffer (leading junk
 * skipped). It resumes where the last call stopped, so an object arriving a byte at a time costs
 * linear time, not quadratic; after a hit the caller drops the object and scanning starts over.
 */
class ObjectScanner {
  private i = 0;
  private depth = 0;
  private inStr = false;
  private esc = false;

  /** Index just past the object in `s` (the buffer passed last time, maybe grown), or -1. */
  end(s: string): number {
    for (; this.i < s.length; this.i++) {
      const c = s[this.i];
      if (this.inStr) {
        if (this.esc) this.esc = false;
        else if (c === "\\") this.esc = true;
        else if (c === '"') this.inStr = false;
        continue;
      }
      if (c === '"') this.inStr = true;
      else if (c === "{") this.depth++;
      else if (c === "}") {
        this.depth--;
        if (this.depth === 0) {
          const end = this.i + 1;
          this.i = 0;
          this.depth = 0;
          return end;
        }
      }
    }
    return -1;
  }
}

type StreamType = "error" | "stdin" | "stdout" | "stderr" | "resize";

/**
 * Serves one exec/attach request on an upgraded SPDY connection. Resolves when it is over
 * (status sent, or the client went away). Never throws.
 */
export async function serveExec(
  conn: SpdyConnection,
  protocol: string,
  req: ExecRequest,
  handler: ExecHandler,
  opts: ServeExecOptions = {},
): Promise<void> {
  const v4 = protocol === "v4.channel.k8s.io";
  const resizeSupported = protocol === "v4.channel.k8s.io" || protocol === "v3.channel.k8s.io";
  const expected = new Set<StreamType>(["error"]);
  if (req.stdin) expected.add("stdin");
  if (req.stdout) expected.add("stdout");
  if (req.stderr && !req.tty) expected.add("stderr");
  if (req.tty && resizeSupported) expected.add("resize");

  const streams = new Map<StreamType, SpdyStream>();
  const abort = new AbortController();
  let closeTimer: NodeJS.Timeout | undefined;
  conn.once("close", () => {
    abort.abort(new Error("client disconnected"));
    if (closeTimer) clearTimeout(closeTimer);
  });

  const allThere = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), opts.streamCreationTimeoutMs ?? 30_000);
    timer.unref();
    const done = (ok: boolean) => {
      clearTimeout(timer);
      resolve(ok);
    };
    conn.once("close", () => done(false));
    conn.onStream((stream) => {
      const type = stream.headers.streamtype as StreamType | undefined;
      if (type === undefined || !expected.has(type) || streams.has(type)) {
        stream.reset(); // unexpected stream: refuse it, as the kubelet's handler does
        return;
      }
      try {
        // Like the kubelet's upgrader: reply at once, without FIN (stdin/resize are FINed at the end).
        stream.reply({});
      } catch {
        return;
      }
      stream.on("error", () => {});
      // The client sends nothing on these; consume its FIN so the stream can close fully.
      if (type === "error" || type === "stdout" || type === "stderr") stream.resume();
      streams.set(type, stream);
      if (streams.size === expected.size) done(true);
    });
  });

  if (!(await allThere)) {
    // Timed out (or the client went away): tell the client if we can, then drop everything.
    const err = streams.get("error");
    if (err && !conn.isClosed) {
      const msg = "timed out waiting for client to create streams";
      err.end(v4 ? JSON.stringify(errorStatus(new Error(msg))) : msg);
      await new Promise((r) => setTimeout(r, 100));
    }
    conn.destroy();
    return;
  }

  const errorStream = streams.get("error")!;
  const stdinStream = streams.get("stdin");
  const resizeStream = streams.get("resize");
  const outcome = await runExecSession(
    req,
    handler,
    {
      stdin: stdinStream,
      stdout: streams.get("stdout"),
      stderr: streams.get("stderr"),
      resize: resizeStream,
    },
    abort.signal,
  );
  if (conn.isClosed) return;
  const status = statusText(outcome, v4);
  errorStream.end(status === "" ? undefined : status);
  closeTimer = setTimeout(() => conn.destroy(), opts.closeTimeoutMs ?? 10_000);
  closeTimer.unref();
  // GOAWAY; the connection ends once the client has closed its side of the streams (or it
  // closes the connection itself, as kubectl does after reading the status).
  void conn.close();
  for (const s of [stdinStream, resizeStream]) {
    if (!s) continue;
    s.resume(); // discard what is still in flight, so it never stalls the connection
    if (!s.writableEnded && !s.destroyed) s.end();
  }
}

/** A transport's streams for one exec session (each present only if the request asked for it). */
export interface ExecSessionStreams {
  /** The client's stdin; its end (or close) ends the handler's stdin. */
  stdin?: Readable;
  /** Where the process output goes; ended once the handler is done. */
  stdout?: Writable;
  stderr?: Writable;
  /** Raw resize messages (concatenated JSON); used for tty sessions only. */
  resize?: Readable;
}

/** How an exec session ended: the metav1.Status (v4+) and the plain error text (v1..v3, "" on success). */
export interface ExecOutcome {
  status: Record<string, unknown>;
  text: string;
}

/**
 * Runs the handler on a transport's streams (SPDY or WebSocket): gives it PassThroughs (so that
 * its end()/destroy() never touch the transport's streams), computes the status, then ends and
 * flushes stdout/stderr unless `signal` (the client went away) fired.
 */
export async function runExecSession(
  req: ExecRequest,
  handler: ExecHandler,
  streams: ExecSessionStreams,
  signal: AbortSignal,
): Promise<ExecOutcome> {
  const outPT = streams.stdout ? new PassThrough() : undefined;
  const errPT = streams.stderr ? new PassThrough() : undefined;
  const outDone = outPT && streams.stdout ? pipeOut(outPT, streams.stdout) : Promise.resolve();
  const errDone = errPT && streams.stderr ? pipeOut(errPT, streams.stderr) : Promise.resolve();
  const stdin = streams.stdin;
  const inPT = stdin ? new PassThrough() : undefined;
  if (stdin && inPT) {
    stdin.pipe(inPT);
    stdin.on("close", () => {
      if (!stdin.readableEnded) inPT.end();
    });
  }
  let outcome: ExecOutcome;
  try {
    const code = await handler(req, {
      stdin: inPT,
      stdout: outPT,
      stderr: errPT,
      resize: streams.resize && req.tty ? parseResize(streams.resize) : undefined,
      signal,
    });
    const status = exitStatus(code, req.cmd);
    outcome = { status, text: code === 0 ? "" : String(status.message) };
  } catch (err) {
    const status = errorStatus(err);
    outcome = { status, text: String(status.message) };
  }
  if (stdin && inPT) {
    stdin.unpipe(inPT);
    stdin.resume(); // discard stdin still in flight, so it never stalls the transport
  }
  if (signal.aborted) return outcome;
  outPT?.end();
  errPT?.end();
  await Promise.all([outDone, errDone]);
  return outcome;
}

/** What goes on the error stream/channel at the end: the Status JSON (v4+) or the error text. */
export function statusText(outcome: ExecOutcome, v4: boolean): string {
  return v4 ? JSON.stringify(outcome.status) : outcome.text;
}

/** Copies `src` into the transport stream `dst` and ends it; resolves when done or the stream died. */
function pipeOut(src: PassThrough, dst: Writable): Promise<void> {
  return new Promise((resolve) => {
    src.pipe(dst);
    dst.once("finish", () => resolve());
    dst.once("close", () => resolve());
    dst.once("error", () => {
      src.resume();
      resolve();
    });
  });
}
