/**
 * Port-forward over WebSocket, as the kubelet's pkg/kubelet/cri/streaming/portforward/websocket.go:
 * one WebSocket carries one connection per requested port; for the i-th port channel 2i is the
 * data (both ways) and 2i+1 the error text (server → client). Right after the handshake both
 * channels of each port get the port number as 2 bytes little-endian. The connections start at
 * once; when all are over the socket is closed normally. A WebSocket channel cannot be
 * half-closed: the port's side closing ends that connection.
 */
import type WebSocket from "ws";
import { forwardPort, type PortForwardHandler, type PortForwardRequest } from "../portforward.js";
import { ChannelSocket } from "./channels.js";

/** Server-supported subprotocols, "" being none (binary). */
export const WS_PORTFORWARD_PROTOCOLS = [
  "v4.channel.k8s.io",
  "v4.base64.channel.k8s.io",
  "portforward.k8s.io",
  "",
] as const;

/**
 * Most ports one WebSocket can forward: port i uses channels 2i and 2i+1, and a channel is one
 * byte, written as '0' + channel by the base64 protocols.
 */
export const MAX_WS_PORTS = (255 - 48 + 1) / 2;

/**
 * The ports of a WebSocket port-forward: those of the CRI request, as the kubelet's streaming
 * server uses (BuildV4Options of the cached request); when the request named none, the `port`
 * query parameters (repeatable, each may be a comma-separated list). Throws with a message for
 * the client when there are none, one is invalid, or there are more than MAX_WS_PORTS.
 */
export function portsFromQuery(url: string, stored: readonly number[]): number[] {
  const tooMany = () => new Error(`at most ${MAX_WS_PORTS} ports can be forwarded over one WebSocket`);
  if (stored.length > MAX_WS_PORTS) throw tooMany();
  if (stored.length > 0) return [...stored];
  const values = new URLSearchParams(url.split("?")[1] ?? "").getAll("port");
  if (values.length === 0) throw new Error('query parameter "port" is required');
  const ports: number[] = [];
  for (const v of values) {
    if (v === "") throw new Error('query parameter "port" cannot be empty');
    for (const p of v.split(",")) {
      const n = /^\d{1,5}$/.test(p) ? Number(p) : Number.NaN;
      if (!(n >= 1 && n <= 65535))
        throw new Error(`invalid port ${JSON.stringify(p)} in query parameter "port"`);
      ports.push(n);
      if (ports.length > MAX_WS_PORTS) throw tooMany();
    }
  }
  return ports;
}

/**
 * Serves one port-forward WebSocket: forwards `ports[i]` through channel 2i with the handler (a
 * port outside a non-empty `req.port` is an error, as over SPDY). Resolves when the socket is
 * closed; never throws.
 */
export async function servePortForwardWebSocket(
  ws: WebSocket,
  protocol: string,
  req: PortForwardRequest,
  ports: readonly number[],
  handler: PortForwardHandler,
): Promise<void> {
  const ch = new ChannelSocket(ws, { base64: protocol.includes("base64."), closeSignals: false });
  const abort = new AbortController();
  const closed = new Promise<void>((resolve) =>
    ws.once("close", () => {
      abort.abort(new Error("client disconnected"));
      resolve();
    }),
  );
  ws.on("error", () => {});
  const runs = ports.map(async (port, i) => {
    const data = ch.duplex(2 * i);
    const prefix = Buffer.of(port & 0xff, port >> 8);
    ch.send(2 * i, prefix);
    ch.send(2 * i + 1, prefix);
    const error = await forwardPort(req, String(port), String(i), data, abort.signal, handler);
    if (error !== undefined) ch.send(2 * i + 1, Buffer.from(error));
  });
  await Promise.all(runs);
  if (ch.isOpen) ws.close(1000);
  await closed;
}
