/**
 * Server side of portforward.k8s.io over SPDY (kubelet pkg/cri/streaming/portforward/httpstream.go):
 * per forwarded connection the client opens a pair of streams with the same `requestid` header
 * (older clients: none, then the pair is (error id, error id + 2)): `streamtype: error` and
 * `streamtype: data`, both with a `port` header. We reply to each stream as it arrives; once a
 * pair is complete the handler forwards the data stream; a failure is written as text to the
 * error stream. Pairs not completed within the stream creation timeout get an error too.
 *
 * forwardInNetns() is the handler for pods with a pinned network namespace: Node cannot setns(),
 * so every connection runs `nsenter --net=<file> <node> portforward-helper.js <port>`, which
 * connects to 127.0.0.1:<port> in the pod and pipes its stdin/stdout to the socket.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import type { SpdyConnection, SpdyStream } from "./spdy/connection.js";

export const PORTFORWARD_PROTOCOL = "portforward.k8s.io";

/** The CRI PortForwardRequest fields. */
export interface PortForwardRequest {
  podSandboxId: string;
  /** Ports allowed (empty: any; the kubelet passes what the client asked for, usually nothing). */
  port: number[];
}

/** One forwarded connection. */
export interface PortForwardConn {
  port: number;
  requestId: string;
  /** Bytes from/to the client; end() sends FIN, the readable ends at the client's FIN. */
  stream: Duplex;
  /** Aborted when the client resets the streams or the connection goes away. */
  signal: AbortSignal;
}

/** Forwards one connection; resolves when it is over, throws to report an error to the client. */
export type PortForwardHandler = (req: PortForwardRequest, conn: PortForwardConn) => Promise<void>;

export interface ServePortForwardOptions {
  /** How long the second stream of a pair may take. Default 30 s. */
  streamCreationTimeoutMs?: number;
  /** Idle connection (no streams at all) is closed after this. Default 4 h, like the kubelet. */
  idleTimeoutMs?: number;
}

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** Serves port-forwarding on an upgraded connection; resolves when the connection is closed. */
export function servePortForward(
  conn: SpdyConnection,
  req: PortForwardRequest,
  handler: PortForwardHandler,
  opts: ServePortForwardOptions = {},
): Promise<void> {
  const pairs = new Map<string, Pair>();
  const timeout = opts.streamCreationTimeoutMs ?? 30_000;
  const idleMs = opts.idleTimeoutMs ?? 4 * 3600_000;
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = () => {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (conn.streamCount === 0) conn.destroy();
      else armIdle();
    }, idleMs);
    idleTimer.unref();
  };
  armIdle();

  conn.onStream((stream) => {
    armIdle();
    stream.on("error", () => {});
    const type = stream.headers.streamtype;
    const portText = stream.headers.port;
    if ((type !== "error" && type !== "data") || portText === undefined) {
      stream.reset();
      return;
    }
    let requestId = stream.headers.requestid;
    if (requestId === undefined) requestId = String(type === "error" ? stream.id : stream.id - 2);
    try {
      stream.reply({});
    } catch {
      return;
    }
    let pair = pairs.get(requestId);
    if (!pair) {
      const id = requestId;
      pair = {
        timer: setTimeout(() => {
          const p = pairs.get(id);
          if (!p) return;
          pairs.delete(id);
          if (p.error && !p.error.destroyed) p.error.end(`timed out waiting for streams of request ${id}`);
          p.data?.reset();
        }, timeout),
      };
      pair.timer.unref();
      pairs.set(requestId, pair);
    }
    if (pair[type]) {
      stream.reset(); // duplicate stream type for this request
      return;
    }
    pair[type] = stream;
    if (pair.error && pair.data) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      void forward(req, requestId, pair.error, pair.data, handler);
    }
  });

  return new Promise((resolve) => {
    conn.once("close", () => {
      if (idleTimer) clearTimeout(idleTimer);
      for (const p of pairs.values()) clearTimeout(p.timer);
      pairs.clear();
      resolve();
    });
  });
}

async function forward(
  req: PortForwardRequest,
  requestId: string,
  errorStream: SpdyStream,
  data: SpdyStream,
  handler: PortForwardHandler,
): Promise<void> {
  const abort = new AbortController();
  const onGone = () => abort.abort(new Error("stream closed"));
  data.once("close", onGone);
  errorStream.once("close", onGone);
  const error = await forwardPort(req, data.headers.port ?? "", requestId, data, abort.signal, handler);
  data.off("close", onGone);
  errorStream.off("close", onGone);
  if (!errorStream.destroyed) errorStream.end(error);
}

/**
 * Checks the port (a valid one, and one of `req.port` if that restricts them) and runs the
 * handler for one forwarded connection on `data` (any transport). Resolves with the error text
 * for the client's error stream, or undefined when all went well; after an error `data` is ended.
 */
