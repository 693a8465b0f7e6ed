/**
 * The CLI's errors and exit codes, and the one place that turns a failure into a one-line
 * message naming its cause: usage errors, gRPC status codes, the runtime's socket.
 *
 * Exit codes (documented in the README):
 *   0    success
 *   1    the runtime refused or failed the request (not found, invalid, unavailable…)
 *   2    usage: unknown command or option, missing or bad argument, bad config file
 *   125  `run`: failed before the container ran (everything it created is removed)
 *   126  `run`/`exec`: the command cannot be invoked (permission, not executable)
 *   127  `run`/`exec`: the command was not found
 *   130  interrupted (Ctrl-C)
 *   N    `run`, `exec`, `attach`: the container's or command's own exit code
 */

import { existsSync } from "node:fs";
import { Status } from "../api/grpc/status.js";

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  runFailed: 125,
  noExec: 126,
  notFound: 127,
  interrupted: 130,
};

/**
 * The CLI's entry is bundled (dist/bin/berth.cjs) apart from the verbs' modules, so this module
 * can be loaded twice: `instanceof` checks a brand in the global symbol registry, not the class.
 */
function branded<T extends abstract new (...args: never[]) => Error>(name: string, cls: T): T {
  const brand = Symbol.for(`berth.cli.${name}`);
  Object.defineProperty(cls.prototype, brand, { value: true });
  Object.defineProperty(cls, Symbol.hasInstance, {
    value: (v: unknown) => typeof v === "object" && v !== null && brand in v,
  });
  return cls;
}

export const UsageError = branded("UsageError", class UsageError extends Error {});
export type UsageError = InstanceType<typeof UsageError>;

/** A failure the CLI has already worded; `code` is the process exit code. */
export const CliError = branded(
  "CliError",
  class CliError extends Error {
    constructor(
      message: string,
      readonly code: number = EXIT.failed,
    ) {
      super(message);
    }
  },
);
export type CliError = InstanceType<typeof CliError>;

const CODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k]));

export interface GrpcLike {
  code?: number;
  details?: string;
  message: string;
}

/** The socket path of a unix endpoint, or undefined. */
export function socketPath(endpoint: string): string | undefined {
  if (endpoint.startsWith("unix://")) return endpoint.slice("unix://".length);
  if (endpoint.startsWith("unix:")) return endpoint.slice("unix:".length);
  if (endpoint.startsWith("/")) return endpoint;
  return undefined;
}

/**
 * Whether a gRPC failure is about the connection to the runtime, not the runtime's own answer
 * (a pull from a registry that is down is UNAVAILABLE too, and names the registry).
 */
function isConnectionFailure(e: GrpcLike, endpoint: string): boolean {
  const d = e.details ?? e.message;
  const path = socketPath(endpoint);
  return (
    /No connection established|Connection dropped|Failed to connect to/.test(d) ||
    (!!path && d.includes(path))
  );
}

/** `runc`'s `time="…" level=error msg="…"` lines, reduced to the message. */
export function stripRuncNoise(text: string): string {
  return text
    .split("\n")
    .map((line) => {
      const m = /^time="?[^"\s]*"? level=\w+ msg="((?:[^"\\]|\\.)*)"/.exec(line.trim());
      return m ? (m[1] ?? "").replace(/\\"/g, '"').replace(/\\\\/g, "\\") : line;
    })
    .join("\n");
}

/**
 * One line for a failure: what went wrong and with which object. `timeoutS` names the
 * --timeout when a deadline passed.
 */
export function describeError(
  err: unknown,
  endpoint: string,
  timeoutS?: number,
): { text: string; code: number } {
  if (err instanceof CliError) return { text: err.message, code: err.code };
  const e = err as GrpcLike;
  if (typeof e?.code !== "number" || e.code < 0 || e.code > 16) {
    return { text: stripRuncNoise(e?.message ?? String(err)), code: EXIT.failed };
  }
  const details = stripRuncNoise(e.details ?? e.message).trim();
  if (e.code === Status.UNAVAILABLE && isConnectionFailure(e, endpoint)) {
    const path = socketPath(endpoint);
    if (path && !existsSync(path)) {
      return {
        text: `cannot connect to the runtime: no socket at ${path} (is berthd running? set --runtime-endpoint or CONTAINER_RUNTIME_ENDPOINT)`,
        code: EXIT.failed,
      };
    }
    const why = /EACCES/.test(details) ? "permission denied (run as root)" : details;
    return { text: `cannot connect to the runtime at ${endpoint}: ${why}`, code: EXIT.failed };
  }
  if (e.code === Status.DEADLINE_EXCEEDED) {
    const after = timeoutS ? ` after ${timeoutS}s (--timeout)` : "";
    return { text: `timed out${after}: ${details}`, code: EXIT.failed };
  }
  if (e.code === Status.UNIMPLEMENTED) {
    return { text: `the runtime does not implement this call: ${details}`, code: EXIT.failed };
  }
  const name = CODE_NAMES[e.code] ?? `code ${e.code}`;
  return { text: `${details || "request failed"} (${name})`, code: EXIT.failed };
}
