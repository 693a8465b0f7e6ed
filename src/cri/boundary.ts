/**
 * The one error boundary between gRPC and Berth's domain code: every RPC handler is wrapped
 * here, which logs the call (method, ids, duration) and maps typed BerthErrors to gRPC status
 * codes. Anything else becomes INTERNAL and is logged with its stack.
 *
 * Each call gets an AbortSignal (the handler's third argument; handlers may ignore it) that
 * aborts when the client cancels the call, when the call's deadline passes, or when berthd
 * shuts down (`abortCalls`). A call whose signal aborted answers with the reason: CANCELLED,
 * DEADLINE_EXCEEDED or UNAVAILABLE.
 */
import type {
  ClientStreamHandler,
  ServerStreamHandler,
  ServiceImplementation,
  UnaryHandler,
} from "../api/grpc/server.js";
import { type ServiceError, Status } from "../api/grpc/status.js";
import {
  BerthError,
  cancelled,
  deadlineExceeded,
  type ErrorCode,
  unavailable,
  unimplemented,
} from "../common/errors.js";
import { type Logger, redactSecrets } from "../common/logger.js";
import { redactReference } from "../common/redact.js";

const GRPC_CODES: Record<ErrorCode, Status> = {
  InvalidArgument: Status.INVALID_ARGUMENT,
  NotFound: Status.NOT_FOUND,
  AlreadyExists: Status.ALREADY_EXISTS,
  FailedPrecondition: Status.FAILED_PRECONDITION,
  Unavailable: Status.UNAVAILABLE,
  Unimplemented: Status.UNIMPLEMENTED,
  DeadlineExceeded: Status.DEADLINE_EXCEEDED,
  PermissionDenied: Status.PERMISSION_DENIED,
  Unauthenticated: Status.UNAUTHENTICATED,
  ResourceExhausted: Status.RESOURCE_EXHAUSTED,
  DataLoss: Status.DATA_LOSS,
  Aborted: Status.ABORTED,
  Cancelled: Status.CANCELLED,
  Internal: Status.INTERNAL,
};

export function toGrpcError(err: unknown): ServiceError {
  const code = err instanceof BerthError ? GRPC_CODES[err.code] : Status.INTERNAL;
  return { code, details: err instanceof Error ? err.message : String(err) };
}

/** Fields worth putting on a request log line: the ids and names CRI requests carry. */
const LOGGED_FIELDS = ["podSandboxId", "containerId", "image"] as const;

function requestFields(req: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof req !== "object" || req === null) return out;
  for (const field of LOGGED_FIELDS) {
    const v = (req as Record<string, unknown>)[field];
    if (typeof v === "string" && v !== "") out[field] = field === "image" ? redactReference(v) : v;
    else if (field === "image" && typeof v === "object" && v !== null && "image" in v) {
      out[field] = typeof v.image === "string" ? redactReference(v.image) : v.image;
    }
  }
  return out;
}

/** What a call's signal needs from the server's call object. */
interface CancellableCall {
  /** ms since the epoch; Infinity for none. */
  getDeadline(): number;
  readonly cancelled: boolean;
  on(event: "cancelled", listener: () => void): unknown;
  removeListener(event: "cancelled", listener: () => void): unknown;
}

/** Controllers of the calls in flight, for `abortCalls`. */
const inflight = new Set<AbortController>();

/** Aborts every call in flight with `reason` (berthd's shutdown); returns how many there were. */
export function abortCalls(reason: BerthError): number {
  const n = inflight.size;
  for (const c of inflight) c.abort(reason);
  return n;
}

/** setTimeout's largest delay; a later deadline is left to the client. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The signal of one call, and `done()` to forget it once the call has answered. */
function callSignal(call: CancellableCall, method: string): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const deadline = call.getDeadline();
  const expired = () => deadlineExceeded(`${method}: the caller's deadline expired`);
  let timer: NodeJS.Timeout | undefined;
  const delay = deadline - Date.now();
  if (Number.isFinite(delay) && delay < MAX_TIMER_MS) {
    timer = setTimeout(() => controller.abort(expired()), Math.max(0, delay));
  }
  // The server also reports an expired deadline as "cancelled": say which it was.
  const onCancel = () =>
    controller.abort(
      Date.now() >= deadline - 5 ? expired() : cancelled(`${method} was cancelled by the client`),
    );
  call.on("cancelled", onCancel);
  if (call.cancelled) onCancel();
  inflight.add(controller);
  return {
    signal: controller.signal,
    done: () => {
      if (timer) clearTimeout(timer);
      call.removeListener("cancelled", onCancel);
      inflight.delete(controller);
    },
  };
}

