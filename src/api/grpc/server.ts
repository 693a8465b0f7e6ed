/**
 * berthd's gRPC server: gRPC over cleartext HTTP/2 (what kubelet, crictl and critest speak on
 * a unix socket) on Node's own http2, for the services generated into api/gen. It takes
 * unary, server-streaming and client-streaming methods, uncompressed messages up to
 * `maxMessageBytes`, and `grpc-timeout` deadlines. grpc-js stays the clients' library; as a
 * server it would add ~400 KiB of JavaScript (channelz, load balancing, resolvers, TLS,
 * compression) to every start of the daemon.
 */
import {
  createServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import { Readable } from "node:stream";
import { respondWithStatus, ServerCall } from "./call.js";
import { FrameError, MessageDecoder } from "./framing.js";
import { parseGrpcTimeout, type ServiceError, Status } from "./status.js";

/** One method as the generated service definitions describe it. */
export interface MethodDefinition<Req = unknown, Res = unknown> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize(bytes: Buffer): Req;
  responseSerialize(res: Res): Buffer;
}
export type ServiceDefinition = Record<string, MethodDefinition<unknown, never>>;

export type Callback<Res> = (err: ServiceError | null, res?: Res) => void;

export interface UnaryCall<Req> extends ServerCall {
  readonly request: Req;
}
export interface ServerStreamCall<Req, Res> extends ServerCall<Res> {
  readonly request: Req;
}
export interface ClientStreamCall<Req> extends ServerCall, AsyncIterable<Req> {}

export type UnaryHandler<Req, Res> = (call: UnaryCall<Req>, callback: Callback<Res>) => void;
export type ServerStreamHandler<Req, Res> = (call: ServerStreamCall<Req, Res>) => void;
export type ClientStreamHandler<Req, Res> = (call: ClientStreamCall<Req>, callback: Callback<Res>) => void;

/** A service's handlers by method name (the keys of its definition). */
// biome-ignore lint/suspicious/noExplicitAny: handlers of every request and response type
export type ServiceImplementation = Record<string, (call: any, callback?: any) => void>;

interface Route {
  def: MethodDefinition;
  handler: ServiceImplementation[string];
}

/** Client-streamed messages a call may hold before the stream is paused. */
const CLIENT_STREAM_QUEUE = 4;

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly server: Http2Server;

  constructor(
    private readonly opts: {
      maxMessageBytes: number;
      /** Told of a failure to accept a connection (EMFILE…); the server goes on listening. */
      onAcceptError?: (err: Error) => void;
    },
  ) {
    this.server = createServer({ maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER });
    this.server.on("session", (session: ServerHttp2Session) => {
      this.sessions.add(session);
      session.on("close", () => this.sessions.delete(session));
      session.on("error", () => {}); // a "close" follows; the calls see it as cancelled
    });
    this.server.on("stream", (stream, headers) => this.onStream(stream, headers));
  }

  /** Serves `service`'s methods with `impl`'s handlers; a method without one is UNIMPLEMENTED. */
  addService(service: ServiceDefinition, impl: ServiceImplementation): void {
    for (const [name, def] of Object.entries(service)) {
      const handler = impl[name];
      if (handler) this.routes.set(def.path, { def: def as MethodDefinition, handler });
    }
  }

  /** Listens on a unix socket at `path`. */
  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(path, () => {
        this.server.off("error", reject);
        // Without a listener, an "error" from accept() would end the process.
        this.server.on("error", (err) => this.opts.onAcceptError?.(err));
        resolve();
      });
    });
  }

  /** Takes no new calls and resolves once the calls in flight have ended. */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    return closed;
  }

  /** Drops every connection and its calls at once. */
  destroy(): void {
    this.server.close();
    for (const s of this.sessions) s.destroy();
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on("error", () => {}); // a "close" follows; the call sees it as cancelled
    const contentType = headers["content-type"];
    if (headers[":method"] !== "POST" || !contentType?.startsWith("application/grpc")) {
      stream.respond(
        { ":status": contentType?.startsWith("application/grpc") ? 405 : 415 },
        { endStream: true },
      );
      return;
    }
    const path = headers[":path"] ?? "";
    const route = this.routes.get(path);
    if (!route) {
      respondWithStatus(stream, {
        code: Status.UNIMPLEMENTED,
        details: `The server does not implement the method ${path}`,
      });
      return;
    }
    const timeout = parseGrpcTimeout(headers["grpc-timeout"]);
    if (timeout === undefined) {
      respondWithStatus(stream, {
        code: Status.OUT_OF_RANGE,
        details: `Invalid grpc-timeout: ${headers["grpc-timeout"]}`,
      });
      return;
    }
    const { def, handler } = route;
    const max = this.opts.maxMessageBytes;
    const call = new ServerCall(stream, def.responseSerialize, max, Date.now() + timeout);
    const decoder = new MessageDecoder(max);
    // Every message in, deserialized; false once the call failed on a bad one.
    const receive = (chunk: Buffer, take: (req: unknown) => void): boolean => {
      try {
        for (const bytes of decoder.push(chunk)) take(def.requestDeserialize(bytes));
        return true;
      } catch (err) {
        call.fail(
          err instanceof FrameError
            ? {
                code: err.kind === "too-large" ? Status.RESOURCE_EXHAUSTED : Status.UNIMPLEMENTED,
                details: err.message,
              }
            : { code: Status.INTERNAL, details: `cannot deserialize the request: ${String(err)}` },
        );
        stream.removeAllListeners("data");
        stream.resume();
        return false;
      }
    };
    const callback: Callback<unknown> = (err, res) => {
      if (err) return call.fail(err);
      call.write(res);
      call.end();
    };

    if (def.requestStream) {
      const requests = new Readable({
        objectMode: true,
        highWaterMark: CLIENT_STREAM_QUEUE,
        read: () => stream.resume(),
      });
      stream.on("data", (chunk: Buffer) => {
        const ok = receive(chunk, (req) => {
          if (!requests.push(req)) stream.pause();
        });
        if (!ok) requests.destroy(new Error("the request stream failed"));
      });
      stream.on("end", () => {
        if (decoder.partial)
          call.fail({ code: Status.INTERNAL, details: "the request stream ended inside a message" });
        requests.push(null);
      });
      call.on("cancelled", () => requests.destroy(new Error("the call was cancelled")));
      requests.on("error", () => {}); // the handler sees it through its iterator
      Object.assign(call, { [Symbol.asyncIterator]: () => requests[Symbol.asyncIterator]() });
      handler(call, callback);
      return;
    }

    const received: unknown[] = [];
    stream.on("data", (chunk: Buffer) => receive(chunk, (req) => received.push(req)));
    stream.on("end", () => {
      if (call.done) return;
      if (received.length !== 1 || decoder.partial) {
        call.fail({
          code: Status.UNIMPLEMENTED,
          details: `Expected one request message for ${def.path}, received ${received.length}${decoder.partial ? " and part of another" : ""}`,
        });
        return;
      }
      Object.assign(call, { request: received[0] });
      if (def.responseStream) handler(call);
      else handler(call, callback);
    });
  }
}
