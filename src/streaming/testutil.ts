/** Helpers shared by the streaming tests. */
import { once } from "node:events";
import net from "node:net";
import { PassThrough } from "node:stream";
import type { PortForwardConn, PortForwardRequest } from "./portforward.js";
import type { ExecIO, ExecRequest } from "./remotecommand.js";
import type { AttachRequest, StreamingHandlers } from "./server.js";

/** A writable that keeps what is written to it. */
export function collect(): { w: PassThrough; text: () => string } {
  const w = new PassThrough();
  const chunks: Buffer[] = [];
  w.on("data", (b: Buffer) => chunks.push(b));
  return { w, text: () => Buffer.concat(chunks).toString() };
}

/** Everything `r` yields until its end, as text. */
export async function readAll(r: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  r.on("data", (b: Buffer) => chunks.push(b));
  await once(r, "end");
  return Buffer.concat(chunks).toString();
}

/**
 * Fake exec/attach/port-forward handlers. Exec by `cmd[0]`: echo (stdout "out:", stderr "err!"),
 * cat (stdin → stdout), resize (first terminal size → stdout as WxH), exit3, boom (throws),
 * hang (until aborted; counted in `aborted`), anything else exits 0. Port-forward: port 1 fails,
 * ports 7 and 258 send "bye" and close, others go to an uppercasing echo server (start() first).
 */
export class FakeBackend {
  aborted = 0;
  readonly pfCalls: Array<{ req: PortForwardRequest; port: number }> = [];
  private echo: net.Server | undefined;
  private echoPort = 0;

  readonly handlers: StreamingHandlers = {
    exec: async (r: ExecRequest, io: ExecIO): Promise<number> => {
      switch (r.cmd[0]) {
        case "echo":
          io.stdout?.write("out:");
          io.stderr?.write("err!");
          return 0;
        case "cat":
          for await (const c of io.stdin!) io.stdout!.write(c);
          return 0;
        case "resize":
          for await (const s of io.resize!) {
            io.stdout!.write(`${s.width}x${s.height}`);
            return 0;
          }
          return 1;
        case "exit3":
          return 3;
        case "boom":
          throw new Error("cannot run");
        case "hang":
          await new Promise<void>((resolve) =>
            io.signal.addEventListener("abort", () => {
              this.aborted++;
              resolve();
            }),
          );
          return 137;
        default:
          return 0;
      }
    },
    attach: async (r: ExecRequest, io: ExecIO): Promise<number> => {
      io.stdout!.write(`attached to ${r.containerId} cmd=${r.cmd.length}`);
      return 0;
    },
    portForward: async (r: PortForwardRequest, c: PortForwardConn): Promise<void> => {
      this.pfCalls.push({ req: r, port: c.port });
      if (c.port === 1) throw new Error("nothing listens on 1");
      if (c.port === 7 || c.port === 258) {
        c.stream.end("bye");
        return;
      }
      const sock = net.connect(this.echoPort, "127.0.0.1");
      c.stream.pipe(sock);
      sock.pipe(c.stream);
      c.signal.addEventListener("abort", () => sock.destroy());
      await once(sock, "close");
    },
  };

  async start(): Promise<void> {
    const echo = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on("data", (b) => s.write(Buffer.from(b.toString().toUpperCase())));
      s.on("end", () => s.end());
    });
    echo.listen(0, "127.0.0.1");
    await once(echo, "listening");
    this.echo = echo;
    this.echoPort = (echo.address() as net.AddressInfo).port;
  }

  stop(): void {
    this.echo?.close();
  }
}

/** An ExecRequest for the fake handlers (stdout and stderr, no stdin, no tty). */
export const fakeExecRequest = (o: Partial<ExecRequest> = {}): ExecRequest => ({
  containerId: "c1",
  cmd: ["fake"],
  tty: false,
  stdin: false,
  stdout: true,
  stderr: true,
  ...o,
});

/** An AttachRequest for the fake attach handler (stdout only). */
export const fakeAttachRequest: AttachRequest = {
  containerId: "c9",
  tty: false,
  stdin: false,
  stdout: true,
  stderr: false,
};
