/**
 * Line decoders: one physical line of a log file (bytes [start, end) of a chunk, without its
 * newline) → time, stream, whether it is a partial part of a longer line, and where its
 * content is. The CRI format (`<RFC3339Nano> <stream> <P|F> <content>`, what conmon and the
 * kubelet write) is read byte by byte, with no string or Buffer made per line; Docker's
 * json-file format and raw lines (host files) are the others.
 */
import { nowNs, parseRfc3339Ns } from "./record.js";

export interface DecodedLine {
  timeNs: bigint;
  stream: string;
  /** A part of a longer line: joined with the following parts up to a full one. */
  partial: boolean;
  /** The content is bytes [start, end) of buf: the chunk itself, or a buffer of its own. */
  buf: Buffer;
  start: number;
  end: number;
}

export type LineFormat = "cri" | "docker-json" | "raw";

export type LineDecoder = (chunk: Buffer, start: number, end: number) => DecodedLine;

const SPACE = 0x20;
const P = 0x50;
const F = 0x46;

/** The content of a decoded line as text. */
export const contentText = (d: DecodedLine): string => d.buf.toString("utf8", d.start, d.end);

/** A CRI log line; one that does not follow the format is passed on whole as stdout. */
export function decodeCriLine(chunk: Buffer, start = 0, end = chunk.length): DecodedLine {
  const s1 = chunk.indexOf(SPACE, start);
  if (s1 > 0 && s1 + 9 <= end) {
    const stream = streamAt(chunk, s1 + 1);
    const tag = chunk[s1 + 8];
    if (
      stream !== undefined &&
      chunk[s1 + 7] === SPACE &&
      (tag === P || tag === F) &&
      (s1 + 9 === end || chunk[s1 + 9] === SPACE)
    ) {
      const timeNs = criTime(chunk, start, s1);
      if (timeNs !== undefined) {
        const cs = Math.min(s1 + 10, end);
        return { timeNs, stream, partial: tag === P, buf: chunk, start: cs, end };
      }
    }
  }
  return { timeNs: nowNs(), stream: "stdout", partial: false, buf: chunk, start, end };
}

/** "stdout" / "stderr" at `at` (6 bytes), else undefined. */
function streamAt(b: Buffer, at: number): string | undefined {
  if (b[at] !== 0x73 || b[at + 1] !== 0x74 || b[at + 2] !== 0x64) return undefined; // std
  const x = b[at + 3];
  const y = b[at + 4];
  const z = b[at + 5];
  if (x === 0x6f && y === 0x75 && z === 0x74) return "stdout";
  if (x === 0x65 && y === 0x72 && z === 0x72) return "stderr";
  return undefined;
}

// Lines come in bursts within one second: the date-time and zone of the last stamp are kept
// (bytes and their value), so most lines only have their fraction digits read.
const lastKey = Buffer.alloc(32);
let lastKeyLen = 0;
let lastZoneAt = 0;
let lastBase = 0n;

const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;

/** `YYYY-MM-DDTHH:MM:SS[.fffffffff](Z|±hh:mm)` at [start, end) → ns since the epoch. */
function criTime(b: Buffer, start: number, end: number): bigint | undefined {
  const len = end - start;
  if (len < 20) return undefined;
  // Fraction digits after the seconds, if any; the zone follows them.
  let zs = start + 19;
  let frac = 0;
  let digits = 0;
  if (b[zs] === 0x2e) {
    zs++;
    while (zs < end && isDigit(b[zs])) {
      if (digits < 9) {
        frac = frac * 10 + (b[zs]! - 0x30);
        digits++;
      }
      zs++;
    }
    if (digits === 0) return undefined;
  }
  const zoneLen = end - zs;
  if (zoneLen !== 1 && zoneLen !== 6) return undefined;
  let base: bigint | undefined;
  if (lastKeyLen === 19 + zoneLen && sameKey(b, start, zs, zoneLen)) base = lastBase;
  else {
    const text = b.toString("latin1", start, start + 19) + b.toString("latin1", zs, end);
    const ns = parseRfc3339Ns(text);
    if (ns === undefined) return undefined;
    b.copy(lastKey, 0, start, start + 19);
    b.copy(lastKey, 19, zs, end);
    lastKeyLen = 19 + zoneLen;
    lastZoneAt = 19;
    lastBase = ns;
    base = ns;
  }
  for (let i = digits; i < 9; i++) frac *= 10;
  return frac === 0 ? base : base + BigInt(frac);
}

function sameKey(b: Buffer, start: number, zs: number, zoneLen: number): boolean {
  for (let i = 18; i >= 0; i--) if (b[start + i] !== lastKey[i]) return false;
  for (let i = 0; i < zoneLen; i++) if (b[zs + i] !== lastKey[lastZoneAt + i]) return false;
  return true;
}

/** A Docker json-file line: `{"log":"…\n","stream":"stdout","time":"…"}`. */
export function decodeDockerJsonLine(chunk: Buffer, start = 0, end = chunk.length): DecodedLine {
  try {
    const o = JSON.parse(chunk.toString("utf8", start, end)) as {
      log?: unknown;
      stream?: unknown;
      time?: unknown;
    };
    if (typeof o.log === "string") {
      const partial = !o.log.endsWith("\n");
      const content = Buffer.from(partial ? o.log : o.log.slice(0, -1), "utf8");
      return {
        timeNs: (typeof o.time === "string" ? parseRfc3339Ns(o.time) : undefined) ?? nowNs(),
        stream: typeof o.stream === "string" ? o.stream : "stdout",
        partial,
        buf: content,
        start: 0,
        end: content.length,
      };
    }
  } catch {}
  return { timeNs: nowNs(), stream: "stdout", partial: false, buf: chunk, start, end };
}

export function decodeRawLine(chunk: Buffer, start = 0, end = chunk.length): DecodedLine {
  return { timeNs: nowNs(), stream: "", partial: false, buf: chunk, start, end };
}

export function lineDecoder(format: LineFormat): LineDecoder {
  return format === "cri" ? decodeCriLine : format === "docker-json" ? decodeDockerJsonLine : decodeRawLine;
}
