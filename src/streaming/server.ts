/**
 * The CRI streaming server (kubelet pkg/cri/streaming/server.go): the Exec/Attach/PortForward RPCs
 * store their request under a single-use token and return `http://<addr>/exec/<token>` (or
 * /attach/, /portforward/); the client (kubelet/apiserver proxy, kubectl, crictl) then upgrades
 * that URL to SPDY/3.1 and speaks remotecommand or portforward.k8s.io on it.
 *
 * Responses before the upgrade: unknown/expired/used token → 404; missing or non-SPDY/3.1
 * upgrade headers or no X-Stream-Protocol-Version → 400; no common protocol → 403 with
 * X-Accepted-Stream-Protocol-Versions (as k8s httpstream.Handshake does).
 *
 * `Upgrade: websocket` gets the kubelet's WebSocket transport instead (src/streaming/websocket/):
 * after the same token lookup, no Sec-WebSocket-Key or a port-forward without (valid) ports → 400,
 * no common subprotocol → 403.
 */
import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import { invalidArgument } from "../common/errors.js";
import {
  PORTFORWARD_PROTOCOL,
  type PortForwardHandler,
  type PortForwardRequest,
  servePortForward,
} from "./portforward.js";
import { EXEC_PROTOCOLS, type ExecHandler, type ExecRequest, serveExec } from "./remotecommand.js";
import { SpdyConnection } from "./spdy/connection.js";
import { TokenCache } from "./tokens.js";
import { serveExecWebSocket, WS_EXEC_PROTOCOLS } from "./websocket/exec.js";
import {
  portsFromQuery,
  servePortForwardWebSocket,
  WS_PORTFORWARD_PROTOCOLS,
} from "./websocket/portforward.js";
import { WebSocketUpgrader } from "./websocket/upgrade.js";

/** The CRI AttachRequest fields. */
export interface AttachRequest {
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface StreamingHandlers {
  exec: ExecHandler;
  /** Attach: same streams as exec, `req.cmd` is empty. Without it, /attach/ URLs are refused. */
  attach?: ExecHandler;
  portForward: PortForwardHandler;
}

export interface StreamingServerOptions {
  /** host:port to listen on; default "127.0.0.1:0" (loopback, ephemeral port). */
  address?: string;
  /** URL base handed out instead of http://<listening address> (e.g. behind a proxy). */
  baseUrl?: string;
  handlers: StreamingHandlers;
  /** Token lifetime; default 60 s. */
  tokenTtlMs?: number;
  /** Pending requests at most; default 1000. */
  maxPendingRequests?: number;
  /** Time the client has to open its streams; default 30 s. */
  streamCreationTimeoutMs?: number;
  /** An upgraded connection with no traffic either way for this long is dropped; default 4 h. */
  idleTimeoutMs?: number;
  /** Clock for the token cache (tests). */
  now?: () => number;
}

type Pending =
  | { kind: "exec"; req: ExecRequest }
  | { kind: "attach"; req: ExecRequest }
  | { kind: "portforward"; req: PortForwardRequest };

const PATH_RE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]+)$/;

export class StreamingServer {
  private readonly opts: StreamingServerOptions;
  private readonly tokens: TokenCache<Pending>;
  private readonly connections = new Set<SpdyConnection>();
  private readonly sockets = new Set<net.Socket>();
  private readonly websockets = new WebSocketUpgrader();
  private server: http.Server | undefined;
  private base: string | undefined;

  constructor(opts: StreamingServerOptions) {
    this.opts = opts;
    this.tokens = new TokenCache<Pending>({
      ttlMs: opts.tokenTtlMs,
      maxSize: opts.maxPendingRequests,
      now: opts.now,
    });
  }

