/**
 * Attaching to a running container's stdio through conmon, as CRI-O does: conmon listens on a
 * SOCK_SEQPACKET socket `<socketDir>/<id>/attach`; every packet it sends is one stream byte
 * (2 stdout, 3 stderr) + data; what we send is the container's stdin, and shutdown(SHUT_WR)
 * closes it (when the container was created with stdin_once). Terminal resizes go through
 * conmon's control FIFO `<bundle>/ctl` as "1 <rows> <cols>\n".
 *
 * Node cannot open a SOCK_SEQPACKET socket: the native addon connects it and a relay thread
 * turns it into a stream socket carrying length-prefixed packets.
 */
import { close } from "node:fs";
import net from "node:net";
import type { Writable } from "node:stream";
import { failedPrecondition } from "../common/errors.js";
import { native } from "../common/native.js";
import type { ExecIO, TerminalSize } from "../streaming/remotecommand.js";
import { writeControl } from "./conmon.js";

/** conmon's stdpipe_t: 1 is stdin (never sent to us). */
const STREAM_STDOUT = 2;
const STREAM_STDERR = 3;

/** Splits the relay's length-prefixed packets; `onPacket` gets each conmon packet whole. */
export class PacketReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly onPacket: (p: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) break;
      this.onPacket(this.buf.subarray(4, 4 + len));
      this.buf = this.buf.subarray(4 + len);
    }
  }
}

/** Routes one conmon attach packet to stdout or stderr (unknown stream bytes are dropped). */
export function routePacket(p: Buffer, out: { stdout?: Writable; stderr?: Writable }): boolean {
  const target = p[0] === STREAM_STDOUT ? out.stdout : p[0] === STREAM_STDERR ? out.stderr : undefined;
  if (!target || p.length < 2) return true;
  return target.write(p.subarray(1));
}

/** The control-FIFO line that makes conmon resize the container's terminal. */
export function resizeMessage(size: TerminalSize): string {
  return `1 ${size.height} ${size.width}\n`;
}

/** Connects to conmon's attach socket in `dir` (any length) and returns the relayed stream. */
export async function connectAttachSocket(dir: string): Promise<net.Socket> {
  let fd: number;
  try {
    fd = await native().connectSeqpacket(dir, "attach");
  } catch (e) {
    throw failedPrecondition(`cannot attach: conmon's attach socket in ${dir}: ${(e as Error).message}`);
  }
  let relayFd: number;
  try {
    relayFd = native().startRelay(fd, true);
  } catch (e) {
    close(fd, () => {});
    throw e;
  }
  return new net.Socket({ fd: relayFd, readable: true, writable: true });
}

/** After a client's detach, how long the container's output may pause before the session ends. */
const DETACH_QUIET_MS = 500;

export interface AttachOptions {
  /** The directory holding conmon's `attach` socket. */
  socketDir: string;
  /** conmon's control FIFO (terminal resize). */
  ctlPath: string;
  /**
   * The container's stdin_once and tty: unless stdin_once without a terminal, the client's
   * stdin EOF is its detach (crictl's Ctrl-P Ctrl-Q) and ends the session, as containerd does.
   */
  stdinOnce?: boolean;
  tty?: boolean;
}

/**
 * Attaches `io` to the container until conmon closes the socket (the container exited) or the
 * client goes away. Resolves with 0: an attach has no exit code of its own.
 */
export async function attachContainer(o: AttachOptions, io: ExecIO): Promise<number> {
  if (io.signal.aborted) throw new Error("client disconnected");
  const sock = await connectAttachSocket(o.socketDir);
  sock.on("error", () => {});
  const reader = new PacketReader((p) => {
    if (!routePacket(p, io)) {
      sock.pause();
      const w = p[0] === STREAM_STDOUT ? io.stdout : io.stderr;
      w?.once("drain", () => sock.resume());
    }
  });
  sock.on("data", (b: Buffer) => reader.push(b));

  // stdin's end becomes shutdown(SHUT_WR): conmon closes the container's stdin if stdin_once.
  io.stdin?.pipe(sock);
  if (!(o.stdinOnce && !o.tty)) {
    // The client's stdin EOF is a detach: what the container is still answering reaches the
    // client, then the session ends once the output has been quiet for a moment.
    io.stdin?.once("end", () => {
      let timer = setTimeout(() => sock.destroy(), DETACH_QUIET_MS);
      sock.on("data", () => {
        clearTimeout(timer);
        timer = setTimeout(() => sock.destroy(), DETACH_QUIET_MS);
      });
      sock.once("close", () => clearTimeout(timer));
    });
  }
  if (io.resize) void applyResizes(io.resize, (s) => writeControl(o.ctlPath, resizeMessage(s)));

  const onAbort = () => sock.destroy();
  io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await new Promise<void>((resolve) => {
      sock.once("end", () => resolve());
      sock.once("close", () => resolve());
    });
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    sock.destroy();
  }
  if (io.signal.aborted) throw new Error("client disconnected");
  return 0;
}

/** Applies resize events in order; a failed resize (process gone) ends the loop quietly. */
export async function applyResizes(
  sizes: AsyncIterable<TerminalSize>,
  apply: (s: TerminalSize) => Promise<void> | void,
): Promise<void> {
  try {
    for await (const s of sizes) await apply(s);
  } catch {
    // the session is over
  }
}
