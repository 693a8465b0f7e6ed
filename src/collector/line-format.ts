/**
 * Line decoders: one physical line of a log file (without its newline) → time, stream,
 * whether it is a partial part of a longer line, and the content bytes. The CRI format
 * (`<RFC3339Nano> <stream> <P|F> <content>`, what conmon and the kubelet write), Docker's
 * json-file format, and raw lines (host files).
 */
import { nowNs, parseRfc3339Ns } from "./record.js";

export interface DecodedLine {
  timeNs: bigint;
  stream: string;
  /** A part of a longer line: joined with the following parts up to a full one. */
  partial: boolean;
  content: Buffer;
}

export type LineFormat = "cri" | "docker-json" | "raw";

export type LineDecoder = (line: Buffer) => DecodedLine;

const SPACE = 0x20;

/** A CRI log line; one that does not follow the format is passed on whole as stdout. */
export function decodeCriLine(line: Buffer): DecodedLine {
  const s1 = line.indexOf(SPACE);
  const s2 = s1 < 0 ? -1 : line.indexOf(SPACE, s1 + 1);
  const s3 = s2 < 0 ? -1 : line.indexOf(SPACE, s2 + 1);
  const end = s3 < 0 ? (s2 >= 0 && s2 + 2 === line.length ? line.length : -1) : s3;
  if (s2 >= 0 && end === s2 + 2) {
    const stream = line.toString("latin1", s1 + 1, s2);
    const tag = line[s2 + 1];
    const timeNs = parseRfc3339Ns(line.toString("latin1", 0, s1));
    if (
      timeNs !== undefined &&
      (stream === "stdout" || stream === "stderr") &&
      (tag === 0x50 || tag === 0x46)
    ) {
      return {
        timeNs,
        stream,
        partial: tag === 0x50,
        content: line.subarray(Math.min(end + 1, line.length)),
      };
    }
  }
  return { timeNs: nowNs(), stream: "stdout", partial: false, content: line };
}

/** A Docker json-file line: `{"log":"…\n","stream":"stdout","time":"…"}`. */
export function decodeDockerJsonLine(line: Buffer): DecodedLine {
  try {
    const o = JSON.parse(line.toString("utf8")) as { log?: unknown; stream?: unknown; time?: unknown };
    if (typeof o.log === "string") {
      const partial = !o.log.endsWith("\n");
      const text = partial ? o.log : o.log.slice(0, -1);
      return {
        timeNs: (typeof o.time === "string" ? parseRfc3339Ns(o.time) : undefined) ?? nowNs(),
        stream: typeof o.stream === "string" ? o.stream : "stdout",
        partial,
        content: Buffer.from(text, "utf8"),
      };
    }
  } catch {}
  return { timeNs: nowNs(), stream: "stdout", partial: false, content: line };
}

export function decodeRawLine(line: Buffer): DecodedLine {
  return { timeNs: nowNs(), stream: "", partial: false, content: line };
}

export function lineDecoder(format: LineFormat): LineDecoder {
  return format === "cri" ? decodeCriLine : format === "docker-json" ? decodeDockerJsonLine : decodeRawLine;
}
