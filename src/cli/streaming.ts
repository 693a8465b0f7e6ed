/**
 * The CLI's interactive sessions: exec/attach on the caller's terminal (raw mode, resize on
 * SIGWINCH) and port-forward from a local listener, over the runtime's streaming URLs.
 */
import { once } from "node:events";
import net from "node:net";
import { execOverSpdy, portForwardOverSpdy } from "../streaming/client.js";

export interface InteractiveOptions {
  stdin: boolean;
  tty: boolean;
}

/** The caller's terminal size now and after every resize; nothing when stdout is no terminal. */
async function* terminalSizes(): AsyncGenerator<{ width: number; height: number }> {
  const out = process.stdout;
  if (!out.isTTY) return;
  for (;;) {
    yield { width: out.columns, height: out.rows };
    await once(out, "resize");
  }
}

/** Runs an exec/attach URL on this process's stdio; resolves with the exit code. */
export async function runInteractive(url: string, o: InteractiveOptions): Promise<number> {
  const stdin = process.stdin;
  const raw = o.tty && o.stdin && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  try {
    return await execOverSpdy(url, {
      ...(o.stdin ? { stdin } : {}),
      stdout: process.stdout,
      ...(o.tty ? { tty: true, resize: terminalSizes() } : { stderr: process.stderr }),
    });
  } finally {
    if (raw) stdin.setRawMode(false);
    if (o.stdin) stdin.destroy(); // let the process exit
  }
}

/** A parsed `[LOCAL:]REMOTE` port argument. */
export function parsePortPair(s: string): { local: number; remote: number } {
  const m = /^(?:(\d+):)?(\d+)$/.exec(s);
  const valid = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;
  if (m) {
    const remote = Number(m[2]);
    const local = m[1] === undefined ? remote : Number(m[1]);
    if (valid(local) && valid(remote) && remote > 0) return { local, remote };
  }
  throw new Error(`invalid port ${JSON.stringify(s)}: want [LOCAL:]REMOTE`);
}

/**
 * Listens on 127.0.0.1:<local> for each pair and forwards every accepted connection to the
 * pod's <remote> port through a fresh URL from `newUrl` (one session a connection, as each URL
 * is single-use). Resolves with the servers once all listen.
 */
export async function forwardPorts(
  pairs: { local: number; remote: number }[],
  newUrl: (remote: number) => Promise<string>,
  log: (s: string) => void,
): Promise<net.Server[]> {
  const servers: net.Server[] = [];
  for (const { local, remote } of pairs) {
    const server = net.createServer({ allowHalfOpen: true }, (sock) => {
      sock.on("error", () => {});
      void (async () => {
        try {
          const fc = await portForwardOverSpdy(await newUrl(remote), remote);
          fc.stream.on("error", () => sock.destroy());
          sock.pipe(fc.stream);
          fc.stream.pipe(sock);
          void fc.error.then((e) => {
            if (e !== "") {
              log(`port-forward ${remote}: ${e}`);
              sock.destroy();
            }
          });
        } catch (err) {
          log(`port-forward ${remote}: ${(err as Error).message}`);
          sock.destroy();
        }
      })();
    });
    server.listen(local, "127.0.0.1");
    await once(server, "listening");
    const addr = server.address() as net.AddressInfo;
    log(`Forwarding from 127.0.0.1:${addr.port} -> ${remote}`);
    servers.push(server);
  }
  return servers;
}
