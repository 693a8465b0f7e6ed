// SPDY/3.1 framing (draft 3.1 section 2.2 and 2.6), laid out as moby/spdystream's spdy package
// reads and writes it:
//
//   control frame: |1| version(15) | type(16) | flags(8) | length(24) | payload
//   data frame:    |0| stream id(31)           | flags(8) | length(24) | payload
//
//   SYN_STREAM  stream id(31) | associated id(31) | priority(3)+unused(5) | slot(8) | header block
//   SYN_REPLY   stream id(31) | header block
//   RST_STREAM  stream id(31) | status(32)                         (length 8)
//   SETTINGS    count(32) | count x (flags(8) id(24) value(32))
//   PING        id(32)                                             (length 4)
//   GOAWAY      last good stream id(31) | status(32)               (length 8)
//   HEADERS     stream id(31) | header block
//   WINDOW_UPDATE stream id(31) | delta(31)                        (length 8)
//
// Header blocks are compressed with the connection's shared zlib contexts (headers.ts), so the
// encoder and the parser are stateful and frames must be encoded/parsed in wire order.

import {
  HeaderBlockError,
  HeaderCompressor,
  HeaderDecompressor,
  type OutgoingHeaders,
  type SpdyHeaders,
} from "./headers.js";

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** FLAG_FIN on SYN_STREAM / SYN_REPLY / HEADERS / DATA. */
export const FLAG_FIN = 0x01;
/** FLAG_UNIDIRECTIONAL on SYN_STREAM. */
export const FLAG_UNIDIRECTIONAL = 0x02;
/** FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS. */
export const FLAG_CLEAR_SETTINGS = 0x01;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  INVALID_CREDENTIALS: 10,
  FRAME_TOO_LARGE: 11,
} as const;

export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export const SettingsId = {
  UPLOAD_BANDWIDTH: 1,
  DOWNLOAD_BANDWIDTH: 2,
  ROUND_TRIP_TIME: 3,
  MAX_CONCURRENT_STREAMS: 4,
  CURRENT_CWND: 5,
  DOWNLOAD_RETRANS_RATE: 6,
  INITIAL_WINDOW_SIZE: 7,
  CLIENT_CERTIFICATE_VECTOR_SIZE: 8,
} as const;

/** Largest value of the 24-bit length field. */
export const MAX_FRAME_LENGTH = 0xffffff;
const FRAME_HEADER = 8;
const ID_MASK = 0x7fffffff;

export interface DataFrame {
  type: "DATA";
  streamId: number;
  flags: number;
  data: Buffer;
}
export interface SynStreamFrame {
  type: "SYN_STREAM";
  streamId: number;
  associatedId: number;
  /** 0 (highest) to 7. */
  priority: number;
  slot: number;
  flags: number;
  headers: SpdyHeaders;
}
export interface SynReplyFrame {
  type: "SYN_REPLY";
  streamId: number;
  flags: number;
  headers: SpdyHeaders;
}
export interface RstStreamFrame {
  type: "RST_STREAM";
  streamId: number;
  status: number;
}
export interface Setting {
  id: number;
  flags: number;
  value: number;
}
export interface SettingsFrame {
  type: "SETTINGS";
  flags: number;
  settings: Setting[];
}
export interface PingFrame {
  type: "PING";
  id: number;
}
export interface GoAwayFrame {
  type: "GOAWAY";
  lastGoodStreamId: number;
  status: number;
}
export interface HeadersFrame {
  type: "HEADERS";
  streamId: number;
  flags: number;
  headers: SpdyHeaders;
}
export interface WindowUpdateFrame {
  type: "WINDOW_UPDATE";
  streamId: number;
  delta: number;
}
export type Frame =
  | DataFrame
  | SynStreamFrame
  | SynReplyFrame
  | RstStreamFrame
  | SettingsFrame
  | PingFrame
  | GoAwayFrame
  | HeadersFrame
  | WindowUpdateFrame;

