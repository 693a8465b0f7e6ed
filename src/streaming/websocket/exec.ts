/**
 * remotecommand (exec/attach) over WebSocket, as the kubelet's
 * pkg/kubelet/cri/streaming/remotecommand/websocket.go: channels 0 stdin, 1 stdout, 2 stderr,
 * 3 error, 4 resize. Right after the handshake an empty message goes to the lowest writable
 * channel the request opened (stdout, else stderr, else error) so the client knows we are up; at
 * the end stdout/stderr are flushed, the status goes on channel 3 (v4/v5: metav1.Status JSON;
 * older: the error text, nothing on success) and the socket is closed normally.
 */
import type WebSocket from "ws";
import { type ExecHandler, type ExecRequest, runExecSession, statusText } from "../remotecommand.js";
import { ChannelSocket } from "./channels.js";

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;

/** Server-supported subprotocols, "" being none (binary channel.k8s.io). */
export const WS_EXEC_PROTOCOLS = [
  "v5.channel.k8s.io",
  "v4.channel.k8s.io",
  "v4.base64.channel.k8s.io",
  "channel.k8s.io",
  "base64.channel.k8s.io",
  "",
] as const;

/** How a channel subprotocol frames messages and reports the status. */
export function execProtocolTraits(protocol: string): {
  base64: boolean;
  closeSignals: boolean;
  v4: boolean;
} {
  return {
    base64: protocol.includes("base64."),
    closeSignals: protocol === "v5.channel.k8s.io",
    v4: protocol.startsWith("v4.") || protocol.startsWith("v5."),
  };
}

/** Serves one exec/attach request on an accepted WebSocket. Resolves when it is over; never throws. */
export async function serveExecWebSocket(
  ws: WebSocket,
  protocol: string,
  req: ExecRequest,
  handler: ExecHandler,
): Promise<void> {
  const traits = execProtocolTraits(protocol);
  const ch = new ChannelSocket(ws, traits);
  const abort = new AbortController();
  ws.once("close", () => abort.abort(new Error("client disconnected")));
  ws.on("error", () => {});

  const streams = {
    stdin: req.stdin ? ch.reader(STDIN) : undefined,
    stdout: req.stdout ? ch.writer(STDOUT) : undefined,
    stderr: req.stderr ? ch.writer(STDERR) : undefined,
    resize: req.tty ? ch.reader(RESIZE) : undefined,
  };
  ch.send(streams.stdout ? STDOUT : streams.stderr ? STDERR : ERROR, Buffer.alloc(0));
  const outcome = await runExecSession(req, handler, streams, abort.signal);
  if (!ch.isOpen) return;
  const status = statusText(outcome, traits.v4);
  if (status !== "") ch.send(ERROR, Buffer.from(status));
  ws.close(1000);
}
