/**
 * The two stream encodings of the Engine API: the multiplexed stdout/stderr stream of attach,
 * logs and exec without a terminal (an 8-byte header per frame: stream, 3 zero bytes, size
 * big-endian), and the newline-delimited JSON messages of pull/load/push progress.
 */
import type { Readable } from "node:stream";

export type StreamKind = "stdin" | "stdout" | "stderr";

export interface Frame {
  stream: StreamKind;
  data: Buffer;
}

const KINDS: Record<number, StreamKind> = { 0: "stdin", 1: "stdout", 2: "stderr" };

/** Frames of a multiplexed stream; a torn header or an unknown stream byte ends it with an error. */
export async function* demux(stream: AsyncIterable<Buffer>): AsyncGenerator<Frame> {
  let buf: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 8) break;
      const size = buf.readUInt32BE(4);
      if (buf.length < 8 + size) break;
      const kind = KINDS[buf[0] ?? -1];
      if (kind === undefined) throw new Error(`docker stream: unknown stream byte ${buf[0]}`);
      yield { stream: kind, data: buf.subarray(8, 8 + size) };
      buf = buf.subarray(8 + size);
    }
  }
  if (buf.length > 0) throw new Error(`docker stream: ${buf.length} bytes of a torn frame at the end`);
}

/** Encodes one frame (used by tests to play an engine). */
export function encodeFrame(stream: StreamKind, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream === "stdin" ? 0 : stream === "stdout" ? 1 : 2;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

/** One message of a progress stream (pull, load). */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** Messages of a JSON progress stream; a message carrying an error throws it. */
export async function* progressMessages(
  stream: Readable | AsyncIterable<Buffer>,
): AsyncGenerator<ProgressMessage> {
  let text = "";
  const parse = (line: string): ProgressMessage | undefined => {
    if (line.trim() === "") return undefined;
    const m = JSON.parse(line) as ProgressMessage;
    if (m.error !== undefined || m.errorDetail?.message !== undefined) {
      throw new ProgressError(m.errorDetail?.message ?? m.error ?? "unknown error");
    }
    return m;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    text += chunk.toString("utf8");
    let nl = text.indexOf("\n");
    while (nl >= 0) {
      const m = parse(text.slice(0, nl));
      text = text.slice(nl + 1);
      if (m) yield m;
      nl = text.indexOf("\n");
    }
  }
  const last = parse(text);
  if (last) yield last;
}

/** An error reported inside a progress stream (after the 200 status). */
export class ProgressError extends Error {}
