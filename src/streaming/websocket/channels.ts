/**
 * Kubernetes' channel multiplexing over one WebSocket (k8s.io/apimachinery pkg/util/wsstream),
 * used by both sides (server and our client):
 *  - binary protocols (channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io, portforward, none):
 *    each binary message is one channel byte followed by the payload;
 *  - base64 protocols (base64.channel.k8s.io, v4.base64.channel.k8s.io): each text message is
 *    the channel as an ASCII digit ('0' + channel) followed by the base64 payload;
 *  - v5.channel.k8s.io only: the message [255, ch] says the sender closed channel ch.
 */
import { Duplex, Readable, Writable } from "node:stream";
import type WebSocket from "ws";

/** First byte of a v5 close signal. */
export const CLOSE_SIGNAL = 255;

export interface ChannelFraming {
  /** base64 text messages instead of binary ones. */
  base64: boolean;
  /** v5: [255, ch] closes channel ch. */
  closeSignals: boolean;
}

/** A decoded message: data for a channel, or (v5) the close of a channel. */
export type ChannelMessage = { channel: number; data: Buffer } | { channel: number; close: true };

export function encodeMessage(channel: number, data: Buffer, base64: boolean): Buffer | string {
  if (base64) return String.fromCharCode(48 + channel) + data.toString("base64");
  return Buffer.concat([Buffer.of(channel), data]);
}

/** Decodes one message; undefined for an empty or malformed one (ignored, as wsstream does). */
export function decodeMessage(raw: Buffer, f: ChannelFraming): ChannelMessage | undefined {
  if (raw.length === 0) return undefined;
  if (f.base64) {
    // '0' + channel, as wsstream writes it; past '9' too (a port-forward with more than 5 ports).
    const channel = raw[0]! - 48;
    if (channel < 0) return undefined;
    return { channel, data: Buffer.from(raw.subarray(1).toString("latin1"), "base64") };
  }
  if (f.closeSignals && raw[0] === CLOSE_SIGNAL) {
    return raw.length === 2 ? { channel: raw[1]!, close: true } : undefined;
  }
  return { channel: raw[0]!, data: raw.subarray(1) };
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * The channels of one WebSocket as Node streams. Incoming data for a channel nobody reads is
 * dropped; a full reader pauses the socket (all channels) until it is read again. When the socket
 * closes, the readers end and the writers (and duplexes) are destroyed.
 */
export class ChannelSocket {
  private readonly readers = new Map<number, Readable>();
  private readonly writers = new Set<Writable>();
  private readonly waiting = new Set<Readable>();
  private readonly ended = new Set<number>();
  private closed = false;

  constructor(
    readonly ws: WebSocket,
    readonly framing: ChannelFraming,
  ) {
    ws.on("message", (raw, _isBinary) => this.onMessage(toBuffer(raw)));
    ws.once("close", () => {
      this.closed = true;
      for (const c of this.readers.keys()) this.endReader(c);
      for (const w of this.writers) w.destroy();
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Sends one message on `channel`; `cb` runs once it was written (or failed). */
  send(channel: number, data: Buffer, cb?: (err?: Error) => void): void {
    if (!this.isOpen) {
      cb?.(new Error("websocket is closed"));
      return;
    }
    this.ws.send(encodeMessage(channel, data, this.framing.base64), { binary: !this.framing.base64 }, cb);
  }

  /** Sends the v5 close signal for `channel`. */
  sendClose(channel: number): void {
    if (this.isOpen) this.ws.send(Buffer.of(CLOSE_SIGNAL, channel), { binary: true });
  }

  /** The data arriving on `channel` (created once); ends at a v5 close signal. */
  reader(channel: number): Readable {
    let r = this.readers.get(channel);
    if (!r) {
      const created = new Readable({
        read: () => {
          this.waiting.delete(created);
          if (this.waiting.size === 0 && this.ws.isPaused) this.ws.resume();
        },
      });
      r = created;
      this.readers.set(channel, r);
      if (this.closed) this.endReader(channel);
    }
    return r;
  }

  /** A stream whose writes become messages on `channel`; its end() sends a v5 close signal if `signalEnd`. */
  writer(channel: number, signalEnd = false): Writable {
    const w = new Writable({
      write: (chunk: Buffer, _enc, cb) => this.send(channel, chunk, cb),
      final: (cb) => {
        if (signalEnd && this.framing.closeSignals) this.sendClose(channel);
        cb();
      },
    });
    this.track(w);
    return w;
  }

  /**
   * `channel` as one duplex (port-forward data): reads what arrives on it, writes become messages
   * on it. A WebSocket channel cannot be half-closed, so ending the writable side ends the
   * readable side too: the connection is over.
   */
  duplex(channel: number): Duplex {
    const input = this.reader(channel);
    const d: Duplex = new Duplex({
      read: () => input.resume(),
      write: (chunk: Buffer, _enc, cb) => this.send(channel, chunk, cb),
      final: (cb) => {
        this.endReader(channel);
        cb();
      },
    });
    input.on("data", (b: Buffer) => {
      if (!d.push(b)) input.pause();
    });
    input.once("end", () => d.push(null));
    this.track(d);
    return d;
  }

  /** Ends what `channel`'s reader yields (once). */
  private endReader(channel: number): void {
    const r = this.readers.get(channel);
    if (!r || this.ended.has(channel)) return;
    this.ended.add(channel);
    r.push(null);
  }

  private track(w: Writable): void {
    this.writers.add(w);
    w.once("close", () => this.writers.delete(w));
    w.on("error", () => {});
  }

  private onMessage(raw: Buffer): void {
    const m = decodeMessage(raw, this.framing);
    if (!m) return;
    const r = this.readers.get(m.channel);
    if (!r || r.destroyed || this.ended.has(m.channel)) return;
    if ("close" in m) {
      this.endReader(m.channel);
      return;
    }
    if (m.data.length > 0 && !r.push(m.data)) {
      this.waiting.add(r);
      this.ws.pause();
    }
  }
}
