/**
 * A small WebSocket client for the streaming server (tests and the berth CLI): remotecommand over
 * v5/v4/older channel protocols and the kubelet's WebSocket port-forward, the WebSocket
 * counterparts of execOverSpdy and portForwardOverSpdy.
 */
import { once } from "node:events";
import { Readable, type Writable } from "node:stream";
import WebSocket from "ws";
import { ExecError, exitCodeFromStatus, UpgradeError } from "../client.js";
import { encodeResize, type TerminalSize } from "../remotecommand.js";
import { ChannelSocket } from "./channels.js";
import { ERROR, execProtocolTraits, RESIZE, STDERR, STDIN, STDOUT } from "./exec.js";

/**
 * Opens `url` as a WebSocket offering `protocols` (none: no header); rejects with UpgradeError on
 * a non-101 answer. Resolves with the socket paused (the server's first messages may have come
 * with the handshake): resume() it once the listeners are on.
 */
export function connectWebSocket(url: string, protocols: readonly string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws"), [...protocols], { perMessageDeflate: false });
    ws.once("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () => reject(new UpgradeError(res.statusCode ?? 0, Buffer.concat(chunks).toString())));
      res.once("error", reject);
    });
    ws.once("error", reject);
    ws.once("open", () => {
      ws.pause();
      ws.off("error", reject);
      ws.on("error", () => {});
      resolve(ws);
    });
  });
}

export interface ExecOverWebSocketOptions {
  /** Offered subprotocols, best first; default ["v5.channel.k8s.io"]. [] offers none. */
  protocols?: readonly string[];
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** Terminal sizes to send on the resize channel (tty sessions). */
  resize?: AsyncIterable<TerminalSize>;
  /** Aborting drops the connection (the server kills the process). */
  signal?: AbortSignal;
  /** Called with the negotiated protocol once the server's first (empty) message arrived. */
  onReady?: (protocol: string) => void;
}

/**
 * Runs the request behind an exec/attach URL; resolves with the exit code (v4/v5: from the
 * status; older protocols: 0 without an error text, else the code in it), throws ExecError for
 * other failures. The WebSocket is gone when it returns.
 */
export async function execOverWebSocket(url: string, o: ExecOverWebSocketOptions = {}): Promise<number> {
  const ws = await connectWebSocket(url, o.protocols ?? ["v5.channel.k8s.io"]);
  const traits = execProtocolTraits(ws.protocol);
  const ch = new ChannelSocket(ws, traits);
  const closed = once(ws, "close") as Promise<[number, Buffer]>;
  const onAbort = () => ws.terminate();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  if (o.signal?.aborted) ws.terminate();
  try {
    // The first message (empty, on the lowest open channel) says the server is up.
    ws.once("message", () => o.onReady?.(ws.protocol));
    const ends: Promise<unknown>[] = [];
    const errorText: Buffer[] = [];
    for (const [channel, out] of [
      [STDOUT, o.stdout],
      [STDERR, o.stderr],
      [ERROR, undefined],
    ] as const) {
      const r = ch.reader(channel);
      r.on("data", (b: Buffer) => {
        if (channel === ERROR) errorText.push(b);
        else out?.write(b);
      });
      ends.push(once(r, "end"));
    }
    ws.resume();
    if (o.stdin) o.stdin.pipe(ch.writer(STDIN, true));
    if (o.resize) void sendResizes(ch, o.resize);
    const [code] = await closed;
    await Promise.all(ends);
    const text = Buffer.concat(errorText).toString("utf8");
    if (o.signal?.aborted) throw new ExecError("exec: aborted");
    if (code !== 1000 && text === "") throw new ExecError(`exec: connection closed (code ${code})`);
    if (traits.v4) return exitCodeFromStatus(text);
    if (text === "") return 0;
    const m = /exit code (\d+)$/.exec(text.trim());
    if (m) return Number(m[1]);
    throw new ExecError(`exec: ${text.trim()}`);
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    o.stdin?.unpipe();
    ws.terminate();
  }
}

async function sendResizes(ch: ChannelSocket, sizes: AsyncIterable<TerminalSize>): Promise<void> {
  for await (const s of sizes) {
    if (!ch.isOpen) return;
    ch.send(RESIZE, Buffer.from(encodeResize(s)));
  }
}

/** One forwarded port of a WebSocket port-forward. */
export interface WebSocketForwardedPort {
  port: number;
  /** What the pod's port sends (without the 2-byte port prefix); ends when the socket closes. */
  data: Readable;
  /** Bytes for the pod's port. (A channel cannot be half-closed; close() ends the connection.) */
  input: Writable;
  /** The error channel's text (without the port prefix) once the socket closed; "" if none. */
  error: Promise<string>;
}

export interface WebSocketPortForward {
  protocol: string;
  ports: WebSocketForwardedPort[];
  /** Resolves with the close code once the socket is closed (by either side). */
  closed: Promise<number>;
  close(): void;
}

/**
 * Opens a port-forward WebSocket to `url` (the ports are its `port` query parameters, or those of
 * the CRI request) and checks the port prefix the server sends on each channel.
 */
export async function portForwardOverWebSocket(
  url: string,
  ports: readonly number[],
  protocols: readonly string[] = ["v4.channel.k8s.io"],
): Promise<WebSocketPortForward> {
  const ws = await connectWebSocket(url, protocols);
  const ch = new ChannelSocket(ws, { base64: ws.protocol.includes("base64."), closeSignals: false });
  const closed = once(ws, "close").then(([code]) => code as number);
  const forwarded = ports.map((port, i) => {
    const error = readAll(withoutPrefix(ch.reader(2 * i + 1), port)).then((b) => b.toString("utf8"));
    error.catch(() => {}); // awaited by the caller, if at all
    return { port, data: withoutPrefix(ch.reader(2 * i), port), input: ch.writer(2 * i), error };
  });
  ws.resume();
  return { protocol: ws.protocol, ports: forwarded, closed, close: () => ws.close(1000) };
}

/** `r` without its first two bytes, which must be `port` little-endian (else the stream errors). */
function withoutPrefix(r: Readable, port: number): Readable {
  let seen = Buffer.alloc(0);
  return Readable.from(
    (async function* () {
      for await (const chunk of r as AsyncIterable<Buffer>) {
        if (seen.length >= 2) {
          yield chunk;
          continue;
        }
        seen = Buffer.concat([seen, chunk]);
        if (seen.length < 2) continue;
        const got = seen.readUInt16LE(0);
        if (got !== port) throw new Error(`port-forward: expected port ${port} on the channel, got ${got}`);
        if (seen.length > 2) yield seen.subarray(2);
      }
    })(),
    { objectMode: false },
  );
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
