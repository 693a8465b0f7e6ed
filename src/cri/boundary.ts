/**
 * The one error boundary between gRPC and Berth's domain code: every RPC handler is wrapped
 * here, which logs the call (method, ids, duration) and maps typed BerthErrors to gRPC status
 * codes. Anything else becomes INTERNAL and is logged with its stack.
 */
import {
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Metadata,
  type ServerErrorResponse,
  status,
} from "@grpc/grpc-js";
import { BerthError, type ErrorCode, unimplemented } from "../common/errors.js";
import type { Logger } from "../common/logger.js";

const GRPC_CODES: Record<ErrorCode, status> = {
  InvalidArgument: status.INVALID_ARGUMENT,
  NotFound: status.NOT_FOUND,
  AlreadyExists: status.ALREADY_EXISTS,
  FailedPrecondition: status.FAILED_PRECONDITION,
  Unavailable: status.UNAVAILABLE,
  Unimplemented: status.UNIMPLEMENTED,
  DeadlineExceeded: status.DEADLINE_EXCEEDED,
  PermissionDenied: status.PERMISSION_DENIED,
  Unauthenticated: status.UNAUTHENTICATED,
  ResourceExhausted: status.RESOURCE_EXHAUSTED,
  DataLoss: status.DATA_LOSS,
  Aborted: status.ABORTED,
  Cancelled: status.CANCELLED,
  Internal: status.INTERNAL,
};

export function toGrpcError(err: unknown): ServerErrorResponse {
  const code = err instanceof BerthError ? GRPC_CODES[err.code] : status.INTERNAL;
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(message), { code, details: message, metadata: new Metadata() });
}

/** Fields worth putting on a request log line: the ids and names CRI requests carry. */
const LOGGED_FIELDS = ["podSandboxId", "containerId", "image"] as const;

function requestFields(req: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof req !== "object" || req === null) return out;
  for (const field of LOGGED_FIELDS) {
    const v = (req as Record<string, unknown>)[field];
    if (typeof v === "string" && v !== "") out[field] = v;
    else if (field === "image" && typeof v === "object" && v !== null && "image" in v) out[field] = v.image;
  }
  return out;
}

export type RequestObserver = (method: string, code: string, seconds: number) => void;
let observer: RequestObserver | undefined;

/** Where every RPC's outcome and latency is reported (berthd's metrics). */
export function observeRequests(o: RequestObserver | undefined): void {
  observer = o;
}

function logOutcome(log: Logger, method: string, started: bigint, err?: unknown): void {
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  observer?.(method, err === undefined ? "OK" : err instanceof BerthError ? err.code : "Internal", ms / 1000);
  if (err === undefined) {
    log.debug({ durationMs: ms }, `${method} done`);
  } else if (err instanceof BerthError) {
    const level = err.code === "Internal" || err.code === "DataLoss" ? "error" : "info";
    log[level]({ durationMs: ms, code: err.code, err: err.message }, `${method} failed`);
  } else {
    log.error({ durationMs: ms, err }, `${method} failed unexpectedly`);
  }
}

export function unary<Req, Res>(
  logger: Logger,
  method: string,
  handler: (req: Req, log: Logger) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const log = logger.child({ method, ...requestFields(call.request) });
    const started = process.hrtime.bigint();
    handler(call.request, log).then(
      (res) => {
        logOutcome(log, method, started);
        callback(null, res);
      },
      (err: unknown) => {
        logOutcome(log, method, started, err);
        callback(toGrpcError(err));
      },
    );
  };
}

export function clientStreaming<Req, Res>(
  logger: Logger,
  method: string,
  handler: (requests: AsyncIterable<Req>, log: Logger) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    const log = logger.child({ method });
    const started = process.hrtime.bigint();
    handler(call as AsyncIterable<Req>, log).then(
      (res) => {
        logOutcome(log, method, started);
        callback(null, res);
      },
      (err: unknown) => {
        logOutcome(log, method, started, err);
        callback(toGrpcError(err));
      },
    );
  };
}

/** A handler for an RPC whose issue has not landed yet: UNIMPLEMENTED at once, never a hang. */
export function notYet(logger: Logger, method: string): handleUnaryCall<unknown, unknown> {
  return unary(logger, method, async () => {
    throw unimplemented(`${method} is not implemented by berth yet`);
  });
}

export function notYetStreaming(logger: Logger, method: string): handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    const err = unimplemented(`${method} is not implemented by berth yet`);
    logOutcome(logger.child({ method }), method, process.hrtime.bigint(), err);
    call.emit("error", toGrpcError(err));
  };
}
