/**
 * PodSandboxConfig / ContainerConfig JSON files as crictl reads them: proto field names in
 * either spelling (`log_directory` or `logDirectory`), enums by name or number, 64-bit
 * integers as numbers or strings. An unknown key is an error naming it (with its path).
 */
import {
  ContainerConfig,
  MountPropagation,
  NamespaceMode,
  PodSandboxConfig,
  Protocol,
  SecurityProfile_ProfileType,
} from "../api/gen/runtime/v1/api.js";
import { UsageError } from "./errors.js";

const camel = (k: string) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

const ENUM_NAMES: Record<string, number> = {};
for (const e of [NamespaceMode, Protocol, MountPropagation, SecurityProfile_ProfileType]) {
  for (const [k, v] of Object.entries(e)) if (typeof v === "number") ENUM_NAMES[k] = v;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

type Build = (partial: unknown) => unknown;

function scalar(v: unknown, like: unknown, path: string, file: string): unknown {
  const bad = (want: string) =>
    new UsageError(`${file}: "${path}" must be ${want}, not ${JSON.stringify(v)}`);
  if (typeof like === "bigint") {
    if ((typeof v === "number" && Number.isInteger(v)) || (typeof v === "string" && /^-?\d+$/.test(v)))
      return BigInt(v);
    throw bad("an integer");
  }
  if (typeof like === "number") {
    if (typeof v === "number") return v;
    if (typeof v === "string" && v in ENUM_NAMES) return ENUM_NAMES[v];
    throw bad("a number or an enum name");
  }
  if (typeof like === "boolean") {
    if (typeof v === "boolean") return v;
    throw bad("true or false");
  }
  if (typeof like === "string") {
    if (typeof v === "string") return v;
    throw bad("a string");
  }
  return v;
}

/** Normalises `input` for the message `build` makes, checking every key on the way down. */
function normalize(input: unknown, build: Build, path: string, file: string): Record<string, unknown> {
  if (!isObject(input)) throw new UsageError(`${file}: "${path || "."}" must be an object`);
  const base = build({}) as Record<string, unknown>;
  if (Object.keys(base).length === 0) {
    // a map (labels, annotations, sysctls…): keys are data, values strings
    for (const [k, v] of Object.entries(input))
      if (typeof v !== "string") throw new UsageError(`${file}: "${path}${k}" must be a string`);
    return input;
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(input)) {
    const field = key in base ? key : camel(key) in base ? camel(key) : undefined;
    if (field === undefined) throw new UsageError(`${file}: unknown key "${path}${key}"`);
    if (v === null) continue;
    const sub: Build = (p) => (build({ [field]: p }) as Record<string, unknown>)[field];
    const like = base[field];
    if (Array.isArray(v)) {
      if (!Array.isArray(like)) throw new UsageError(`${file}: "${path}${key}" must not be a list`);
      const elem: Build = (p) => (sub([p]) as unknown[])[0];
      out[field] = v.map((e, i) => (isObject(e) ? normalize(e, elem, `${path}${key}[${i}].`, file) : e));
    } else if (isObject(v)) {
      if (like !== undefined && !isObject(like))
        throw new UsageError(`${file}: "${path}${key}" must not be an object`);
      out[field] = normalize(v, sub, `${path}${key}.`, file);
    } else out[field] = scalar(v, like, `${path}${key}`, file);
  }
  return out;
}

export function podConfigFromJson(json: unknown, file: string): PodSandboxConfig {
  return PodSandboxConfig.fromPartial(
    normalize(json, (p) => PodSandboxConfig.fromPartial(p as object), "", file) as object,
  );
}

export function containerConfigFromJson(json: unknown, file: string): ContainerConfig {
  return ContainerConfig.fromPartial(
    normalize(json, (p) => ContainerConfig.fromPartial(p as object), "", file) as object,
  );
}
