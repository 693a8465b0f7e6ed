/**
 * Port-forward helper, run inside the pod's network namespace by
 * `nsenter --net=<netns file> node portforward-helper.js <port>`: connects to 127.0.0.1:<port>
 * and copies stdin → socket and socket → stdout, half-closing each direction at EOF. Connection
 * errors go to stderr (exit 1). Exits when both directions are done or the socket fails.
 */
import net from "node:net";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`invalid port ${JSON.stringify(process.argv[2])}\n`);
  process.exit(2);
}

// fd 1 (a socketpair from Node's spawn) as our own socket: unlike process.stdout, its end()
// shuts the write side down, which is the EOF our parent forwards as FIN. (Not an fs stream: the
// fd is non-blocking and fs writes would fail with EAGAIN under backpressure.)
const out = new net.Socket({ fd: 1, readable: false, writable: true });
const sock = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
sock.setNoDelay(true);
let connected = false;
sock.once("connect", () => {
  connected = true;
});
sock.on("error", (err: NodeJS.ErrnoException) => {
  const what = connected ? "connection to" : "failed to connect to";
  process.stderr.write(`${what} 127.0.0.1:${port} inside the pod network namespace: ${err.message}\n`);
  process.exit(1);
});
process.stdin.pipe(sock); // ends the socket's write side at stdin EOF
sock.pipe(out); // closes fd 1 at the peer's FIN
sock.once("close", () => {
  out.end(() => process.exit(0));
});
process.stdin.on("error", () => {});
out.on("error", () => process.exit(0));
