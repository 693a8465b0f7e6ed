// A SPDY/3.1 session over a byte stream, interoperable with moby/spdystream (the library behind
// k8s.io/apimachinery/pkg/util/httpstream/spdy, i.e. kubectl/kubelet exec, attach, port-forward).
//
// What spdystream does, and what we therefore do:
//  - Streams carry arbitrary headers (no :method/:path); the initiator waits for SYN_REPLY before
//    writing, and spdystream silently DROPS DATA on a stream that has not been replied yet (its
//    handleDataFrame checks stream.replied). So our streams hold their writes until the reply:
//    for peer-initiated streams until we call reply(), for ours until the peer's SYN_REPLY.
//  - No flow control at all (moby/spdystream issue #2, still open): it never sends SETTINGS or
//    WINDOW_UPDATE and ignores both ("unhandled frame type"). So we never block on the peer's
//    send window (initial window 64 KiB would stall after 64 KiB), ignore WINDOW_UPDATE, and by
//    default send no WINDOW_UPDATE either; `sendWindowUpdates: true` turns on spec-style
//    stream + connection (stream 0) updates for peers that do enforce SPDY/3.1 flow control.
//  - Inbound backpressure is TCP's: when a stream's readable buffer is over its high-water mark we
//    pause the socket until that stream is read (spdystream blocks its frame readers the same way,
//    so one unread stream stalls the connection there too).
//  - PING: ids of the peer's parity are echoed; ours (client odd, server even) resolve ping().
//  - GOAWAY: no new streams either way; the connection closes once the open streams are done.
//  - Peer SYN_STREAM ids must be of the peer's parity and increasing, else RST PROTOCOL_ERROR.

import { EventEmitter } from "node:events";
import { Duplex } from "node:stream";
import {
  encodeDataFrame,
  FLAG_CLEAR_SETTINGS,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  type Frame,
  FrameEncoder,
  FrameParser,
  GoAwayStatus,
  MAX_FRAME_LENGTH,
  type OutgoingFrame,
  RstStatus,
  SettingsId,
  SpdyProtocolError,
} from "./frames.js";
import type { OutgoingHeaders, SpdyHeaders } from "./headers.js";

export interface SpdyConnectionOptions {
  /** Server side: opens even stream ids and expects odd ones from the peer. */
  isServer: boolean;
  /** Inbound frame payload limit (protocol error above it). Default 0xffffff, the protocol maximum. */
  maxFrameSize?: number;
  /** Inbound decompressed header block limit. Default 1 MiB. */
  maxHeaderBlockSize?: number;
  /** Outbound DATA frames carry at most this many bytes; larger writes are split. Default 64 KiB. */
  maxDataFramePayload?: number;
  /** Send WINDOW_UPDATE frames for consumed data (spdystream neither needs nor reads them). Default false. */
  sendWindowUpdates?: boolean;
  /** Readable high-water mark of each stream, bytes. Default 256 KiB. */
  streamHighWaterMark?: number;
  /** Bytes already read from the socket (e.g. the `head` of an HTTP upgrade), parsed first. */
  initialData?: Buffer;
}

export interface OpenStreamOptions {
  /** Send FIN with the SYN_STREAM: we will send no data. */
  fin?: boolean;
  /** The peer must not send data (FLAG_UNIDIRECTIONAL); no SYN_REPLY is expected. */
  unidirectional?: boolean;
  priority?: number;
  associatedId?: number;
}

const DEFAULT_WINDOW = 64 * 1024;

function normalizeHeaders(h: OutgoingHeaders): SpdyHeaders {
  const out: SpdyHeaders = Object.create(null) as SpdyHeaders;
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = Array.isArray(v) ? v.join("\0") : String(v);
  return out;
}

export class SpdyStreamError extends Error {
  override name = "SpdyStreamError";
}

