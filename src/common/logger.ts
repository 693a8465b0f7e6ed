import { type Logger, pino } from "pino";

export type { Logger };
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Fields that hold secrets wherever they appear (top level or one object down): the CRI
 * AuthConfig's, registry credentials, and Authorization headers. Logged as "[redacted]".
 */
export const REDACTED_PATHS = [
  "auth",
  "password",
  "identityToken",
  "identity_token",
  "identitytoken",
  "registryToken",
  "registry_token",
  "authorization",
  "headers.authorization",
  "credentials",
].flatMap((p) => [p, `*.${p}`]);

/**
 * `text` with the secrets a message can carry replaced: URL userinfo (`https://user:secret@`)
 * and Basic / Bearer credentials.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]+@/gi, "$1<credentials>@")
    .replace(/\b(basic|bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}/gi, "$1$2[redacted]");
}

/** pino's error serializer, with secrets scrubbed from messages and stacks. */
function serializeError(err: unknown): unknown {
  if (typeof err === "string") return redactSecrets(err);
  if (!(err instanceof Error)) return err;
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  for (const key of ["message", "stack"]) {
    const v = out[key];
    if (typeof v === "string") out[key] = redactSecrets(v);
  }
  return out;
}

/** JSON lines on stderr: `level`, `time`, `msg`, plus bound fields (component, method, ids). */
export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      serializers: { err: serializeError },
    },
    destination,
  );
}
