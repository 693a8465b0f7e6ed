/**
 * The native reading path: for a source whose records go unchanged to flushers that take
 * NDJSON (no processors, no multiline, CRI or raw lines), a chunk is assembled *and*
 * serialised by the addon in one pass (native/log_ndjson.c), with no string or object per
 * line. The result is byte for byte what assemble() + ndjsonBuffer() give (ndjson-native.test.ts
 * checks it), with the same clean points, so checkpoints and backpressure are unchanged. A
 * chunk the addon hands back (a timestamp only Date.parse reads exactly) takes the JS path.
 */
import { native } from "../common/native.js";
import { assemble, type ChunkAssembler } from "./assembler.js";
import { decodeCriLine, decodeRawLine, type LineDecoder } from "./line-format.js";
import { ndjsonBuffer, tagsSuffix } from "./ndjson.js";
import type { LogRecord } from "./record.js";

export interface NdjsonSourceOptions {
  decode: LineDecoder;
  multiline?: unknown;
  maxRecordBytes: number;
  tags: Record<string, string>;
  ignoreStdout: boolean;
  ignoreStderr: boolean;
}

let addon: ReturnType<typeof native> | null | undefined;

function loadAddon(): ReturnType<typeof native> | null {
  if (addon === undefined) {
    try {
      addon = typeof native().logNdjson === "function" ? native() : null;
    } catch {
      addon = null;
    }
  }
  return addon;
}

/** The native assembler for these options, or undefined where only the JS path applies. */
export function ndjsonAssembler(o: NdjsonSourceOptions): ChunkAssembler | undefined {
  const format = o.decode === decodeCriLine ? 0 : o.decode === decodeRawLine ? 1 : undefined;
  // A "content" tag would replace the content field (ndjsonBuffer skips fields named as tags).
  // BERTH_COLLECTOR_NATIVE=0: the JS path (benchmarks, or a fault in the addon).
  if (
    process.env["BERTH_COLLECTOR_NATIVE"] === "0" ||
    format === undefined ||
    o.multiline ||
    "content" in o.tags
  )
    return undefined;
  const lib = loadAddon();
  if (!lib) return undefined;
  const suffix = tagsSuffix(o.tags);
  const skip = (o.ignoreStdout ? 1 : 0) | (o.ignoreStderr ? 2 : 0);
  const info = new Float64Array(4);
  const keep = (r: LogRecord) =>
    !((o.ignoreStdout && r.source === "stdout") || (o.ignoreStderr && r.source === "stderr"));
  return (chunk, force) => {
    const out = lib.logNdjson(chunk, format, force, o.maxRecordBytes, suffix, skip, Date.now(), info);
    if (out) {
      return {
        records: [],
        consumed: info[0]!,
        pending: info[3] === 1,
        ndjson: { ndjson: out, count: info[1]!, contentUnits: info[2]! },
      };
    }
    const r = assemble(chunk, { decode: o.decode, maxRecordBytes: o.maxRecordBytes, force });
    const records = r.records.filter(keep);
    let units = 0;
    for (const rec of records) {
      rec.tags = o.tags;
      units += rec.fields["content"]?.length ?? 0;
    }
    return {
      records: [],
      consumed: r.consumed,
      pending: r.pending,
      ndjson: { ndjson: ndjsonBuffer(records), count: records.length, contentUnits: units },
    };
  };
}