/**
 * One SPDY stream. Readable side: the peer's DATA (ends at the peer's FIN). Writable side: our
 * DATA frames; end() sends an empty DATA frame with FIN (like spdystream's Close()).
 * Events besides the Duplex ones: 'reply' (headers) when the peer's SYN_REPLY arrives,
 * 'headers' (headers) for HEADERS frames, 'reset' (status, byPeer) when the stream is reset.
 * A reset or a lost connection destroys the stream WITHOUT an error ('close' without 'end').
 */
export class SpdyStream extends Duplex {
  /** Headers of the SYN_STREAM (received, or sent for streams we opened). */
  readonly headers: SpdyHeaders;
  /** Headers of the peer's SYN_REPLY (streams we opened). */
  replyHeaders: SpdyHeaders | undefined;
  /** RST_STREAM status once the stream was reset, by either side. */
  rstStatus: number | undefined;
  resetByPeer = false;
  /** @internal */ replied: boolean;
  /** @internal */ localFin = false;
  /** @internal */ remoteFin = false;
  /** @internal */ unacked = 0;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly conn: SpdyConnection,
    readonly id: number,
    readonly initiatedLocally: boolean,
    headers: SpdyHeaders,
    readonly priority: number,
    readonly associatedId: number,
    highWaterMark: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: highWaterMark, decodeStrings: true });
    this.headers = headers;
    this.replied = false;
  }

  /** Sends SYN_REPLY (peer-initiated streams, once). Writes are held until this is called. */
  reply(headers: OutgoingHeaders = {}, opts: { fin?: boolean } = {}): void {
    if (this.initiatedLocally) throw new SpdyStreamError("cannot reply on a locally initiated stream");
    if (this.replied) throw new SpdyStreamError(`stream ${this.id} already replied`);
    if (this.destroyed || this.rstStatus !== undefined)
      throw new SpdyStreamError(`stream ${this.id} is closed`);
    this.replied = true;
    const fin = opts.fin === true && !this.localFin;
    this.conn.sendFrame({ type: "SYN_REPLY", streamId: this.id, flags: fin ? FLAG_FIN : 0, headers });
    if (fin) {
      this.localFin = true;
      this.end();
    }
    this.runWaiters();
  }

  /** Sends a HEADERS frame. */
  sendHeaders(headers: OutgoingHeaders, opts: { fin?: boolean } = {}): void {
    if (this.destroyed || this.rstStatus !== undefined)
      throw new SpdyStreamError(`stream ${this.id} is closed`);
    const fin = opts.fin === true && !this.localFin;
    this.conn.sendFrame({ type: "HEADERS", streamId: this.id, flags: fin ? FLAG_FIN : 0, headers });
    if (fin) {
      this.localFin = true;
      this.end();
    }
  }

  /** Sends RST_STREAM (default CANCEL) and destroys the stream. No-op once closed. */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.rstStatus !== undefined || this.destroyed) return;
    this.rstStatus = status;
    this.conn.sendFrame({ type: "RST_STREAM", streamId: this.id, status });
    this.emit("reset", status, false);
    this.destroy();
  }

  /** @internal peer's SYN_REPLY */
  onReply(headers: SpdyHeaders, fin: boolean): void {
    if (this.replied) return; // spdystream ignores duplicate replies too
    this.replied = true;
    this.replyHeaders = headers;
    this.emit("reply", headers);
    this.runWaiters();
    if (fin) this.onRemoteFin();
  }

  /** @internal peer's DATA; returns false when the readable buffer is full. */
  onData(data: Buffer): boolean {
    if (this.remoteFin || this.destroyed) return true;
    if (data.length === 0) return true;
    return this.push(data);
  }

  /** @internal */
  onRemoteFin(): void {
    if (this.remoteFin) return;
    this.remoteFin = true;
    if (!this.destroyed) this.push(null);
  }

  /** @internal peer's RST_STREAM */
  onReset(status: number): void {
    if (this.rstStatus !== undefined || this.destroyed) return;
    this.rstStatus = status;
    this.resetByPeer = true;
    this.emit("reset", status, true);
    this.destroy();
  }

  private runWaiters(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private closedError(): Error {
    if (this.rstStatus !== undefined)
      return new SpdyStreamError(`stream ${this.id} was reset (${this.rstStatus})`);
    return new SpdyStreamError(`stream ${this.id} is closed`);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.rstStatus !== undefined || this.conn.isClosed) {
      cb(this.closedError());
      return;
    }
    if (this.localFin) {
      cb(new SpdyStreamError(`stream ${this.id}: write after FIN`));
      return;
    }
    if (!this.replied) {
      this.waiters.push(() => this._write(chunk, _enc, cb));
      return;
    }
    this.conn.sendData(this.id, chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.localFin) {
      cb();
      return;
    }
    if (this.rstStatus !== undefined || this.conn.isClosed) {
      cb(this.closedError());
      return;
    }
    if (!this.replied) {
      this.waiters.push(() => this._final(cb));
      return;
    }
    this.localFin = true;
    this.conn.sendData(this.id, Buffer.alloc(0), true, cb);
  }

  override _read(): void {
    this.conn.streamWantsData(this);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const fullyClosed = this.localFin && this.remoteFin;
    if (!fullyClosed && this.rstStatus === undefined && !this.conn.isClosed) {
      this.rstStatus = RstStatus.CANCEL;
      this.conn.sendFrame({ type: "RST_STREAM", streamId: this.id, status: RstStatus.CANCEL });
    }
    this.conn.removeStream(this);
    // Pending writes (waiting for a reply) fail; the stream is already destroyed, so this only
    // reaches write() callbacks and never becomes an 'error' event.
    const w = this.waiters;
    this.waiters = [];
    cb(err);
    for (const f of w) f();
  }
}

