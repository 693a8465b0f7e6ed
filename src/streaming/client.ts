/**
 * A small SPDY/3.1 client for the streaming server (tests and the berth CLI): HTTP upgrade, then
 * remotecommand (v4.channel.k8s.io) or portforward.k8s.io, as kubectl/crictl do.
 */
import http from "node:http";
import type { Socket } from "node:net";
import type { Readable, Writable } from "node:stream";
import { encodeResize } from "./remotecommand.js";
import { SpdyConnection, type SpdyStream } from "./spdy/connection.js";

export class UpgradeError extends Error {
  override name = "UpgradeError";
  constructor(
    readonly statusCode: number,
    readonly body: string,
  ) {
    super(`upgrade failed: HTTP ${statusCode}: ${body.trim()}`);
  }
}

/** Upgrades `url` to SPDY/3.1 offering `protocols`; resolves with the connection and the chosen one. */
export function upgradeSpdy(
  url: string,
  protocols: readonly string[],
): Promise<{ conn: SpdyConnection; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: "POST",
      headers: {
        Connection: "Upgrade",
        Upgrade: "SPDY/3.1",
        "X-Stream-Protocol-Version": [...protocols],
      },
    });
    req.once("error", reject);
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () => reject(new UpgradeError(res.statusCode ?? 0, Buffer.concat(chunks).toString())));
      res.once("error", reject);
    });
    req.once("upgrade", (res: http.IncomingMessage, socket: Socket, head: Buffer) => {
      const protocol = String(res.headers["x-stream-protocol-version"] ?? "");
      if (String(res.headers.upgrade ?? "").toLowerCase() !== "spdy/3.1" || !protocols.includes(protocol)) {
        socket.destroy();
        reject(new Error(`bad upgrade response (upgrade ${res.headers.upgrade}, protocol ${protocol})`));
        return;
      }
      socket.setNoDelay(true);
      resolve({ conn: new SpdyConnection(socket, { isServer: false, initialData: head }), protocol });
    });
    req.end();
  });
}

export interface ExecOverSpdyOptions {
  /** Only used in messages; the command is part of the stored request behind the URL. */
  cmd?: string[];
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty?: boolean;
  /** Terminal sizes to send (tty only), e.g. the current one, then one per SIGWINCH. */
  resize?: AsyncIterable<{ width: number; height: number }>;
  /** Aborting drops the connection (the server kills the process). */
  signal?: AbortSignal;
  /** Called once the streams are set up (e.g. to know the server is running the command). */
  onReady?: (conn: SpdyConnection) => void;
}

/** Thrown when the server reports a failure other than a non-zero exit code. */
export class ExecError extends Error {
  override name = "ExecError";
  constructor(
    message: string,
    readonly status?: unknown,
  ) {
    super(message);
  }
}

/** Exit code from a v4 error-stream status (metav1.Status JSON); throws ExecError for others. */
export function exitCodeFromStatus(text: string): number {
  if (text.trim() === "") throw new ExecError("exec: connection closed without a status");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ExecError(`exec: ${text.trim()}`);
  }
  // Any JSON may arrive: only an object is a Status, and its fields may have any type.
  if (typeof parsed !== "object" || parsed === null) throw new ExecError(`exec: ${text.trim()}`);
  const st = parsed as {
    status?: unknown;
    message?: unknown;
    reason?: unknown;
    details?: { causes?: unknown } | null;
  };
  if (st.status === "Success") return 0;
  if (st.reason === "NonZeroExitCode" && Array.isArray(st.details?.causes)) {
    const causes = st.details.causes as Array<{ reason?: unknown; message?: unknown } | null>;
    const cause = causes.find((c) => c?.reason === "ExitCode");
    // As kubectl's strconv.ParseInt(message, 10, 0): decimal digits only.
    const m = typeof cause?.message === "string" ? /^[+-]?\d{1,10}$/.exec(cause.message) : null;
    if (m) return Number(m[0]);
  }
  throw new ExecError(typeof st.message === "string" ? st.message : text, st);
}

