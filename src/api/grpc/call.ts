/**
 * One call on the server: the response side of an HTTP/2 stream (headers, length-prefixed
 * messages, the status in trailers) and how the call ends: answered, failed, cancelled by the
 * client (the stream closed first), or out of time (its `grpc-timeout`).
 *
 * Events: "cancelled" (the client went away or the deadline passed before the call ended),
 * "drain" (written messages flushed; also once the stream is gone, so no writer waits
 * forever), "close" (the stream is gone).
 */
import { EventEmitter } from "node:events";
import type { ServerHttp2Stream } from "node:http2";
import { lengthPrefixed } from "./framing.js";
import { encodeGrpcMessage, type ServiceError, Status } from "./status.js";

const RESPONSE_HEADERS = {
  ":status": 200,
  "content-type": "application/grpc+proto",
  "grpc-accept-encoding": "identity",
};

/** setTimeout's largest delay; a later deadline is left to the client. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Ends `stream` at once with a status and no messages (a trailers-only response). */
export function respondWithStatus(stream: ServerHttp2Stream, err: ServiceError): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond(
    { ...RESPONSE_HEADERS, "grpc-status": String(err.code), "grpc-message": encodeGrpcMessage(err.details) },
    { endStream: true },
  );
}

export class ServerCall<Res = unknown> extends EventEmitter {
  /** True once the client went away or the deadline passed before the call ended. */
  cancelled = false;
  private ended = false;
  private trailers: Record<string, string> | undefined;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly serialize: (res: Res) => Buffer,
    private readonly maxSendBytes: number,
    /** ms since the epoch; Infinity for none. */
    private readonly deadline: number,
  ) {
    super();
    const delay = deadline - Date.now();
    if (delay < MAX_TIMER_MS) {
      this.timer = setTimeout(() => this.expire(), Math.max(0, delay));
    }
    stream.on("drain", () => this.emit("drain"));
    stream.on("close", () => {
      if (!this.ended) this.cancel();
      this.emit("close");
      this.emit("drain");
    });
  }

  /** True once the call has ended, one way or another. */
  get done(): boolean {
    return this.ended;
  }

  getDeadline(): number {
    return this.deadline;
  }

  /** Sends one response message; false when the caller should wait for "drain". */
  write(res: Res): boolean {
    if (this.ended || this.stream.destroyed) return true;
    let body: Buffer;
    try {
      body = this.serialize(res);
    } catch (err) {
      this.fail({ code: Status.INTERNAL, details: `cannot serialize the response: ${String(err)}` });
      return true;
    }
    if (body.length > this.maxSendBytes) {
      this.fail({
        code: Status.RESOURCE_EXHAUSTED,
        details: `Sent message larger than max (${body.length} vs. ${this.maxSendBytes})`,
      });
      return true;
    }
    if (!this.stream.headersSent) {
      this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
      this.stream.once("wantTrailers", () => this.stream.sendTrailers(this.trailers ?? {}));
    }
    return this.stream.write(lengthPrefixed(body));
  }

  /** Ends the call with status OK. */
  end(): void {
    this.finish({ code: Status.OK, details: "OK" });
  }

  /** Ends the call with `err`'s status (after any messages already written). */
  fail(err: ServiceError): void {
    this.finish(err);
  }

  private finish(status: ServiceError): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    if (this.stream.destroyed || this.stream.closed) return;
    if (!this.stream.headersSent) {
      respondWithStatus(this.stream, status);
      return;
    }
    this.trailers = { "grpc-status": String(status.code), "grpc-message": encodeGrpcMessage(status.details) };
    this.stream.end();
  }

  private cancel(): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.cancelled = true;
    this.emit("cancelled");
  }

  private expire(): void {
    if (this.ended) return;
    this.cancelled = true;
    this.emit("cancelled");
    this.finish({ code: Status.DEADLINE_EXCEEDED, details: "Deadline exceeded" });
  }
}