interface PendingPing {
  start: bigint;
  resolve: (ms: number) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Events: 'stream' (SpdyStream) for peer SYN_STREAMs (also via onStream), 'goaway'
 * (lastGoodStreamId, status), 'settings' (Map), 'close' (error | undefined) once torn down.
 * Protocol errors never throw: the connection sends GOAWAY PROTOCOL_ERROR and closes with the error.
 */
export class SpdyConnection extends EventEmitter {
  readonly isServer: boolean;
  /** Last SETTINGS values from the peer (recorded only; nothing depends on them). */
  readonly remoteSettings = new Map<number, number>();
  /** The error the connection closed with, if any. */
  closeError: Error | undefined;
  /** Count of WINDOW_UPDATE frames received (ignored; see the header comment). */
  windowUpdatesReceived = 0;

  private readonly socket: Duplex;
  private readonly encoder = new FrameEncoder();
  private readonly parser: FrameParser;
  private readonly streams = new Map<number, SpdyStream>();
  private readonly blocked = new Set<SpdyStream>();
  private readonly pings = new Map<number, PendingPing>();
  private readonly drainWaiters: Array<(err?: Error | null) => void> = [];
  private readonly maxData: number;
  private readonly sendWindowUpdates: boolean;
  private readonly hwm: number;
  private nextStreamId: number;
  private nextPingId: number;
  private lastPeerStreamId = 0;
  private sentGoAway = false;
  private receivedGoAway = false;
  private closing = false;
  private torn = false;
  private pausedByUs = false;
  private connUnacked = 0;

  constructor(socket: Duplex, opts: SpdyConnectionOptions) {
    super();
    this.socket = socket;
    this.isServer = opts.isServer;
    this.nextStreamId = opts.isServer ? 2 : 1;
    this.nextPingId = opts.isServer ? 2 : 1;
    this.maxData = Math.max(1, Math.min(opts.maxDataFramePayload ?? 64 * 1024, MAX_FRAME_LENGTH));
    this.sendWindowUpdates = opts.sendWindowUpdates ?? false;
    this.hwm = opts.streamHighWaterMark ?? 256 * 1024;
    this.parser = new FrameParser((f) => this.handleFrame(f), {
      maxFrameSize: opts.maxFrameSize,
      maxHeaderBlockSize: opts.maxHeaderBlockSize,
    });
    socket.on("data", (chunk: Buffer) => this.onSocketData(chunk));
    socket.on("drain", () => this.flushDrainWaiters());
    socket.on("end", () => this.onSocketEnd());
    socket.on("error", (err: Error) => this.teardown(err));
    socket.on("close", () => this.teardown());
    const initial = opts.initialData;
    if (initial && initial.length > 0) process.nextTick(() => this.onSocketData(initial));
  }

