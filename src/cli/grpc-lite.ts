/**
 * A unary gRPC call over HTTP/2 frames written on a plain socket, for `berth version`: loading
 * grpc-js and the generated CRI types costs ~60 ms of start-up, and node:http2 (with http,
 * tls and crypto behind it) another ~10 ms, more than the call itself. One stream, small
 * replies; the server's headers are read with a real HPACK decoder (hpack.ts).
 */
import net from "node:net";
import { lengthPrefixed } from "../api/grpc/framing.js";
import { socketPath } from "./errors.js";
import { type Header, HpackDecoder } from "./hpack.js";

export interface LiteError extends Error {
  code: number;
  details: string;
}

function fail(code: number, details: string): LiteError {
  return Object.assign(new Error(`${code}: ${details}`), { code, details });
}

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const PING = 6;
const GOAWAY = 7;
const CONTINUATION = 9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

function frame(type: number, flags: number, stream: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream, 5);
  b.set(payload, 9);
  return b;
}

/** A literal header field without indexing; `index` names a static-table name, 0 a literal one. */
function literal(index: number, name: string, value: string): Buffer {
  const str = (s: string) => {
    if (s.length > 126) throw new Error("header too long for the lite client");
    return Buffer.concat([Buffer.from([s.length]), Buffer.from(s, "latin1")]);
  };
  if (index === 0) return Buffer.concat([Buffer.from([0]), str(name), str(value)]);
  const head = index < 15 ? Buffer.from([index]) : Buffer.from([15, index - 15]);
  return Buffer.concat([head, str(value)]);
}

function requestHeaders(path: string, timeoutMs: number): Buffer {
  return Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table 3 and 6)
    literal(4, ":path", path),
    literal(1, ":authority", "localhost"),
    literal(31, "content-type", "application/grpc"),
    literal(0, "te", "trailers"),
    literal(0, "grpc-timeout", `${Math.max(1, Math.ceil(timeoutMs))}m`),
  ]);
}

/** Calls `path` (e.g. "/runtime.v1.RuntimeService/Version") with `body`; resolves the reply's bytes. */
export function unaryCall(
  endpoint: string,
  path: string,
  body: Uint8Array,
  timeoutMs: number,
): Promise<Buffer> {
  const sock = socketPath(endpoint);
  if (!sock) return Promise.reject(new Error(`unsupported endpoint "${endpoint}": want a unix socket`));
  return new Promise((resolve, reject) => {
    const socket = net.connect(sock);
    const hpack = new HpackDecoder();
    const headers: Header[] = [];
    const data: Buffer[] = [];
    let block: Buffer[] = [];
    let blockEndsStream = false;
    let pending: Buffer = Buffer.alloc(0);
    let settled = false;
    const done = (err: Error | undefined, value?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value ?? Buffer.alloc(0));
    };
    const timer = setTimeout(() => done(fail(4, "Deadline exceeded")), timeoutMs);
    socket.on("error", (err) => done(fail(14, `No connection established. Last error: ${err.message}`)));
    socket.on("close", () => done(fail(14, "Connection dropped before the reply")));

    const finish = () => {
      const get = (name: string) => headers.findLast(([n]) => n === name)?.[1];
      const status = get("grpc-status");
      if (status === undefined) {
        return done(fail(14, `no gRPC status in the reply (HTTP status ${get(":status") ?? "none"})`));
      }
      if (status !== "0") {
        let message = get("grpc-message") ?? "";
        try {
          message = decodeURIComponent(message);
        } catch {}
        return done(fail(Number(status), message));
      }
      const all = Buffer.concat(data);
      if (all.length < 5 || all.length < 5 + all.readUInt32BE(1)) return done(fail(13, "truncated reply"));
      if (all[0] !== 0) return done(fail(12, "compressed replies are not supported"));
      done(undefined, all.subarray(5, 5 + all.readUInt32BE(1)));
    };

    const onFrame = (type: number, flags: number, stream: number, payload: Buffer) => {
      if (type === SETTINGS && !(flags & ACK)) socket.write(frame(SETTINGS, ACK, 0));
      else if (type === PING && !(flags & ACK)) socket.write(frame(PING, ACK, 0, payload));
      else if (type === GOAWAY) done(fail(14, "Connection dropped (GOAWAY)"));
      else if (stream !== 1) return;
      else if (type === RST_STREAM) done(fail(13, `stream reset (HTTP/2 error ${payload.readUInt32BE(0)})`));
      else if (type === DATA || type === HEADERS || type === CONTINUATION) {
        let p = payload;
        if (type !== CONTINUATION && flags & PADDED) p = p.subarray(1, p.length - (p[0] ?? 0));
        if (type === HEADERS && flags & PRIORITY) p = p.subarray(5);
        if (type === DATA) {
          data.push(p);
          if (p.length > 0) {
            // Give the window back, so that replies past 64 KiB do not stall.
            const inc = Buffer.alloc(4);
            inc.writeUInt32BE(p.length);
            socket.write(Buffer.concat([frame(8, 0, 0, inc), frame(8, 0, 1, inc)]));
          }
          if (flags & END_STREAM) finish();
          return;
        }
        if (type === HEADERS) {
          block = [];
          blockEndsStream = (flags & END_STREAM) !== 0;
        }
        block.push(p);
        if (flags & END_HEADERS) {
          headers.push(...hpack.decode(Buffer.concat(block)));
          if (blockEndsStream) finish();
        }
      }
    };

    socket.on("data", (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      try {
        while (pending.length >= 9 && !settled) {
          const len = pending.readUIntBE(0, 3);
          if (pending.length < 9 + len) break;
          const payload = pending.subarray(9, 9 + len);
          onFrame(pending[3]!, pending[4]!, pending.readUInt32BE(5) & 0x7fffffff, payload);
          pending = pending.subarray(9 + len);
        }
      } catch (err) {
        done(fail(13, `bad reply: ${(err as Error).message}`));
      }
    });

    socket.write(
      Buffer.concat([
        Buffer.from(PREFACE, "latin1"),
        frame(SETTINGS, 0, 0, Buffer.from([0, 2, 0, 0, 0, 0])), // ENABLE_PUSH = 0
        frame(HEADERS, END_HEADERS, 1, requestHeaders(path, timeoutMs)),
        frame(DATA, END_STREAM, 1, lengthPrefixed(body)),
      ]),
    );
  });
}

/** The string fields of a protobuf message by field number (others skipped). */
export function decodeStrings(buf: Buffer): Map<number, string> {
  const out = new Map<number, string>();
  let i = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++] ?? 0;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80 || i >= buf.length) return v;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 2) {
      const len = varint();
      out.set(field, buf.toString("utf8", i, i + len));
      i += len;
    } else if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else break;
  }
  return out;
}
