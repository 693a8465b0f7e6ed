/**
 * Structured output for -o: JSON, YAML (a small emitter: maps, lists, scalars) and Go-template
 * style text (`{{.a.b}}`, `{{range .items}}…{{end}}`, `{{json .x}}`, `{{"\n"}}`).
 */
import { UsageError } from "./errors.js";

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

function lookup(data: unknown, path: string): unknown {
  if (path === ".") return data;
  let cur: unknown = data;
  for (const part of path.replace(/^\./, "").split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

type Node = { text: string } | { field: string; json: boolean } | { range: string; body: Node[] };

/** `\n` and `\t` typed in a shell argument, as Go's text (crictl users write them so). */
const unescapeText = (s: string) => s.replace(/\\n/g, "\n").replace(/\\t/g, "\t");

function parseTemplate(tpl: string): Node[] {
  const root: Node[] = [];
  const stack: Node[][] = [root];
  const re = /\{\{-?\s*([\s\S]*?)\s*-?\}\}/g;
  let last = 0;
  for (let m = re.exec(tpl); m; m = re.exec(tpl)) {
    const top = stack[stack.length - 1]!;
    if (m.index > last) top.push({ text: unescapeText(tpl.slice(last, m.index)) });
    last = m.index + m[0].length;
    const action = m[1] ?? "";
    const range = /^range\s+(\.\S*)$/.exec(action);
    const json = /^json\s+(\.\S*)$/.exec(action);
    const literal = /^"((?:[^"\\]|\\.)*)"$/.exec(action);
    if (range) {
      const body: Node[] = [];
      top.push({ range: range[1]!, body });
      stack.push(body);
    } else if (action === "end") {
      if (stack.length === 1) throw new UsageError("go-template: {{end}} without {{range}}");
      stack.pop();
    } else if (json) top.push({ field: json[1]!, json: true });
    else if (/^\.\S*$/.test(action)) top.push({ field: action, json: false });
    else if (literal) top.push({ text: JSON.parse(`"${literal[1]}"`) as string });
    else throw new UsageError(`go-template: unsupported action {{${action}}}`);
  }
  if (stack.length !== 1) throw new UsageError("go-template: {{range}} without {{end}}");
  if (last < tpl.length) root.push({ text: unescapeText(tpl.slice(last)) });
  return root;
}

function exec(nodes: Node[], data: unknown): string {
  let out = "";
  for (const n of nodes) {
    if ("text" in n) out += n.text;
    else if ("range" in n) {
      const items = lookup(data, n.range);
      const list = Array.isArray(items)
        ? items
        : items && typeof items === "object"
          ? Object.values(items)
          : [];
      for (const item of list) out += exec(n.body, item);
    } else {
      const v = lookup(data, n.field);
      out += n.json
        ? JSON.stringify(v)
        : v === undefined || v === null
          ? "<no value>"
          : typeof v === "object"
            ? JSON.stringify(v)
            : String(v);
    }
  }
  return out;
}

export function goTemplate(tpl: string, data: unknown): string {
  return exec(parseTemplate(tpl), plain(data));
}

export type Format = "table" | "wide" | "json" | "yaml" | { template: string };

/** The -o value, checked against what the command supports. */
export function outputFormat(o: unknown, allowed: string[]): Format {
  if (o === undefined) return "table";
  const s = String(o);
  const tpl = /^go-template=(.*)$/s.exec(s);
  if (tpl && allowed.includes("go-template")) return { template: tpl[1] ?? "" };
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