/** Frames as handed to the encoder: header-bearing frames take OutgoingHeaders. */
export type OutgoingFrame =
  | DataFrame
  | (Omit<SynStreamFrame, "headers" | "slot" | "associatedId" | "priority"> & {
      headers: OutgoingHeaders;
      associatedId?: number;
      priority?: number;
      slot?: number;
    })
  | (Omit<SynReplyFrame, "headers"> & { headers: OutgoingHeaders })
  | RstStreamFrame
  | SettingsFrame
  | PingFrame
  | GoAwayFrame
  | (Omit<HeadersFrame, "headers"> & { headers: OutgoingHeaders })
  | WindowUpdateFrame;

/** A connection-level protocol violation: the connection must be torn down (GOAWAY PROTOCOL_ERROR). */
export class SpdyProtocolError extends Error {
  override name = "SpdyProtocolError";
  constructor(
    message: string,
    readonly goAwayStatus: number = GoAwayStatus.PROTOCOL_ERROR,
  ) {
    super(message);
  }
}

function checkId(id: number, what: string, allowZero = false): void {
  if (!Number.isInteger(id) || id < 0 || id > ID_MASK || (!allowZero && id === 0)) {
    throw new RangeError(`invalid ${what} ${id}`);
  }
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_LENGTH) throw new RangeError(`frame payload too large: ${length}`);
  const b = Buffer.allocUnsafe(FRAME_HEADER + length);
  b.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt32BE((((flags & 0xff) << 24) >>> 0) + length, 4);
  return b;
}

/** Encodes a DATA frame (stateless). */
export function encodeDataFrame(streamId: number, data: Uint8Array, flags = 0): Buffer {
  checkId(streamId, "stream id");
  if (data.length > MAX_FRAME_LENGTH) throw new RangeError(`DATA payload too large: ${data.length}`);
  const b = Buffer.allocUnsafe(FRAME_HEADER + data.length);
  b.writeUInt32BE(streamId, 0);
  b.writeUInt32BE((((flags & 0xff) << 24) >>> 0) + data.length, 4);
  b.set(data, FRAME_HEADER);
  return b;
}

/**
 * Encodes frames. Stateful because of header compression: use one per connection and send its
 * output in the order it was produced.
 */
export class FrameEncoder {
  readonly compressor: HeaderCompressor;

  constructor(compressor: HeaderCompressor = new HeaderCompressor()) {
    this.compressor = compressor;
  }

  encode(frame: OutgoingFrame): Buffer {
    switch (frame.type) {
      case "DATA":
        return encodeDataFrame(frame.streamId, frame.data, frame.flags);
      case "SYN_STREAM": {
        checkId(frame.streamId, "stream id");
        const assoc = frame.associatedId ?? 0;
        checkId(assoc, "associated stream id", true);
        const priority = frame.priority ?? 0;
        if (!Number.isInteger(priority) || priority < 0 || priority > 7) {
          throw new RangeError(`invalid priority ${priority}`);
        }
        const block = this.compressor.compress(frame.headers);
        const b = controlHeader(FrameType.SYN_STREAM, frame.flags, 10 + block.length);
        b.writeUInt32BE(frame.streamId, 8);
        b.writeUInt32BE(assoc, 12);
        b[16] = priority << 5;
        b[17] = (frame.slot ?? 0) & 0xff;
        block.copy(b, 18);
        return b;
      }
      case "SYN_REPLY":
      case "HEADERS": {
        checkId(frame.streamId, "stream id");
        const block = this.compressor.compress(frame.headers);
        const type = frame.type === "SYN_REPLY" ? FrameType.SYN_REPLY : FrameType.HEADERS;
        const b = controlHeader(type, frame.flags, 4 + block.length);
        b.writeUInt32BE(frame.streamId, 8);
        block.copy(b, 12);
        return b;
      }
      case "RST_STREAM": {
        checkId(frame.streamId, "stream id");
        if (frame.status === 0) throw new RangeError("RST_STREAM status 0 is invalid");
        const b = controlHeader(FrameType.RST_STREAM, 0, 8);
        b.writeUInt32BE(frame.streamId, 8);
        b.writeUInt32BE(frame.status >>> 0, 12);
        return b;
      }
      case "SETTINGS": {
        const b = controlHeader(FrameType.SETTINGS, frame.flags, 4 + 8 * frame.settings.length);
        b.writeUInt32BE(frame.settings.length, 8);
        let off = 12;
        for (const s of frame.settings) {
          b.writeUInt32BE((((s.flags & 0xff) << 24) >>> 0) + (s.id & 0xffffff), off);
          b.writeUInt32BE(s.value >>> 0, off + 4);
          off += 8;
        }
        return b;
      }
      case "PING": {
        if (frame.id === 0) throw new RangeError("PING id 0 is invalid");
        const b = controlHeader(FrameType.PING, 0, 4);
        b.writeUInt32BE(frame.id >>> 0, 8);
        return b;
      }
      case "GOAWAY": {
        checkId(frame.lastGoodStreamId, "last good stream id", true);
        const b = controlHeader(FrameType.GOAWAY, 0, 8);
        b.writeUInt32BE(frame.lastGoodStreamId, 8);
        b.writeUInt32BE(frame.status >>> 0, 12);
        return b;
      }
      case "WINDOW_UPDATE": {
        checkId(frame.streamId, "stream id", true);
        if (!Number.isInteger(frame.delta) || frame.delta < 1 || frame.delta > ID_MASK) {
          throw new RangeError(`invalid WINDOW_UPDATE delta ${frame.delta}`);
        }
        const b = controlHeader(FrameType.WINDOW_UPDATE, 0, 8);
        b.writeUInt32BE(frame.streamId, 8);
        b.writeUInt32BE(frame.delta, 12);
        return b;
      }
    }
  }
}

