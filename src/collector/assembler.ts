/**
 * Turns a chunk of a log file into records: splits physical lines, decodes them (CRI, Docker
 * json-file, raw), joins partial (`P`) parts per stream and groups multiline records. It is
 * stateless: each call starts at a *clean point* of the file (no partial line and no multiline
 * record open in any stream) and reports the last clean point it reached, with only the records
 * complete before it. The caller commits that offset and re-reads from there, so a checkpoint
 * never falls inside a record and no record is emitted twice (stdout and stderr interleave in
 * one file, so records of one stream completed after the other stream's open record are left
 * for the next call).
 */
import { contentText, type DecodedLine, type LineDecoder } from "./line-format.js";
import type { NdjsonBatch } from "./ndjson.js";
import type { LogRecord } from "./record.js";

export interface MultilineOptions {
  start?: RegExp;
  continue?: RegExp;
  end?: RegExp;
  /** What to do with lines outside any record: emit each alone (default) or drop them. */
  unmatched: "single_line" | "discard";
}

export interface AssembleOptions {
  decode: LineDecoder;
  multiline?: MultilineOptions;
  /** A partial line or multiline record is cut into several records beyond this size. */
  maxRecordBytes: number;
  /** Close everything open at the end of the chunk (EOF after the flush timeout, file done). */
  force: boolean;
}

export interface AssembleResult {
  records: LogRecord[];
  /** Bytes from the chunk's start to the last clean point (what may be committed). */
  consumed: number;
  /** Something was left open at the end of the chunk. */
  pending: boolean;
  /** The records already serialised (records is then empty): see ndjson-assembler.ts. */
  ndjson?: NdjsonBatch;
}

/** A chunk (from a clean point) -> records; `force` closes what is open at its end. */
export type ChunkAssembler = (chunk: Buffer, force: boolean) => AssembleResult;

interface Partial {
  parts: Buffer[];
  bytes: number;
  start: number;
  timeNs: bigint;
}

interface Group {
  lines: string[];
  bytes: number;
  timeNs: bigint;
}

export function assemble(chunk: Buffer, opts: AssembleOptions): AssembleResult {
  const partials = new Map<string, Partial>();
  const groups = new Map<string, Group>();
  const records: LogRecord[] = [];
  const ml = opts.multiline;
  let clean = 0;
  let cleanCount = 0;

  const allClean = () => partials.size === 0 && groups.size === 0;
  const markClean = (at: number) => {
    clean = at;
    cleanCount = records.length;
  };
  const emit = (stream: string, timeNs: bigint, content: string) => {
    records.push({ timeNs, source: stream, fields: { content }, tags: {} });
  };
  const closeGroup = (stream: string, complete: boolean) => {
    const g = groups.get(stream);
    if (!g) return;
    groups.delete(stream);
    if (complete) emit(stream, g.timeNs, g.lines.join("\n"));
    else if (ml?.unmatched !== "discard") for (const l of g.lines) emit(stream, g.timeNs, l);
  };
  const append = (stream: string, timeNs: bigint, text: string) => {
    const g = groups.get(stream);
    if (g) {
      g.lines.push(text);
      g.bytes += text.length + 1;
    } else groups.set(stream, { lines: [text], bytes: text.length, timeNs });
  };
  const unmatched = (stream: string, timeNs: bigint, text: string) => {
    if (ml?.unmatched !== "discard") emit(stream, timeNs, text);
  };

  /** A full logical line of `stream`; `single` when it is exactly the physical line at `ls`. */
  const logicalLine = (stream: string, timeNs: bigint, text: string, ls: number, single: boolean) => {
    if (!ml) {
      emit(stream, timeNs, text);
      return;
    }
    const open = groups.get(stream);
    if (ml.start) {
      if (ml.start.test(text)) {
        if (open) {
          closeGroup(stream, !ml.end);
          if (single && allClean()) markClean(ls);
        }
        append(stream, timeNs, text);
      } else if (open) {
        if (ml.continue) {
          if (ml.continue.test(text)) append(stream, timeNs, text);
          else if (ml.end?.test(text)) {
            append(stream, timeNs, text);
            closeGroup(stream, true);
          } else {
            closeGroup(stream, !ml.end);
            unmatched(stream, timeNs, text);
          }
        } else {
          append(stream, timeNs, text);
          if (ml.end?.test(text)) closeGroup(stream, true);
        }
      } else unmatched(stream, timeNs, text);
    } else if (ml.continue) {
      // continue + end: continuation lines, then the end line.
      if (ml.continue.test(text)) append(stream, timeNs, text);
      else if (ml.end?.test(text) && open) {
        append(stream, timeNs, text);
        closeGroup(stream, true);
      } else {
        closeGroup(stream, false);
        unmatched(stream, timeNs, text);
      }
    } else if (ml.end) {
      append(stream, timeNs, text);
      if (ml.end.test(text)) closeGroup(stream, true);
    } else emit(stream, timeNs, text);
    const g = groups.get(stream);
    if (g && g.bytes >= opts.maxRecordBytes) closeGroup(stream, true);
  };

  const finishPartial = (stream: string, p: Partial, single: boolean) => {
    partials.delete(stream);
    logicalLine(stream, p.timeNs, Buffer.concat(p.parts, p.bytes).toString("utf8"), p.start, single);
  };

  const physicalLine = (d: DecodedLine, ls: number) => {
    const p = partials.get(d.stream);
    if (d.partial) {
      const part = d.buf.subarray(d.start, d.end);
      if (p) {
        p.parts.push(part);
        p.bytes += part.length;
        if (p.bytes >= opts.maxRecordBytes) finishPartial(d.stream, p, false);
      } else partials.set(d.stream, { parts: [part], bytes: part.length, start: ls, timeNs: d.timeNs });
      return;
    }
    if (p) {
      p.parts.push(d.buf.subarray(d.start, d.end));
      p.bytes += d.end - d.start;
      finishPartial(d.stream, p, false);
    } else logicalLine(d.stream, d.timeNs, contentText(d), ls, true);
  };

  let pos = 0;
  while (pos < chunk.length) {
    const nl = chunk.indexOf(0x0a, pos);
    if (nl < 0) {
      if (!opts.force) break;
      physicalLine(opts.decode(chunk, pos, chunk.length), pos);
      pos = chunk.length;
    } else {
      physicalLine(opts.decode(chunk, pos, nl), pos);
      pos = nl + 1;
    }
    if (allClean()) markClean(pos);
  }
  if (opts.force) {
    for (const [stream, p] of [...partials]) finishPartial(stream, p, false);
    for (const stream of [...groups.keys()]) closeGroup(stream, true);
    markClean(pos);
  }
  return {
    records: records.slice(0, cleanCount),
    consumed: clean,
    pending: !allClean() || pos < chunk.length,
  };
}
