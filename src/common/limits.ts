/**
 * Bounds on what a CRI request may carry, checked before anything is created. Kubernetes' own
 * limits where it has them (256 KiB of annotations per object, 63-character label values and
 * hostnames); elsewhere generous bounds that no real pod reaches but that keep one request from
 * taking the daemon's memory or every later List answer.
 */
import { invalidArgument } from "./errors.js";

export const LIMITS = {
  /** Total bytes of the keys and values of one labels or annotations map. */
  mapBytes: 256 * 1024,
  /** Entries of a labels or annotations map. */
  mapEntries: 4096,
  /** A name, namespace, uid, id or other short string. */
  nameBytes: 253,
  /** A path (log directory, mount path, working dir). */
  pathBytes: 4096,
  /** Items of a list (mounts, devices, ports, DNS entries, sysctls…). */
  listItems: 1024,
  /** Total bytes of a command line (command + args), as Linux's ARG_MAX order. */
  argvBytes: 1024 * 1024,
  /** Total bytes of the environment. */
  envBytes: 1024 * 1024,
} as const;

const hasControl = (s: string) => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
};

/** A short string: at most `max` bytes and no control characters (NUL, newline…). */
export function checkName(what: string, value: string, max: number = LIMITS.nameBytes): string {
  if (Buffer.byteLength(value) > max) throw invalidArgument(`${what} is longer than ${max} bytes`);
  if (hasControl(value))
    throw invalidArgument(`${what} ${JSON.stringify(value)} contains a control character`);
  return value;
}

/** A string that becomes a process argument or file content: no NUL. */
export function checkNoNul(what: string, value: string): string {
  if (value.includes("\0")) throw invalidArgument(`${what} contains a NUL byte`);
  return value;
}

export function checkList<T>(what: string, list: readonly T[], max: number = LIMITS.listItems): readonly T[] {
  if (list.length > max) throw invalidArgument(`${what}: ${list.length} items, at most ${max} allowed`);
  return list;
}

/** Labels and annotations: bounded in entries and bytes; keys non-empty, no NUL anywhere. */
export function checkStringMap(what: string, map: Readonly<Record<string, string>>): void {
  const entries = Object.entries(map);
  if (entries.length > LIMITS.mapEntries) {
    throw invalidArgument(`${what}: ${entries.length} entries, at most ${LIMITS.mapEntries} allowed`);
  }
  let bytes = 0;
  for (const [k, v] of entries) {
    if (k === "") throw invalidArgument(`${what}: empty key`);
    if (k.includes("\0") || v.includes("\0"))
      throw invalidArgument(`${what}: ${JSON.stringify(k)} contains a NUL byte`);
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (bytes > LIMITS.mapBytes) {
    throw invalidArgument(`${what}: ${bytes} bytes in total, at most ${LIMITS.mapBytes} allowed`);
  }
}