  /** True once the connection is torn down (socket closed or protocol error). */
  get isClosed(): boolean {
    return this.torn;
  }

  /** Number of open streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Registers a handler for peer-initiated streams (without a handler streams are refused). */
  onStream(cb: (stream: SpdyStream) => void): this {
    return this.on("stream", cb);
  }

  /** Opens a stream (SYN_STREAM). Writes are held until the peer's SYN_REPLY. */
  openStream(headers: OutgoingHeaders, opts: OpenStreamOptions = {}): SpdyStream {
    if (this.torn) throw new SpdyStreamError("connection is closed");
    if (this.receivedGoAway || this.sentGoAway) throw new SpdyStreamError("connection is going away");
    const id = this.nextStreamId;
    if (id > 0x7fffffff) throw new SpdyStreamError("stream ids exhausted");
    this.nextStreamId += 2;
    const priority = opts.priority ?? 0;
    const stream = new SpdyStream(
      this,
      id,
      true,
      normalizeHeaders(headers),
      priority,
      opts.associatedId ?? 0,
      this.hwm,
    );
    this.streams.set(id, stream);
    let flags = 0;
    if (opts.fin) flags |= FLAG_FIN;
    if (opts.unidirectional) flags |= FLAG_UNIDIRECTIONAL;
    this.sendFrame({
      type: "SYN_STREAM",
      streamId: id,
      associatedId: opts.associatedId ?? 0,
      priority,
      flags,
      headers,
    });
    if (opts.unidirectional) {
      stream.replied = true; // the peer sends no SYN_REPLY on a unidirectional stream
      stream.onRemoteFin();
    }
    if (opts.fin) {
      stream.localFin = true;
      stream.end();
    }
    return stream;
  }

