/**
 * iLogtail's native processors, each a function from a batch of records to a batch: parse
 * (regex, JSON, delimiter), timestamp, filter and desensitize. Multiline merging
 * (processor_merge_multiline_log_native) happens where lines are assembled, in the reader, so
 * that a checkpoint never splits a record; the pipeline hands it there.
 */
import { createHash } from "node:crypto";
import type { MultilineOptions } from "./assembler.js";
import type { Schema } from "./config.js";
import { compile } from "./filters.js";
import type { LogRecord } from "./record.js";
import { compileTimeFormat, parseTimezone } from "./timestamp.js";

export interface Processor {
  process(records: LogRecord[]): LogRecord[];
}

const KEEP = {
  KeepingSourceWhenParseFail: { type: "bool" },
  KeepingSourceWhenParseSucceed: { type: "bool" },
  RenamedSourceKey: { type: "string" },
} as const satisfies Schema;

export const MULTILINE_SCHEMA = {
  Mode: { type: "string" },
  StartPattern: { type: "string" },
  ContinuePattern: { type: "string" },
  EndPattern: { type: "string" },
  UnmatchedContentTreatment: { type: "string" },
} as const satisfies Schema;

export const PROCESSOR_SCHEMAS: Record<string, Schema> = {
  processor_parse_regex_native: {
    SourceKey: { type: "string" },
    Regex: { type: "string", required: true },
    Keys: { type: "strings", required: true },
    ...KEEP,
  },
  processor_parse_json_native: { SourceKey: { type: "string" }, ...KEEP },
  processor_parse_delimiter_native: {
    SourceKey: { type: "string" },
    Separator: { type: "string", required: true },
    Quote: { type: "string" },
    Keys: { type: "strings", required: true },
    AllowingShortenedFields: { type: "bool" },
    OverflowedFieldsTreatment: { type: "string" },
    ...KEEP,
  },
  processor_parse_timestamp_native: {
    SourceKey: { type: "string", required: true },
    SourceFormat: { type: "string", required: true },
    SourceTimezone: { type: "string" },
  },
  processor_filter_regex_native: { Include: { type: "map" }, Exclude: { type: "map" } },
  processor_desensitize_native: {
    SourceKey: { type: "string", required: true },
    Method: { type: "string", required: true },
    ReplacingString: { type: "string" },
    ContentPatternBeforeReplacedString: { type: "string", required: true },
    ReplacedContentPattern: { type: "string", required: true },
    ReplacingAll: { type: "bool" },
  },
  processor_merge_multiline_log_native: {
    MergeType: { type: "string" },
    ...MULTILINE_SCHEMA,
  },
};

type Params = Record<string, unknown>;
const str = (p: Params, k: string, d = "") => (typeof p[k] === "string" ? (p[k] as string) : d);
const bool = (p: Params, k: string, d: boolean) => (typeof p[k] === "boolean" ? (p[k] as boolean) : d);
const strs = (p: Params, k: string) => (Array.isArray(p[k]) ? (p[k] as string[]) : []);

/** A parser: the source field → parsed fields, or undefined when it does not parse. */
type Parse = (value: string) => Array<[string, string]> | undefined;

function parser(p: Params, parse: Parse): Processor {
  const sourceKey = str(p, "SourceKey", "content");
  const keepFail = bool(p, "KeepingSourceWhenParseFail", false);
  const keepOk = bool(p, "KeepingSourceWhenParseSucceed", false);
  const renamed = str(p, "RenamedSourceKey", sourceKey);
  return {
    process(records) {
      const out: LogRecord[] = [];
      for (const r of records) {
        const value = r.fields[sourceKey];
        if (value === undefined) {
          out.push(r);
          continue;
        }
        const parsed = parse(value);
        if (!parsed) {
          if (!keepFail) delete r.fields[sourceKey];
        } else {
          delete r.fields[sourceKey];
          if (keepOk) r.fields[renamed] = value;
          for (const [k, v] of parsed) r.fields[k] = v;
        }
        if (Object.keys(r.fields).length > 0) out.push(r);
      }
      return out;
    },
  };
}

function regexParser(p: Params): Processor {
  const re = compile(`^(?:${str(p, "Regex")})$`, "Regex", "s");
  const keys = strs(p, "Keys");
  return parser(p, (v) => {
    const m = re.exec(v);
    if (!m) return undefined;
    const fields: Array<[string, string]> = [];
    keys.forEach((k, i) => {
      const g = m[i + 1];
      if (g !== undefined) fields.push([k, g]);
    });
    return fields;
  });
}

function jsonParser(p: Params): Processor {
  return parser(p, (v) => {
    let o: unknown;
    try {
      o = JSON.parse(v);
    } catch {
      return undefined;
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) return undefined;
    return Object.entries(o).map(([k, x]) => [k, typeof x === "string" ? x : JSON.stringify(x)]);
  });
}

/** Splits on `sep` (any length); with a quote char, quoted fields may hold it ("" escapes). */
export function splitDelimited(line: string, sep: string, quote: string): string[] | undefined {
  if (!quote) return line.split(sep);
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line.startsWith(quote, i)) {
      let v = "";
      let j = i + quote.length;
      for (;;) {
        const q = line.indexOf(quote, j);
        if (q < 0) return undefined;
        v += line.slice(j, q);
        if (line.startsWith(quote, q + quote.length)) {
          v += quote;
          j = q + 2 * quote.length;
          continue;
        }
        j = q + quote.length;
        break;
      }
      out.push(v);
      if (j === line.length) return out;
      if (!line.startsWith(sep, j)) return undefined;
      i = j + sep.length;
    } else {
      const s = line.indexOf(sep, i);
      if (s < 0) {
        out.push(line.slice(i));
        return out;
      }
      out.push(line.slice(i, s));
      i = s + sep.length;
    }
  }
}

