/**
 * The log record that flows from an input through the processors to the flushers, and the
 * time helpers every stage shares (times are nanoseconds since the epoch, as bigint, so the
 * CRI log's RFC 3339 nanosecond stamps survive the trip unchanged).
 */

export interface LogRecord {
  /** The line's own time (the CRI log's stamp), ns since the epoch. */
  timeNs: bigint;
  /** stdout / stderr for container output; "" for files. */
  source: string;
  /** Content and parsed fields, in insertion order ("content" first until a parser drops it). */
  fields: Record<string, string>;
  /** Where the record came from: container, pod, file path… (`_container_name_`…). */
  tags: Record<string, string>;
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** RFC 3339 (with up to 9 fraction digits) → ns since the epoch; undefined if not one. */
export function parseRfc3339Ns(text: string): bigint | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3] === "Z" ? "Z" : m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/** ns since the epoch → RFC 3339 in UTC with nine fraction digits. */
export function formatRfc3339Ns(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return `${iso.slice(0, 19)}.${frac.toString().padStart(9, "0")}Z`;
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** The flat JSON view flusher_stdout and the JSON-based flushers write. */
export function recordToJson(r: LogRecord): Record<string, string> {
  const out: Record<string, string> = { ...r.fields };
  if (r.source) out["_source_"] = r.source;
  out["_time_"] = formatRfc3339Ns(r.timeNs);
  return Object.assign(out, r.tags);
}