  /** Sends a PING and resolves with the round-trip time in ms. */
  ping(timeoutMs = 30_000): Promise<number> {
    if (this.torn) return Promise.reject(new SpdyStreamError("connection is closed"));
    const id = this.nextPingId;
    this.nextPingId = id >= 0x7ffffffe ? id - 0x7ffffffe + 2 : id + 2;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new SpdyStreamError(`PING ${id} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pings.set(id, { start: process.hrtime.bigint(), resolve, reject, timer });
      this.sendFrame({ type: "PING", id });
    });
  }

  /** Sends GOAWAY: no new streams are accepted; open streams continue. */
  goAway(status: number = GoAwayStatus.OK): void {
    if (this.sentGoAway || this.torn) return;
    this.sentGoAway = true;
    this.sendFrame({ type: "GOAWAY", lastGoodStreamId: this.lastPeerStreamId, status });
  }

  /** Graceful close: GOAWAY, then the socket is ended once all streams have finished. */
  close(): Promise<void> {
    const done = new Promise<void>((resolve) => {
      if (this.torn) resolve();
      else this.once("close", () => resolve());
    });
    this.goAway(GoAwayStatus.OK);
    this.closing = true;
    this.maybeFinish();
    return done;
  }

  /** Immediate teardown: all streams are destroyed and the socket is destroyed. */
  destroy(err?: Error): void {
    this.teardown(err);
  }

  // ---- internals used by SpdyStream ----

  /** @internal */
  sendFrame(frame: OutgoingFrame, cb?: (err?: Error | null) => void): void {
    if (this.torn) {
      cb?.(new SpdyStreamError("connection is closed"));
      return;
    }
    this.write(this.encoder.encode(frame), cb);
  }

  /** @internal DATA, split into frames of at most maxDataFramePayload bytes. */
  sendData(streamId: number, data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (this.torn) {
      cb(new SpdyStreamError("connection is closed"));
      return;
    }
    if (data.length <= this.maxData) {
      this.write(encodeDataFrame(streamId, data, fin ? FLAG_FIN : 0), cb);
      return;
    }
    for (let off = 0; off < data.length; off += this.maxData) {
      const end = Math.min(data.length, off + this.maxData);
      const last = end === data.length;
      this.write(
        encodeDataFrame(streamId, data.subarray(off, end), last && fin ? FLAG_FIN : 0),
        last ? cb : undefined,
      );
    }
  }

  /** @internal */
  removeStream(stream: SpdyStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.unblock(stream);
    this.maybeFinish();
  }

  /** @internal the stream's consumer wants more data */
  streamWantsData(stream: SpdyStream): void {
    this.ackData(stream, true);
    this.unblock(stream);
  }

  private write(buf: Buffer, cb?: (err?: Error | null) => void): void {
    let ok: boolean;
    try {
      ok = this.socket.write(buf);
    } catch (err) {
      cb?.(err as Error);
      this.teardown(err as Error);
      return;
    }
    if (!cb) return;
    if (ok) cb();
    else this.drainWaiters.push(cb);
  }

  private flushDrainWaiters(err?: Error): void {
    const w = this.drainWaiters.splice(0);
    for (const cb of w) cb(err);
  }

  private unblock(stream: SpdyStream): void {
    if (!this.blocked.delete(stream)) return;
    if (this.blocked.size === 0 && this.pausedByUs && !this.torn) {
      this.pausedByUs = false;
      this.socket.resume();
    }
  }

  private onSocketData(chunk: Buffer): void {
    if (this.torn) return;
    try {
      this.parser.push(chunk);
    } catch (err) {
      if (!(err instanceof SpdyProtocolError)) throw err;
      this.fail(err);
    }
  }

  private onSocketEnd(): void {
    // The peer will send nothing more: every stream's inbound side is over, and spdystream
    // closes the whole connection when its reader hits EOF. Do the same.
    this.teardown();
  }

  /** Protocol error: GOAWAY PROTOCOL_ERROR (best effort), then close. */
  private fail(err: SpdyProtocolError): void {
    if (this.torn) return;
    try {
      this.socket.write(
        this.encoder.encode({
          type: "GOAWAY",
          lastGoodStreamId: this.lastPeerStreamId,
          status: err.goAwayStatus,
        }),
      );
      this.sentGoAway = true;
      this.socket.end();
    } catch {
      // the socket may already be unusable
    }
    const s = this.socket;
    setTimeout(() => s.destroy(), 1000).unref();
    this.teardown(err, false);
  }

  private teardown(err?: Error, destroySocket = true): void {
    if (this.torn) return;
    this.torn = true;
    this.closeError = err;
    const closed = new SpdyStreamError("connection is closed");
    for (const p of this.pings.values()) {
      clearTimeout(p.timer);
      p.reject(closed);
    }
    this.pings.clear();
    for (const s of [...this.streams.values()]) s.destroy();
    this.streams.clear();
    this.blocked.clear();
    this.flushDrainWaiters(closed);
    if (destroySocket) this.socket.destroy();
    this.emit("close", err);
  }

  private maybeFinish(): void {
    if (this.torn || this.streams.size > 0) return;
    if (this.closing || this.receivedGoAway) {
      this.socket.end();
      this.teardown(undefined, false);
      const s = this.socket;
      // Give the FIN a moment to flush, then make sure the socket is gone.
      setTimeout(() => s.destroy(), 1000).unref();
    }
  }

  private ackData(stream: SpdyStream | undefined, force: boolean): void {
    if (!this.sendWindowUpdates || this.torn) return;
    const threshold = DEFAULT_WINDOW / 2;
    if (this.connUnacked >= threshold || (force && this.connUnacked > 0)) {
      this.sendFrame({ type: "WINDOW_UPDATE", streamId: 0, delta: this.connUnacked });
      this.connUnacked = 0;
    }
    if (stream && stream.unacked > 0 && (stream.unacked >= threshold || force) && !stream.remoteFin) {
      this.sendFrame({ type: "WINDOW_UPDATE", streamId: stream.id, delta: stream.unacked });
      stream.unacked = 0;
    }
  }

  private handleFrame(frame: Frame): void {
    if (this.torn) return;
    switch (frame.type) {
      case "DATA": {
        const stream = this.streams.get(frame.streamId);
        this.connUnacked += frame.data.length;
        if (!stream) {
          // Unknown or already closed stream (e.g. data in flight after our RST): ignored, as
          // spdystream does.
          this.ackData(undefined, false);
          return;
        }
        stream.unacked += frame.data.length;
        const ok = stream.onData(frame.data);
        if (ok) this.ackData(stream, false);
        else if (!stream.destroyed) {
          this.blocked.add(stream);
          if (!this.pausedByUs) {
            this.pausedByUs = true;
            this.socket.pause();
          }
        }
        if (frame.flags & FLAG_FIN) stream.onRemoteFin();
        return;
      }
      case "SYN_STREAM": {
        if (this.sentGoAway) return; // spec: ignore new streams after our GOAWAY
        const peerParity = this.isServer ? 1 : 0;
        if (frame.streamId % 2 !== peerParity || frame.streamId <= this.lastPeerStreamId) {
          this.sendFrame({ type: "RST_STREAM", streamId: frame.streamId, status: RstStatus.PROTOCOL_ERROR });
          return;
        }
        this.lastPeerStreamId = frame.streamId;
        const stream = new SpdyStream(
          this,
          frame.streamId,
          false,
          frame.headers,
          frame.priority,
          frame.associatedId,
          this.hwm,
        );
        this.streams.set(frame.streamId, stream);
        if (frame.flags & FLAG_FIN) stream.onRemoteFin();
        if (frame.flags & FLAG_UNIDIRECTIONAL) {
          stream.replied = true; // no reply on unidirectional streams, and we may not send
          stream.localFin = true;
          stream.end();
        }
        if (this.listenerCount("stream") === 0) {
          stream.reset(RstStatus.REFUSED_STREAM);
          return;
        }
        this.emit("stream", stream);
        return;
      }
      case "SYN_REPLY": {
        const stream = this.streams.get(frame.streamId);
        if (!stream?.initiatedLocally) return;
        stream.onReply(frame.headers, (frame.flags & FLAG_FIN) !== 0);
        return;
      }
      case "HEADERS": {
        const stream = this.streams.get(frame.streamId);
        if (!stream) return;
        stream.emit("headers", frame.headers);
        if (frame.flags & FLAG_FIN) stream.onRemoteFin();
        return;
      }
      case "RST_STREAM":
        this.streams.get(frame.streamId)?.onReset(frame.status);
        return;
      case "SETTINGS":
        if (frame.flags & FLAG_CLEAR_SETTINGS) this.remoteSettings.clear();
        for (const s of frame.settings) this.remoteSettings.set(s.id, s.value);
        this.emit("settings", this.remoteSettings);
        return;
      case "PING": {
        if (frame.id % 2 !== this.nextPingId % 2) {
          this.sendFrame({ type: "PING", id: frame.id });
          return;
        }
        const p = this.pings.get(frame.id);
        if (!p) return;
        this.pings.delete(frame.id);
        clearTimeout(p.timer);
        p.resolve(Number(process.hrtime.bigint() - p.start) / 1e6);
        return;
      }
      case "GOAWAY": {
        if (this.receivedGoAway) return;
        this.receivedGoAway = true;
        // Our streams above the peer's last good id were never processed: drop them.
        for (const s of [...this.streams.values()]) {
          if (s.initiatedLocally && s.id > frame.lastGoodStreamId) s.onReset(RstStatus.REFUSED_STREAM);
        }
        this.emit("goaway", frame.lastGoodStreamId, frame.status);
        this.maybeFinish();
        return;
      }
      case "WINDOW_UPDATE":
        this.windowUpdatesReceived++;
        return;
    }
  }
}

export { GoAwayStatus, RstStatus, SettingsId };
