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

// Lines come in bursts within one second: the seconds part is parsed (and formatted) once.
let lastParsed = { key: "", ns: 0n };
let lastFormatted = { base: 0n, text: "" };

/** RFC 3339 (with up to 9 fraction digits) → ns since the epoch; undefined if not one. */
export function parseRfc3339Ns(text: string): bigint | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const key = `${m[1]}${m[3]}`;
  let base: bigint;
  if (lastParsed.key === key) base = lastParsed.ns;
  else {
    const ms = Date.parse(key);
    if (Number.isNaN(ms)) return undefined;
    base = BigInt(ms) * 1_000_000n;
    lastParsed = { key, ns: base };
  }
  return m[2] ? base + BigInt(m[2].padEnd(9, "0")) : base;
}

/** ns since the epoch → RFC 3339 in UTC with nine fraction digits. */
export function formatRfc3339Ns(ns: bigint): string {
  let frac = ns - lastFormatted.base;
  if (frac < 0n || frac >= 1_000_000_000n || lastFormatted.text === "") {
    let sec = ns / 1_000_000_000n;
    if (ns % 1_000_000_000n < 0n) sec -= 1n;
    const base = sec * 1_000_000_000n;
    lastFormatted = { base, text: new Date(Number(sec) * 1000).toISOString().slice(0, 19) };
    frac = ns - base;
  }
  return `${lastFormatted.text}.${String(Number(frac)).padStart(9, "0")}Z`;
}

let lastNow = { ms: 0, ns: 0n };

/** Now, ns since the epoch (ms precision; one bigint per millisecond, not per raw line). */
export function nowNs(): bigint {
  const ms = Date.now();
  if (ms !== lastNow.ms) lastNow = { ms, ns: BigInt(ms) * 1_000_000n };
  return lastNow.ns;
}

/** The flat JSON view flusher_stdout and the JSON-based flushers write. */
export function recordToJson(r: LogRecord): Record<string, string> {
  const out: Record<string, string> = { ...r.fields };
  if (r.source) out["_source_"] = r.source;
  out["_time_"] = formatRfc3339Ns(r.timeNs);
  return Object.assign(out, r.tags);
}