/** Runs the request behind an exec/attach URL (v4.channel.k8s.io); resolves with the exit code. */
export async function execOverSpdy(url: string, o: ExecOverSpdyOptions): Promise<number> {
  const { conn } = await upgradeSpdy(url, ["v4.channel.k8s.io"]);
  try {
    if (o.signal?.aborted) throw o.signal.reason ?? new Error("aborted");
    const closed = new Promise<never>((_, reject) => {
      conn.once("close", (err?: Error) => reject(err ?? new ExecError("exec: connection closed")));
      o.signal?.addEventListener("abort", () => conn.destroy(), { once: true });
    });
    closed.catch(() => {});
    const errorStream = conn.openStream({ streamtype: "error" }, { fin: true });
    const status = readText(errorStream);
    const waits: Promise<unknown>[] = [];
    if (o.stdin) {
      const s = conn.openStream({ streamtype: "stdin" });
      s.on("error", () => {});
      o.stdin.pipe(s);
    }
    if (o.tty) {
      const s = conn.openStream({ streamtype: "resize" });
      s.on("error", () => {});
      const sizes = o.resize;
      if (sizes)
        void (async () => {
          for await (const z of sizes) {
            if (s.destroyed || s.writableEnded) break;
            s.write(encodeResize(z));
          }
        })().catch(() => {});
    }
    for (const [type, out] of [
      ["stdout", o.stdout],
      ["stderr", o.tty ? undefined : o.stderr],
    ] as const) {
      if (!out) continue;
      const s = conn.openStream({ streamtype: type }, { fin: true });
      s.on("error", () => {});
      waits.push(
        new Promise<void>((resolve) => {
          s.on("data", (b: Buffer) => out.write(b));
          s.once("end", () => resolve());
          s.once("close", () => resolve());
        }),
      );
    }
    o.onReady?.(conn);
    // A Go server (containerd, the kubelet) writes the status, then resets the streams and
    // closes the connection: what the error stream got before counts.
    const text = await Promise.race([
      status,
      closed.catch(async (err: unknown) => {
        const got = await status;
        if (got.trim() === "") throw err;
        return got;
      }),
    ]);
    await Promise.race([Promise.all(waits), closed.catch(() => {})]);
    return exitCodeFromStatus(text);
  } finally {
    conn.destroy();
  }
}

function readText(s: SpdyStream): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on("data", (b: Buffer) => chunks.push(b));
    s.on("error", () => {});
    s.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    s.once("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

export interface ForwardedConnection {
  /** The data stream: write to send to the pod's port, read what it sends; end() half-closes. */
  stream: SpdyStream;
  /** Text from the error stream once it ends ("" when all went well). */
  error: Promise<string>;
}

/** A port-forward session (one SPDY connection, any number of forwarded connections). */
export class PortForwardSession {
  private nextRequestId = 0;
  constructor(readonly conn: SpdyConnection) {}

  /** Opens the (error, data) stream pair for one connection to `port`. */
  open(port: number): ForwardedConnection {
    const requestid = String(this.nextRequestId++);
    const err = this.conn.openStream({ streamtype: "error", port, requestid }, { fin: true });
    const error = readText(err);
    const stream = this.conn.openStream({ streamtype: "data", port, requestid });
    return { stream, error };
  }

  close(): void {
    this.conn.destroy();
  }
}

/** Upgrades a /portforward/ URL (portforward.k8s.io). */
export async function connectPortForward(url: string): Promise<PortForwardSession> {
  const { conn } = await upgradeSpdy(url, ["portforward.k8s.io"]);
  return new PortForwardSession(conn);
}

/** One forwarded connection over a fresh session (the URL's token is used up by it). */
export async function portForwardOverSpdy(url: string, port: number): Promise<ForwardedConnection> {
  const session = await connectPortForward(url);
  const fc = session.open(port);
  fc.stream.once("close", () => setTimeout(() => session.close(), 100).unref());
  return fc;
}