/** The error a call answers with: why it was aborted, if it was. */
function outcomeError(err: unknown, signal: AbortSignal): unknown {
  return signal.aborted && signal.reason instanceof BerthError ? signal.reason : err;
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
    log[level]({ durationMs: ms, code: err.code, err: redactSecrets(err.message) }, `${method} failed`);
  } else {
    log.error({ durationMs: ms, err }, `${method} failed unexpectedly`);
  }
}

/**
 * Runs one call: the handler gets a logger and an AbortSignal (client cancel, deadline,
 * shutdown); its outcome is logged, counted and answered with a typed error's gRPC code.
 */
function serve<Res>(
  call: CancellableCall,
  log: Logger,
  method: string,
  run: (signal: AbortSignal) => Promise<Res>,
  callback: (err: ServiceError | null, res?: Res) => void,
): void {
  const started = process.hrtime.bigint();
  const { signal, done } = callSignal(call, method);
  run(signal).then(
    (res) => {
      done();
      logOutcome(log, method, started);
      callback(null, res);
    },
    (err: unknown) => {
      done();
      const final = outcomeError(err, signal);
      if (final !== err) log.debug({ err: describe(err) }, `${method}: error after the call was aborted`);
      logOutcome(log, method, started, final);
      callback(toGrpcError(final));
    },
  );
}

export function unary<Req, Res>(
  logger: Logger,
  method: string,
  handler: (req: Req, log: Logger, signal: AbortSignal) => Promise<Res>,
): UnaryHandler<Req, Res> {
  return (call, callback) => {
    const log = logger.child({ method, ...requestFields(call.request) });
    serve(call, log, method, (signal) => handler(call.request, log, signal), callback);
  };
}

export function clientStreaming<Req, Res>(
  logger: Logger,
  method: string,
  handler: (requests: AsyncIterable<Req>, log: Logger, signal: AbortSignal) => Promise<Res>,
): ClientStreamHandler<Req, Res> {
  return (call, callback) => {
    const log = logger.child({ method });
    serve(call, log, method, (signal) => handler(call, log, signal), callback);
  };
}

function describe(err: unknown): string {
  return redactSecrets(err instanceof Error ? err.message : String(err));
}

/** A handler for an RPC whose issue has not landed yet: UNIMPLEMENTED at once, never a hang. */
export function notYet(logger: Logger, method: string): UnaryHandler<unknown, unknown> {
  return unary(logger, method, async () => {
    throw unimplemented(`${method} is not implemented by berth yet`);
  });
}

export function notYetStreaming(logger: Logger, method: string): ServerStreamHandler<unknown, unknown> {
  return (call) => {
    const err = unimplemented(`${method} is not implemented by berth yet`);
    logOutcome(logger.child({ method }), method, process.hrtime.bigint(), err);
    call.fail(toGrpcError(err));
  };
}

/**
 * A service whose calls (but those in `except`) wait until `ready` resolves: berthd listens
 * while it recovers its pods and containers, answers Version at once, and serves the rest from
 * a recovered state. Should recovery fail (berthd then exits), waiting calls get UNAVAILABLE.
 */
export function heldUntil(
  ready: Promise<void>,
  impl: ServiceImplementation,
  except: readonly string[] = [],
): ServiceImplementation {
  let isReady = false;
  ready.then(
    () => {
      isReady = true;
    },
    () => {},
  );
  const held: ServiceImplementation = {};
  for (const [name, handler] of Object.entries(impl)) {
    held[name] = except.includes(name)
      ? handler
      : (call: { fail(err: ServiceError): void }, callback?: (err: ServiceError) => void) => {
          if (isReady) return handler(call, callback);
          ready.then(
            () => handler(call, callback),
            (err: unknown) => {
              const e = toGrpcError(unavailable(`berthd did not start: ${describe(err)}`));
              if (callback) callback(e);
              else call.fail(e);
            },
          );
        };
  }
  return held;
}
