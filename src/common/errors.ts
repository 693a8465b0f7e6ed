/**
 * Typed domain errors. Domain code throws these; the gRPC boundary (src/cri/boundary.ts)
 * maps each `code` to a gRPC status in one place. Nothing outside src/cri imports gRPC.
 */
export type ErrorCode =
  | "InvalidArgument"
  | "NotFound"
  | "AlreadyExists"
  | "FailedPrecondition"
  | "Unavailable"
  | "Unimplemented"
  | "DeadlineExceeded"
  | "PermissionDenied"
  | "Unauthenticated"
  | "ResourceExhausted"
  | "DataLoss"
  | "Aborted"
  | "Cancelled"
  | "Internal";

export class BerthError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = `${code}Error`;
  }
}

const make =
  (code: ErrorCode) =>
  (message: string, cause?: unknown): BerthError =>
    new BerthError(code, message, cause === undefined ? undefined : { cause });

export const invalidArgument = make("InvalidArgument");
export const notFound = make("NotFound");
export const alreadyExists = make("AlreadyExists");
export const failedPrecondition = make("FailedPrecondition");
export const unavailable = make("Unavailable");
export const unimplemented = make("Unimplemented");
export const deadlineExceeded = make("DeadlineExceeded");
/** The caller gave up (its RPC was cancelled): gRPC CANCELLED. */
export const cancelled = make("Cancelled");
export const permissionDenied = make("PermissionDenied");
export const unauthenticated = make("Unauthenticated");
export const resourceExhausted = make("ResourceExhausted");
export const dataLoss = make("DataLoss");
export const internal = make("Internal");

export function isBerthError(err: unknown, code?: ErrorCode): err is BerthError {
  return err instanceof BerthError && (code === undefined || err.code === code);
}

/** Node's fs errors carry a string `code` such as ENOENT. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/**
 * What an aborted operation throws: the signal's reason when it is a BerthError (the CRI
 * boundary aborts with cancelled / deadlineExceeded / unavailable), else `Cancelled`.
 */
export function abortReason(signal: AbortSignal | undefined, cause?: unknown): BerthError {
  const reason: unknown = signal?.reason;
  if (reason instanceof BerthError) return reason;
  return new BerthError("Cancelled", "operation cancelled", { cause: reason ?? cause });
}