export async function forwardPort(
  req: PortForwardRequest,
  portText: string,
  requestId: string,
  data: Duplex,
  signal: AbortSignal,
  handler: PortForwardHandler,
): Promise<string | undefined> {
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  try {
    if (!(port >= 1 && port <= 65535)) throw new Error(`invalid port ${JSON.stringify(portText)}`);
    if (req.port.length > 0 && !req.port.includes(port))
      throw new Error(`port ${port} was not requested for this port-forward session`);
    await handler(req, { port, requestId, stream: data, signal });
    return undefined;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (!data.destroyed && !data.writableEnded) data.end();
    return `error forwarding port ${Number.isNaN(port) ? portText : port} to pod ${req.podSandboxId}: ${msg}`;
  }
}

export interface NetnsForwardOptions {
  /** The pod's pinned network namespace file. */
  netnsPath: string;
  port: number;
  stream: Duplex;
  signal: AbortSignal;
  /** Default /usr/bin/nsenter, then PATH. */
  nsenterPath?: string;
  /** Default process.execPath. */
  nodePath?: string;
  /** Default the compiled portforward-helper.js next to this file. */
  helperPath?: string;
}

// From ../streaming/, not ./: the path holds from the bundled berthd in bin/ too.
export const PORTFORWARD_HELPER = fileURLToPath(
  new URL("../streaming/portforward-helper.js", import.meta.url),
);

/**
 * Forwards `stream` to 127.0.0.1:port inside the network namespace `netnsPath`. Resolves when
 * both directions are done; throws with the helper's message if it could not connect.
 */
export function forwardInNetns(o: NetnsForwardOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(
      o.nsenterPath ?? "nsenter",
      [
        `--net=${o.netnsPath}`,
        o.nodePath ?? process.execPath,
        o.helperPath ?? PORTFORWARD_HELPER,
        String(o.port),
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => {
      stderr = (stderr + b.toString("utf8")).slice(-4096);
    });
    child.stdin.on("error", () => {});
    o.stream.pipe(child.stdin); // client FIN → helper stdin EOF → socket half-close
    child.stdout.on("data", (b: Buffer) => {
      if (!o.stream.destroyed && !o.stream.writableEnded && !o.stream.write(b)) {
        child.stdout.pause();
        o.stream.once("drain", () => child.stdout.resume());
      }
    });
    // The pod closed its side: FIN the data stream now, not only when the helper exits (which
    // waits for the client's half of the connection too).
    child.stdout.once("end", () => {
      if (!o.stream.destroyed && !o.stream.writableEnded) o.stream.end();
    });
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    o.signal.addEventListener("abort", kill, { once: true });
    child.once("error", (err) => {
      o.signal.removeEventListener("abort", kill);
      reject(err);
    });
    child.once("close", (code, signal) => {
      o.signal.removeEventListener("abort", kill);
      o.stream.unpipe(child.stdin);
      if (code === 0) {
        if (!o.stream.destroyed && !o.stream.writableEnded) {
          o.stream.end();
        }
        resolve();
        return;
      }
      if (o.signal.aborted) {
        resolve();
        return;
      }
      reject(new Error(stderr.trim() || `port-forward helper exited with ${code ?? signal}`));
    });
  });
}

/**
 * Forwards `stream` to 127.0.0.1:port (or `host`:port) from berthd's own network namespace: the
 * handler for pods on the host's network, which have no namespace to enter, and for sandboxed
 * pods (gVisor), whose network stack is not the namespace's. Same half-close semantics as the
 * helper: each direction ends at its EOF; resolves when the socket is closed.
 */
export function forwardOnHost(
  o: Pick<NetnsForwardOptions, "port" | "stream" | "signal"> & { host?: string },
): Promise<void> {
  const host = o.host ?? "127.0.0.1";
  return new Promise<void>((resolve, reject) => {
    const sock = net.connect({ port: o.port, host, allowHalfOpen: true });
    sock.setNoDelay(true);
    let connected = false;
    const abort = () => sock.destroy();
    o.signal.addEventListener("abort", abort, { once: true });
    sock.once("connect", () => {
      connected = true;
      o.stream.pipe(sock);
      sock.pipe(o.stream);
    });
    sock.once("error", (err) => {
      o.signal.removeEventListener("abort", abort);
      const what = connected ? "connection to" : "failed to connect to";
      reject(new Error(`${what} ${host}:${o.port} from the host: ${err.message}`));
    });
    sock.once("close", (hadError) => {
      o.signal.removeEventListener("abort", abort);
      o.stream.unpipe(sock);
      if (!hadError) resolve();
    });
  });
}
