/**
 * A unary gRPC call over node:http2 with hand-encoded messages, for `berth version`: loading
 * grpc-js and the generated CRI types costs ~60 ms of start-up, more than the call itself.
 */
import http2 from "node:http2";
import net from "node:net";
import { socketPath } from "./errors.js";

export interface LiteError extends Error {
  code: number;
  details: string;
}

function fail(code: number, details: string): LiteError {
  return Object.assign(new Error(`${code}: ${details}`), { code, details });
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
    const session = http2.connect("http://localhost", { createConnection: () => net.connect(sock) });
    const timer = setTimeout(() => {
      session.destroy();
      reject(fail(4, "Deadline exceeded"));
    }, timeoutMs);
    const done = (err: Error | undefined, value?: Buffer) => {
      clearTimeout(timer);
      session.close();
      if (err) reject(err);
      else resolve(value ?? Buffer.alloc(0));
    };
    session.on("error", (err) =>
      done(fail(14, `No connection established. Last error: ${(err as Error).message}`)),
    );
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = "";
    const headers = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
    };
    req.on("response", headers);
    req.on("trailers", headers);
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("error", (err) => done(fail(14, err.message)));
    req.on("end", () => {
      if (status !== undefined && status !== "0") return done(fail(Number(status), message));
      const all = Buffer.concat(chunks);
      done(undefined, all.subarray(5, 5 + (all.length >= 5 ? all.readUInt32BE(1) : 0)));
    });
    req.end(frame);
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
