/**
 * gRPC's length-prefixed messages: a flag byte (1 = compressed), a 4-byte big-endian length,
 * then the message, any number of them across a stream's DATA frames.
 */

const PREFIX = 5;

/** A message as sent: the prefix (uncompressed) and `body`. */
export function lengthPrefixed(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  out.set(body, PREFIX);
  return out;
}

export class FrameError extends Error {
  constructor(
    message: string,
    readonly kind: "too-large" | "compressed",
  ) {
    super(message);
  }
}

/** Cuts the messages out of a stream's chunks, however the chunks split them. */
export class MessageDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being read, once its prefix is in. */
  private expected: number | undefined;

  constructor(private readonly maxBytes: number) {}

  /** The messages that `chunk` completes; throws a FrameError for one that cannot be taken. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.expected === undefined) {
        if (this.buffered < PREFIX) return out;
        const prefix = this.take(PREFIX);
        if (prefix[0] !== 0) {
          throw new FrameError(
            "compressed messages are not accepted (grpc-accept-encoding: identity)",
            "compressed",
          );
        }
        const length = prefix.readUInt32BE(1);
        if (length > this.maxBytes) {
          throw new FrameError(
            `Received message larger than max (${length} vs. ${this.maxBytes})`,
            "too-large",
          );
        }
        this.expected = length;
      }
      if (this.buffered < this.expected) return out;
      out.push(this.take(this.expected));
      this.expected = undefined;
    }
  }

  /** True if the stream ended in the middle of a message. */
  get partial(): boolean {
    return this.buffered > 0 || this.expected !== undefined;
  }

  private take(n: number): Buffer {
    const all =
      this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
    const taken = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return taken;
  }
}
