/**
 * The WebSocket handshake of the streaming server: subprotocol negotiation as wsstream's
 * handshake (the first protocol the client offers that the server supports; no offer at all is
 * the protocol "" — binary channels), then `ws` does the RFC 6455 upgrade.
 */
import type http from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocket, WebSocketServer } from "ws";

/**
 * `ws` (~3 MiB, ~25 ms to load here) loads at the first WebSocket handshake, not at berthd's
 * start: most nodes' streaming goes over SPDY or nowhere.
 */
let wsModule: Promise<typeof import("ws")> | undefined;
const loadWs = () => {
  wsModule ??= import("ws");
  return wsModule;
};

/** The protocols in Sec-WebSocket-Protocol headers, in the client's order. */
export function offeredProtocols(header: string | string[] | undefined): string[] {
  const text = Array.isArray(header) ? header.join(",") : (header ?? "");
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** The negotiated protocol, or undefined if the client offered only unsupported ones. */
export function negotiateProtocol(
  offered: readonly string[],
  supported: readonly string[],
): string | undefined {
  return (offered.length === 0 ? [""] : offered).find((p) => supported.includes(p));
}

export class WebSocketUpgrader {
  /** The protocol chosen for each request being upgraded ("" → no Sec-WebSocket-Protocol). */
  private readonly chosen = new WeakMap<http.IncomingMessage, string>();
  private wss: WebSocketServer | undefined;
  private closed = false;

  private async server(): Promise<WebSocketServer> {
    const { WebSocketServer } = await loadWs();
    this.wss ??= new WebSocketServer({
      noServer: true,
      // Clients send stdin and port data in small messages; a huge one is refused (close 1009)
      // rather than buffered (ws would take up to 100 MiB).
      maxPayload: 16 * 1024 * 1024,
      perMessageDeflate: false,
      handleProtocols: (_offered, req) => this.chosen.get(req) || false,
    });
    return this.wss;
  }

  /**
   * Negotiates and completes the handshake; `accept` gets the socket. Returns the refusal instead
   * when it is not a WebSocket handshake (400) or there is no common protocol (403); `ws` answers
   * the rest of what is wrong (e.g. a method other than GET: 405) itself.
   */
  upgrade(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    supported: readonly string[],
    accept: (ws: WebSocket, protocol: string) => void,
  ): { code: number; message: string } | undefined {
    const key = req.headers["sec-websocket-key"];
    if (typeof key !== "string" || !/^[+/0-9A-Za-z]{22}==$/.test(key))
      return { code: 400, message: "unable to upgrade: missing or invalid Sec-WebSocket-Key header" };
    const offered = offeredProtocols(req.headers["sec-websocket-protocol"]);
    const protocol = negotiateProtocol(offered, supported);
    if (protocol === undefined) {
      const message = `unable to upgrade: requested protocol(s) are not supported: [${offered.join(" ")}]; supports [${supported.filter((s) => s !== "").join(" ")}]`;
      return { code: 403, message };
    }
    this.chosen.set(req, protocol);
    // The socket is paused until `ws` reads it: nothing the client sends meanwhile is lost.
    this.server().then(
      (wss) => {
        if (this.closed) socket.destroy();
        else wss.handleUpgrade(req, socket, head, (ws) => accept(ws, protocol));
      },
      () => socket.destroy(),
    );
    return undefined;
  }

  /** Drops every live WebSocket (and any handshake still waiting for `ws` to load). */
  close(): void {
    this.closed = true;
    for (const ws of this.wss?.clients ?? []) ws.terminate();
  }
}