export interface FrameParserOptions {
  /**
   * Largest frame payload accepted (the length field); bigger frames are a protocol error before
   * any of the payload is buffered. Default and maximum: 0xffffff (the field is 24 bits).
   */
  maxFrameSize?: number;
  /** Largest decompressed header block. Default 1 MiB. */
  maxHeaderBlockSize?: number;
  decompressor?: HeaderDecompressor;
}

/**
 * Incremental parser: push() arbitrary chunks; complete frames are delivered, in order and
 * synchronously, to onFrame. Unknown control frame types are skipped (as the spec requires).
 * A protocol violation throws SpdyProtocolError and leaves the parser failed (further push()
 * calls throw the same error): the connection must be torn down.
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private head = 0; // index of the first unconsumed chunk
  private buffered = 0;
  private failure: SpdyProtocolError | undefined;
  private readonly maxFrameSize: number;
  readonly decompressor: HeaderDecompressor;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    opts: FrameParserOptions = {},
  ) {
    this.maxFrameSize = Math.min(opts.maxFrameSize ?? MAX_FRAME_LENGTH, MAX_FRAME_LENGTH);
    this.decompressor =
      opts.decompressor ?? new HeaderDecompressor({ maxHeaderBlockSize: opts.maxHeaderBlockSize });
  }

  /** Bytes received but not yet forming a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      this.drain();
    } catch (err) {
      if (err instanceof SpdyProtocolError) {
        this.failure = err;
        this.chunks = [];
        this.head = 0;
        this.buffered = 0;
      }
      throw err;
    }
  }

  /** Removes and returns the first n buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    const first = this.chunks[this.head]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.advance();
      else this.chunks[this.head] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[this.head]!;
      const need = n - off;
      if (c.length <= need) {
        c.copy(out, off);
        off += c.length;
        this.advance();
      } else {
        c.copy(out, off, 0, need);
        this.chunks[this.head] = c.subarray(need);
        off += need;
      }
    }
    this.buffered -= n;
    return out;
  }

  private advance(): void {
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  private drain(): void {
    while (this.buffered >= FRAME_HEADER) {
      let head = this.chunks[this.head]!;
      if (head.length < FRAME_HEADER) {
        head = this.take(FRAME_HEADER); // coalesce a header split across chunks
        if (this.head > 0) this.chunks[--this.head] = head;
        else this.chunks.unshift(head);
        this.buffered += FRAME_HEADER;
      }
      const word0 = head.readUInt32BE(0);
      const flags = head[4]!;
      const length = head.readUIntBE(5, 3);
      if (length > this.maxFrameSize) {
        throw new SpdyProtocolError(`frame length ${length} exceeds the limit ${this.maxFrameSize}`);
      }
      const control = (word0 & 0x80000000) !== 0;
      if (control) {
        const version = (word0 >>> 16) & 0x7fff;
        if (version !== SPDY_VERSION) {
          throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
        }
      }
      if (this.buffered < FRAME_HEADER + length) return;
      this.take(FRAME_HEADER);
      const payload = length === 0 ? Buffer.alloc(0) : this.take(length);
      const frame = control
        ? this.parseControl(word0 & 0xffff, flags, payload)
        : this.parseData(word0 & ID_MASK, flags, payload);
      if (frame) this.onFrame(frame);
    }
  }

  private parseData(streamId: number, flags: number, data: Buffer): DataFrame {
    if (streamId === 0) throw new SpdyProtocolError("DATA frame on stream 0");
    return { type: "DATA", streamId, flags, data };
  }

  private headers(block: Buffer, what: string): SpdyHeaders {
    try {
      return this.decompressor.decompress(block);
    } catch (err) {
      if (err instanceof HeaderBlockError) throw new SpdyProtocolError(`${what}: ${err.message}`);
      throw err;
    }
  }

  private parseControl(type: number, flags: number, p: Buffer): Frame | undefined {
    const need = (n: number, exact: boolean, name: string) => {
      if (exact ? p.length !== n : p.length < n) {
        throw new SpdyProtocolError(`${name} frame with invalid length ${p.length}`);
      }
    };
    switch (type) {
      case FrameType.SYN_STREAM: {
        need(10, false, "SYN_STREAM");
        const streamId = p.readUInt32BE(0) & ID_MASK;
        // Decompress before validating the id: the shared zlib context must stay in sync.
        const headers = this.headers(p.subarray(10), "SYN_STREAM");
        if (streamId === 0) throw new SpdyProtocolError("SYN_STREAM with stream id 0");
        return {
          type: "SYN_STREAM",
          streamId,
          associatedId: p.readUInt32BE(4) & ID_MASK,
          priority: p[8]! >> 5,
          slot: p[9]!,
          flags,
          headers,
        };
      }
      case FrameType.SYN_REPLY:
      case FrameType.HEADERS: {
        const name = type === FrameType.SYN_REPLY ? "SYN_REPLY" : "HEADERS";
        need(4, false, name);
        const streamId = p.readUInt32BE(0) & ID_MASK;
        const headers = this.headers(p.subarray(4), name);
        if (streamId === 0) throw new SpdyProtocolError(`${name} with stream id 0`);
        return type === FrameType.SYN_REPLY
          ? { type: "SYN_REPLY", streamId, flags, headers }
          : { type: "HEADERS", streamId, flags, headers };
      }
      case FrameType.RST_STREAM: {
        need(8, true, "RST_STREAM");
        const streamId = p.readUInt32BE(0) & ID_MASK;
        const status = p.readUInt32BE(4);
        if (streamId === 0) throw new SpdyProtocolError("RST_STREAM with stream id 0");
        if (status === 0) throw new SpdyProtocolError("RST_STREAM with status 0");
        return { type: "RST_STREAM", streamId, status };
      }
      case FrameType.SETTINGS: {
        need(4, false, "SETTINGS");
        const n = p.readUInt32BE(0);
        if (p.length !== 4 + 8 * n)
          throw new SpdyProtocolError(`SETTINGS length ${p.length} for ${n} entries`);
        const settings: Setting[] = [];
        for (let i = 0, off = 4; i < n; i++, off += 8) {
          const w = p.readUInt32BE(off);
          settings.push({ flags: w >>> 24, id: w & 0xffffff, value: p.readUInt32BE(off + 4) });
        }
        return { type: "SETTINGS", flags, settings };
      }
      case FrameType.PING:
        need(4, true, "PING");
        return { type: "PING", id: p.readUInt32BE(0) };
      case FrameType.GOAWAY:
        need(8, true, "GOAWAY");
        return { type: "GOAWAY", lastGoodStreamId: p.readUInt32BE(0) & ID_MASK, status: p.readUInt32BE(4) };
      case FrameType.WINDOW_UPDATE: {
        need(8, true, "WINDOW_UPDATE");
        const delta = p.readUInt32BE(4) & ID_MASK;
        return { type: "WINDOW_UPDATE", streamId: p.readUInt32BE(0) & ID_MASK, delta };
      }
      default:
        return undefined; // NOOP (SPDY/2), CREDENTIAL (SPDY/3) and unknown types are ignored
    }
  }
}