  /** Listens; resolves with the URL base, e.g. http://127.0.0.1:41234. */
  async start(): Promise<{ url: string }> {
    if (this.server) throw new Error("streaming server already started");
    const { host, port } = parseAddress(this.opts.address ?? "127.0.0.1:0");
    const server = http.createServer((req, res) => this.onRequest(req, res));
    server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket as net.Socket, head),
    );
    server.on("connection", (s: net.Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as net.AddressInfo;
    const h = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    this.base = (this.opts.baseUrl ?? `http://${h}:${addr.port}`).replace(/\/+$/, "");
    return { url: this.base };
  }

  /** Stops listening and tears down every live session (their processes get the abort signal). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.tokens.clear();
    for (const c of this.connections) c.destroy();
    this.websockets.close();
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Validates and stores a CRI ExecRequest; returns the URL for the ExecResponse. */
  execUrl(req: ExecRequest): string {
    validateStreams(req, "exec");
    if (req.cmd.length === 0) throw invalidArgument("exec: cmd must not be empty");
    return this.url("exec", { kind: "exec", req: { ...req, cmd: [...req.cmd] } });
  }

  /** Validates and stores a CRI AttachRequest; returns the URL for the AttachResponse. */
  attachUrl(req: AttachRequest): string {
    validateStreams(req, "attach");
    if (!this.opts.handlers.attach) throw invalidArgument("attach is not supported");
    return this.url("attach", { kind: "attach", req: { ...req, cmd: [] } });
  }

  /** Stores a CRI PortForwardRequest; returns the URL for the PortForwardResponse. */
  portForwardUrl(req: PortForwardRequest): string {
    if (req.podSandboxId === "") throw invalidArgument("port-forward: podSandboxId is required");
    for (const p of req.port) {
      if (!Number.isInteger(p) || p < 1 || p > 65535)
        throw invalidArgument(`port-forward: invalid port ${p}`);
    }
    return this.url("portforward", {
      kind: "portforward",
      req: { podSandboxId: req.podSandboxId, port: [...req.port] },
    });
  }

  private url(kind: string, p: Pending): string {
    if (!this.base) throw new Error("streaming server not started");
    return `${this.base}/${kind}/${this.tokens.put(p)}`;
  }

  /** Drops a session whose connection carried nothing either way for idleTimeoutMs (kubelet: 4 h). */
  private idleTimeout(socket: net.Socket): void {
    socket.setTimeout(this.opts.idleTimeoutMs ?? 4 * 60 * 60_000);
    socket.once("timeout", () => socket.destroy());
  }

  private lookup(req: http.IncomingMessage): Pending | undefined {
    if (req.method !== "GET" && req.method !== "POST") return undefined;
    const path = (req.url ?? "").split("?")[0] ?? "";
    const m = PATH_RE.exec(path);
    if (!m) return undefined;
    const p = this.tokens.take(m[2]!);
    return p && p.kind === m[1] ? p : undefined;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const p = this.lookup(req);
    if (!p) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("404 page not found\n");
      return;
    }
    res
      .writeHead(400, { "Content-Type": "text/plain" })
      .end("unable to upgrade: missing upgrade headers in request\n");
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on("error", () => {});
    const p = this.lookup(req);
    if (!p) {
      rawResponse(socket, 404, "404 page not found");
      return;
    }
    const upgrade = String(req.headers.upgrade ?? "");
    const connection = String(req.headers.connection ?? "").toLowerCase();
    if (!connection.split(",").some((t) => t.trim() === "upgrade") || upgrade === "") {
      rawResponse(socket, 400, "unable to upgrade: missing upgrade headers in request");
      return;
    }
    if (upgrade.toLowerCase() === "websocket") {
      this.upgradeWebSocket(req, socket, head, p);
      return;
    }
    if (upgrade.toLowerCase() !== "spdy/3.1") {
      rawResponse(socket, 400, `unable to upgrade: protocol ${upgrade} is not supported`);
      return;
    }
    const raw = req.headers["x-stream-protocol-version"];
    const clientProtocols = (Array.isArray(raw) ? raw.join(",") : (raw ?? ""))
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    if (clientProtocols.length === 0) {
      rawResponse(socket, 400, "unable to upgrade: X-Stream-Protocol-Version is required");
      return;
    }
    const serverProtocols: readonly string[] =
      p.kind === "portforward" ? [PORTFORWARD_PROTOCOL] : EXEC_PROTOCOLS;
    const protocol = clientProtocols.find((c) => serverProtocols.includes(c));
    if (!protocol) {
      rawResponse(
        socket,
        403,
        `unable to upgrade: unable to negotiate protocol: client supports [${clientProtocols.join(" ")}], server accepts [${serverProtocols.join(" ")}]`,
        serverProtocols.map((s) => `X-Accepted-Stream-Protocol-Versions: ${s}`),
      );
      return;
    }
    socket.setNoDelay(true);
    this.idleTimeout(socket);
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
        `X-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
    );
    const conn = new SpdyConnection(socket, { isServer: true, initialData: head });
    this.connections.add(conn);
    conn.once("close", () => this.connections.delete(conn));
    const timeouts = { streamCreationTimeoutMs: this.opts.streamCreationTimeoutMs };
    if (p.kind === "portforward")
      void servePortForward(conn, p.req, this.opts.handlers.portForward, timeouts);
    else void serveExec(conn, protocol, p.req, this.execHandler(p.kind), timeouts);
  }

  private upgradeWebSocket(req: http.IncomingMessage, socket: net.Socket, head: Buffer, p: Pending): void {
    let ports: number[] = [];
    if (p.kind === "portforward") {
      try {
        ports = portsFromQuery(req.url ?? "", p.req.port);
      } catch (err) {
        rawResponse(socket, 400, `unable to upgrade: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
    }
    const supported = p.kind === "portforward" ? WS_PORTFORWARD_PROTOCOLS : WS_EXEC_PROTOCOLS;
    const refused = this.websockets.upgrade(req, socket, head, supported, (ws, protocol) => {
      socket.setNoDelay(true);
      this.idleTimeout(socket);
      if (p.kind === "portforward")
        void servePortForwardWebSocket(ws, protocol, p.req, ports, this.opts.handlers.portForward);
      else void serveExecWebSocket(ws, protocol, p.req, this.execHandler(p.kind));
    });
    if (refused) rawResponse(socket, refused.code, refused.message);
  }

  private execHandler(kind: "exec" | "attach"): ExecHandler {
    const h = this.opts.handlers;
    return kind === "attach" && h.attach ? h.attach : h.exec;
  }
}

function validateStreams(
  req: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean },
  what: string,
): void {
  if (!req.stdin && !req.stdout && !req.stderr)
    throw invalidArgument(`${what}: one of stdin, stdout, or stderr must be set`);
  if (req.tty && req.stderr) throw invalidArgument(`${what}: tty and stderr cannot both be true`);
}

function rawResponse(socket: net.Socket, code: number, body: string, extra: string[] = []): void {
  const text = `${body}\n`;
  socket.end(
    [
      `HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? ""}`,
      "Content-Type: text/plain; charset=utf-8",
      `Content-Length: ${Buffer.byteLength(text)}`,
      "Connection: close",
      ...extra,
      "",
      text,
    ].join("\r\n"),
  );
}

function parseAddress(a: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(a);
  if (!m) throw invalidArgument(`invalid streaming server address ${JSON.stringify(a)}`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port: Number(m[3]) };
}