function delimiterParser(p: Params): Processor {
  const sep = str(p, "Separator").replace(/^\\t$/, "\t");
  if (sep === "") throw new Error("Separator: must not be empty");
  const quote = str(p, "Quote", '"');
  const keys = strs(p, "Keys");
  const shortened = bool(p, "AllowingShortenedFields", true);
  const overflow = str(p, "OverflowedFieldsTreatment", "extend");
  if (!["extend", "keep", "discard"].includes(overflow)) {
    throw new Error(
      `OverflowedFieldsTreatment: want extend, keep or discard, got ${JSON.stringify(overflow)}`,
    );
  }
  return parser(p, (v) => {
    const cols = splitDelimited(v, sep, quote);
    if (!cols || (cols.length < keys.length && !shortened)) return undefined;
    const fields: Array<[string, string]> = [];
    for (let i = 0; i < cols.length; i++) {
      const k = keys[i];
      if (k !== undefined) {
        if (i === keys.length - 1 && overflow === "keep" && cols.length > keys.length) {
          fields.push([k, cols.slice(i).join(sep)]);
          break;
        }
        fields.push([k, cols[i]!]);
      } else if (overflow === "extend") fields.push([`__column${i}__`, cols[i]!]);
    }
    return fields;
  });
}

function timestampProcessor(p: Params): Processor {
  const key = str(p, "SourceKey");
  const parse = compileTimeFormat(str(p, "SourceFormat"), parseTimezone(str(p, "SourceTimezone")));
  return {
    process(records) {
      for (const r of records) {
        const v = r.fields[key];
        const t = v === undefined ? undefined : parse(v);
        if (t !== undefined) r.timeNs = t;
      }
      return records;
    },
  };
}

function filterProcessor(p: Params): Processor {
  const rules = (k: string) =>
    Object.entries((p[k] as Record<string, string> | undefined) ?? {}).map(
      ([f, re]) => [f, compile(`^(?:${re})$`, `${k}.${f}`, "s")] as const,
    );
  const include = rules("Include");
  const exclude = rules("Exclude");
  return {
    process(records) {
      return records.filter((r) => {
        for (const [f, re] of exclude) {
          const v = r.fields[f];
          if (v !== undefined && re.test(v)) return false;
        }
        for (const [f, re] of include) {
          const v = r.fields[f];
          if (v === undefined || !re.test(v)) return false;
        }
        return true;
      });
    },
  };
}

function desensitizeProcessor(p: Params): Processor {
  const key = str(p, "SourceKey");
  const method = str(p, "Method");
  if (method !== "const" && method !== "md5")
    throw new Error(`Method: want const or md5, got ${JSON.stringify(method)}`);
  const replacing = str(p, "ReplacingString");
  if (method === "const" && !p["ReplacingString"])
    throw new Error("ReplacingString: required with Method const");
  const all = bool(p, "ReplacingAll", true);
  const re = compile(
    `(?<berthBefore>${str(p, "ContentPatternBeforeReplacedString")})(?<berthValue>${str(p, "ReplacedContentPattern")})`,
    "ContentPatternBeforeReplacedString/ReplacedContentPattern",
    all ? "g" : "",
  );
  const replace = (...args: unknown[]) => {
    const groups = args[args.length - 1] as Record<string, string>;
    const value = groups["berthValue"] ?? "";
    const repl = method === "md5" ? createHash("md5").update(value).digest("hex") : replacing;
    return `${groups["berthBefore"] ?? ""}${repl}`;
  };
  return {
    process(records) {
      for (const r of records) {
        const v = r.fields[key];
        if (v !== undefined) r.fields[key] = v.replace(re, replace);
      }
      return records;
    },
  };
}

const FACTORIES: Record<string, (p: Params) => Processor> = {
  processor_parse_regex_native: regexParser,
  processor_parse_json_native: jsonParser,
  processor_parse_delimiter_native: delimiterParser,
  processor_parse_timestamp_native: timestampProcessor,
  processor_filter_regex_native: filterProcessor,
  processor_desensitize_native: desensitizeProcessor,
};

/** Builds a processor (not the multiline one, which the pipeline moves into its reader). */
export function createProcessor(type: string, params: Params): Processor {
  const f = FACTORIES[type];
  if (!f) throw new Error(`${type} cannot run as a processor here`);
  return f(params);
}

/**
 * Multiline options from an input's `Multiline` or processor_merge_multiline_log_native:
 * patterns match whole lines (as iLogtail's regex_match does).
 */
export function multilineOptions(p: Params | undefined): MultilineOptions | undefined {
  if (!p) return undefined;
  const mode = str(p, "Mode", "custom");
  if (mode !== "custom") throw new Error(`Mode: only "custom" is supported, got ${JSON.stringify(mode)}`);
  const mergeType = str(p, "MergeType", "regex");
  if (mergeType !== "regex")
    throw new Error(`MergeType: only "regex" is supported, got ${JSON.stringify(mergeType)}`);
  const unmatched = str(p, "UnmatchedContentTreatment", "single_line");
  if (unmatched !== "single_line" && unmatched !== "discard") {
    throw new Error(
      `UnmatchedContentTreatment: want single_line or discard, got ${JSON.stringify(unmatched)}`,
    );
  }
  const pat = (k: string) => (str(p, k) ? compile(`^(?:${str(p, k)})$`, k, "s") : undefined);
  const ml: MultilineOptions = {
    start: pat("StartPattern"),
    continue: pat("ContinuePattern"),
    end: pat("EndPattern"),
    unmatched,
  };
  if (!ml.start && !ml.end) {
    if (ml.continue) throw new Error("ContinuePattern: needs StartPattern or EndPattern");
    return undefined;
  }
  return ml;
}
