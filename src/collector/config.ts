/**
 * iLogtail pipeline configs: one YAML file per pipeline with `inputs`, optional `processors`
 * and `flushers`, each a list of `{Type: …, <params>}`. Every plugin declares its parameters;
 * an unknown type, an unknown key or a value of the wrong type is a ConfigError naming the
 * file, the plugin and the key.
 */
import { basename, extname } from "node:path";
import { parse as parseYaml } from "yaml";

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly where: string,
    message: string,
  ) {
    super(`${file}: ${where ? `${where}: ` : ""}${message}`);
    this.name = "ConfigError";
  }
}

export type Param =
  | { type: "string" | "bool" | "int" | "number" | "strings" | "map" | "any"; required?: boolean }
  | { type: "object"; schema: Schema; required?: boolean };
export type Schema = Record<string, Param>;

export type PluginKind = "input" | "processor" | "flusher";

export interface PluginSpec {
  type: string;
  /** Where it is in the file, for messages: `inputs[0] (input_container_stdio)`. */
  where: string;
  params: Record<string, unknown>;
}

export interface PipelineConfig {
  name: string;
  file: string;
  inputs: PluginSpec[];
  processors: PluginSpec[];
  flushers: PluginSpec[];
}

const SECTIONS: Array<[string, PluginKind]> = [
  ["inputs", "input"],
  ["processors", "processor"],
  ["flushers", "flusher"],
];

/** Parses and validates one pipeline file against the plugin schemas; null when disabled. */
export function parsePipeline(
  file: string,
  text: string,
  schemas: Record<PluginKind, Record<string, Schema>>,
): PipelineConfig | null {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(file, "", `not valid YAML: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new ConfigError(file, "", "want a mapping with inputs and flushers");
  for (const key of Object.keys(doc)) {
    if (!["enable", "inputs", "processors", "aggregators", "flushers", "global"].includes(key)) {
      throw new ConfigError(file, key, "unknown top-level key");
    }
  }
  if (doc["enable"] === false) return null;
  if (
    doc["aggregators"] !== undefined &&
    !(Array.isArray(doc["aggregators"]) && doc["aggregators"].length === 0)
  ) {
    throw new ConfigError(file, "aggregators", "aggregators are not supported");
  }
  const out: PipelineConfig = {
    name: basename(file, extname(file)),
    file,
    inputs: [],
    processors: [],
    flushers: [],
  };
  for (const [section, kind] of SECTIONS) {
    const list = doc[section];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw new ConfigError(file, section, "want a list of plugins");
    const specs = list.map((item: unknown, i: number) =>
      plugin(file, `${section}[${i}]`, item, schemas[kind]),
    );
    out[section as "inputs"] = specs;
  }
  if (out.inputs.length === 0) throw new ConfigError(file, "inputs", "at least one input is needed");
  if (out.flushers.length === 0) throw new ConfigError(file, "flushers", "at least one flusher is needed");
  return out;
}

function plugin(file: string, at: string, item: unknown, known: Record<string, Schema>): PluginSpec {
  if (!isObject(item)) throw new ConfigError(file, at, "want a mapping with Type");
  const type = item["Type"];
  if (typeof type !== "string") throw new ConfigError(file, at, "Type is missing");
  const schema = known[type];
  const where = `${at} (${type})`;
  if (!schema) {
    throw new ConfigError(
      file,
      where,
      `unknown plugin type "${type}" (known: ${Object.keys(known).join(", ")})`,
    );
  }
  const params = { ...item };
  delete params["Type"];
  check(file, where, "", params, schema);
  return { type, where, params };
}

function check(
  file: string,
  where: string,
  prefix: string,
  obj: Record<string, unknown>,
  schema: Schema,
): void {
  for (const [key, value] of Object.entries(obj)) {
    const p = schema[key];
    const name = `${prefix}${key}`;
    if (!p) {
      throw new ConfigError(
        file,
        where,
        `unknown parameter "${name}" (known: ${Object.keys(schema).join(", ")})`,
      );
    }
    const bad = (want: string) =>
      new ConfigError(file, where, `parameter "${name}": want ${want}, got ${JSON.stringify(value)}`);
    switch (p.type) {
      case "string":
        if (typeof value !== "string") throw bad("a string");
        break;
      case "bool":
        if (typeof value !== "boolean") throw bad("true or false");
        break;
      case "int":
        if (!Number.isInteger(value)) throw bad("an integer");
        break;
      case "number":
        if (typeof value !== "number") throw bad("a number");
        break;
      case "strings":
        if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
          throw bad("a list of strings");
        break;
      case "map":
        if (!isObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
          throw bad("a mapping of strings to strings");
        }
        break;
      case "object":
        if (!isObject(value)) throw bad("a mapping");
        check(file, where, `${name}.`, value, p.schema);
        break;
      case "any":
        break;
    }
  }
  for (const [key, p] of Object.entries(schema)) {
    if (p.required && obj[key] === undefined) {
      throw new ConfigError(file, where, `parameter "${prefix}${key}" is required`);
    }
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
