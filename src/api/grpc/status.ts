/** gRPC status codes and the two headers that carry a call's status and deadline. */

/** The canonical status codes (grpc/doc/statuscodes.md), numbered as on the wire. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

/** How a call ends when it does not succeed: its status code and message. */
export interface ServiceError {
  code: Status;
  details: string;
}

/**
 * `grpc-message` is percent-encoded UTF-8: every byte outside printable ASCII, and `%`
 * itself, as %XX (the HTTP/2 transport spec).
 */
export function encodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = "";
  for (const b of Buffer.from(message, "utf8")) {
    out +=
      b >= 0x20 && b <= 0x7e && b !== 0x25
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * The call's time budget in ms from a `grpc-timeout` header ("100m", "5S": at most 8 digits
 * and a unit): Infinity without one, undefined if it is malformed.
 */
export function parseGrpcTimeout(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return Number.POSITIVE_INFINITY;
  const m = typeof header === "string" ? /^(\d{1,8})([HMSmun])$/.exec(header) : null;
  if (!m) return undefined;
  return Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] ?? ""] ?? Number.NaN);
}
