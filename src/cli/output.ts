/**
 * Structured output for -o: JSON, YAML (a small emitter: maps, lists, scalars) and Go templates
 * (go-template.ts).
 */
import { UsageError } from "./errors.js";
import { executeTemplate } from "./go-template.js";

/** Plain data: bigints become numbers (strings beyond 2^53), Uint8Arrays base64. */
export function plain(value: unknown): unknown {
  if (typeof value === "bigint")
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out;
  }
  return value;
}

export function toJson(value: unknown): string {
  return JSON.stringify(plain(value), null, 2);
}

const yamlKey = (k: string) => (/^[A-Za-z_][\w./-]*$/.test(k) ? k : JSON.stringify(k));

function yamlScalar(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") {
    if (
      v === "" ||
      /^[\s-?:,[\]{}#&*!|>'"%@`]|[:#]\s|\s$|\n/.test(v) ||
      /^(true|false|null|~|[-+.\d].*)$/i.test(v)
    )
      return JSON.stringify(v);
    return v;
  }
  return String(v);
}

export function toYaml(value: unknown, indent = ""): string {
  const v = plain(value);
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return v
      .map((e) => {
        if (e && typeof e === "object" && Object.keys(e).length > 0) {
          const body = toYaml(e, `${indent}  `);
          return `${indent}- ${body.slice(indent.length + 2)}`;
        }
        return `${indent}- ${e && typeof e === "object" ? (Array.isArray(e) ? "[]" : "{}") : yamlScalar(e)}`;
      })
      .join("\n");
  }
  if (v && typeof v === "object") {
    const entries = Object.entries(v);
    if (entries.length === 0) return "{}";
    return entries
      .map(([k, e]) => {
        if (e && typeof e === "object" && (Array.isArray(e) ? e.length : Object.keys(e).length)) {
          const childIndent = Array.isArray(e) ? indent : `${indent}  `;
          return `${indent}${yamlKey(k)}:\n${toYaml(e, childIndent)}`;
        }
        const s = e && typeof e === "object" ? (Array.isArray(e) ? "[]" : "{}") : yamlScalar(e);
        return `${indent}${yamlKey(k)}: ${s}`;
      })
      .join("\n");
  }
  return `${indent}${yamlScalar(v)}`;
}

export function goTemplate(tpl: string, data: unknown): string {
  return executeTemplate(tpl, plain(data));
}

export type Format = "table" | "wide" | "json" | "yaml" | { template: string };

/** The -o value, checked against what the command supports. */
export function outputFormat(o: unknown, allowed: string[]): Format {
  if (o === undefined) return "table";
  const s = String(o);
  const tpl = /^go-template=(.*)$/s.exec(s);
  if (tpl && allowed.includes("go-template")) return { template: tpl[1] ?? "" };
  if (s === "go-template" && allowed.includes(s))
    throw new UsageError("-o go-template needs --template TEMPLATE (or -o go-template=TEMPLATE)");
  if (allowed.includes(s) && s !== "go-template") return s as Format;
  throw new UsageError(
    `unsupported output format "${s}": want ${allowed.map((a) => (a === "go-template" ? "go-template=TEMPLATE" : a)).join(", ")}`,
  );
}

/** Prints structured `data` in a non-table format; returns false for table/wide. */
export function printStructured(format: Format, data: unknown, out: (s: string) => void): boolean {
  if (format === "json") out(toJson(data));
  else if (format === "yaml") out(toYaml(data));
  else if (typeof format === "object") process.stdout.write(goTemplate(format.template, data));
  else return false;
  return true;
}
