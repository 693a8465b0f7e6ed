/**
 * CRI answers made readable: enum names instead of numbers, RFC 3339 times instead of
 * nanosecond counts, and the verbose `info` map's JSON strings parsed.
 */
import {
  ContainerState,
  MountPropagation,
  NamespaceMode,
  PodSandboxState,
  Protocol,
  SecurityProfile_ProfileType,
} from "../api/gen/runtime/v1/api.js";
import { plain } from "./output.js";

/** RFC 3339 with nanoseconds; undefined for 0 (never set). */
export function rfc3339(ns: bigint | number): string | undefined {
  const n = BigInt(ns);
  if (n <= 0n) return undefined;
  const iso = new Date(Number(n / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${(n % 1_000_000_000n).toString().padStart(9, "0")}Z`;
}

const enumName = (e: Record<string | number, string | number>, v: unknown) =>
  typeof v === "number" && typeof e[v] === "string" ? e[v] : v;

const TIME_KEYS = new Set(["createdAt", "startedAt", "finishedAt", "timestamp"]);
const NS_KEYS = new Set(["network", "pid", "ipc", "userns"]);

/** Walks a status object turning enums and times into names; `kind` decides what `state` means. */
export function humanize(value: unknown, kind: "pod" | "container", parent = ""): unknown {
  if (Array.isArray(value)) return value.map((v) => humanize(v, kind, parent));
  if (value instanceof Uint8Array || value === null || typeof value !== "object") return plain(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (TIME_KEYS.has(k) && (typeof v === "bigint" || typeof v === "number")) out[k] = rfc3339(v) ?? null;
    else if (k === "state") out[k] = enumName(kind === "pod" ? PodSandboxState : ContainerState, v);
    else if (k === "protocol") out[k] = enumName(Protocol, v);
    else if (k === "propagation") out[k] = enumName(MountPropagation, v);
    else if (k === "profileType") out[k] = enumName(SecurityProfile_ProfileType, v);
    else if (NS_KEYS.has(k) && (parent === "options" || parent === "namespaceOptions"))
      out[k] = enumName(NamespaceMode, v);
    else if (k === "info" && v && typeof v === "object") out[k] = parseInfo(v as Record<string, string>);
    else out[k] = humanize(v, kind, k);
  }
  return out;
}

/** The verbose info map with each JSON value parsed (kept as text when it is not JSON). */
export function parseInfo(info: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) {
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}
