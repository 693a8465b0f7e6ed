/**
 * Reads CPU, memory and pids accounting of a cgroup (v1 or v2), the way containerd's CRI plugin
 * and cAdvisor do:
 *
 *  - CPU: v1 `cpuacct.usage` (ns); v2 `cpu.stat` `usage_usec` × 1000.
 *  - Memory: v1 `memory.usage_in_bytes` and `memory.stat` total_* fields (hierarchical);
 *    v2 `memory.current` and `memory.stat` (always hierarchical). Working set = usage −
 *    inactive file pages (never below zero); RSS = v1 total_rss, v2 anon (as cAdvisor).
 *    Available = limit − working set, only when a limit is set.
 *  - Pids: `pids.current`.
 *
 * Parsers are pure; file access is async and tolerant of a cgroup vanishing under us (the
 * container exited): such values come back undefined, never as an exception.
 */
import { access, readFile, statfs } from "node:fs/promises";
import { join, posix } from "node:path";
import { errnoCode } from "../common/errors.js";

export type CgroupVersion = 1 | 2;

/** statfs(2) f_type of a cgroup2 mount. */
export const CGROUP2_SUPER_MAGIC = 0x63677270;

export const CGROUP_ROOT = "/sys/fs/cgroup";

/** Controllers whose files we read. */
export type StatsController = "cpuacct" | "memory" | "pids";

// ---------------------------------------------------------------------------------------------
// Pure parsers
// ---------------------------------------------------------------------------------------------

/** A process's cgroup membership, from `/proc/<pid>/cgroup`. */
export interface ProcCgroups {
  /** v1 hierarchies: controller (or `name=…`) → path; co-mounted controllers each get an entry. */
  v1: Map<string, string>;
  /** The v2 (unified) path, from the `0::/path` line. */
  unified?: string;
}

/** Parses `/proc/<pid>/cgroup`: v1 lines `N:ctrl[,ctrl]:/path`, the v2 line `0::/path`. */
export function parseProcCgroup(text: string): ProcCgroups {
  const out: ProcCgroups = { v1: new Map() };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const first = line.indexOf(":");
    const second = first < 0 ? -1 : line.indexOf(":", first + 1);
    if (second < 0) continue;
    const hierarchy = line.slice(0, first);
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1); // a path may itself contain ':'
    if (hierarchy === "0" && controllers === "") {
      out.unified = path;
      continue;
    }
    for (const c of controllers.split(",")) if (c !== "") out.v1.set(c, path);
  }
  return out;
}

/** One cgroup filesystem mount: its mount point and the cgroup it exposes as its root. */
export interface CgroupMount {
  mountpoint: string;
  root: string;
}

export interface CgroupMounts {
  /** v1 controller (or `name=…`) → mount. */
  v1: Map<string, CgroupMount>;
  unified?: CgroupMount;
}

/** Undoes mountinfo's octal escapes (`\040` for a space, …). */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/**
 * Parses `/proc/self/mountinfo` for cgroup mounts:
 * `id parent maj:min root mountpoint opts [optional…] - fstype source superopts`.
 */
export function parseCgroupMounts(mountinfo: string): CgroupMounts {
  const out: CgroupMounts = { v1: new Map() };
  for (const line of mountinfo.split("\n")) {
    const fields = line.split(" ");
    const sep = fields.indexOf("-");
    if (sep < 6) continue;
    const fstype = fields[sep + 1];
    const root = fields[3];
    const mountpoint = fields[4];
    if (root === undefined || mountpoint === undefined) continue;
    const m: CgroupMount = { root: unescapeMountinfo(root), mountpoint: unescapeMountinfo(mountpoint) };
    if (fstype === "cgroup2") {
      // Several cgroup2 mounts (bind mounts): the first is as good as any; prefer the usual place.
      if (out.unified === undefined || m.mountpoint === CGROUP_ROOT) out.unified = m;
    } else if (fstype === "cgroup") {
      const superOpts = (fields[sep + 3] ?? "").split(",");
      for (const o of superOpts) {
        if (o === "rw" || o === "ro" || o.startsWith("release_agent=") || o === "clone_children") continue;
        if (o === "xattr" || o === "noprefix" || o === "cpuset_v2_mode" || o === "favordynmods") continue;
        if (!out.v1.has(o)) out.v1.set(o, m);
      }
    }
  }
  return out;
}

/** Joins a cgroup path onto a mount, stripping the mount's own root when it is a prefix. */
export function cgroupDir(mount: CgroupMount, path: string): string {
  const clean = (p: string) => posix.normalize(`/${p}`).replace(/(.)\/+$/, "$1");
  let rel = clean(path);
  const root = clean(mount.root);
  if (root !== "/" && (rel === root || rel.startsWith(`${root}/`))) rel = rel.slice(root.length) || "/";
  return rel === "/" ? clean(mount.mountpoint) : join(mount.mountpoint, rel);
}

/** Parses a flat-keyed file (`memory.stat`, `cpu.stat`): `key value` per line. */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split("\n")) {
    const [k, v, extra] = line.trim().split(/\s+/);
    if (k === undefined || k === "" || v === undefined || extra !== undefined) continue;
    const n = parseUint(v);
    if (n !== undefined) out.set(k, n);
  }
  return out;
}

function parseUint(s: string): bigint | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  return BigInt(s);
}

/**
 * Parses a single-value file (`cpuacct.usage`, `memory.current`, `pids.current`, limits).
 * `max` (v2 "no limit") and anything unparsable come back undefined.
 */
export function parseSingleValue(text: string): bigint | undefined {
  return parseUint(text.trim());
}

/**
 * Limits above 2^62 mean "unlimited": v1 reports PAGE_COUNTER_MAX rounded to pages
 * (9223372036854771712), v2 writes `max`. Same cut-off as containerd and cAdvisor.
 */
export const UNLIMITED_THRESHOLD = 1n << 62n;

export function isUnlimited(limit: bigint | undefined): boolean {
  return limit === undefined || limit > UNLIMITED_THRESHOLD;
}

export interface MemorySample {
  usageBytes: bigint;
  workingSetBytes: bigint;
  rssBytes: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
  /** The cgroup's limit; undefined when unlimited. */
  limitBytes?: bigint;
  /** limit − working set (≥ 0); undefined when unlimited. */
  availableBytes?: bigint;
}

function workingSet(usage: bigint, inactiveFile: bigint): bigint {
  return inactiveFile < usage ? usage - inactiveFile : 0n;
}

function withLimit(m: Omit<MemorySample, "limitBytes" | "availableBytes">, limit: bigint | undefined) {
  const out: MemorySample = { ...m };
  if (limit !== undefined && !isUnlimited(limit)) {
    out.limitBytes = limit;
    out.availableBytes = limit > m.workingSetBytes ? limit - m.workingSetBytes : 0n;
  }
  return out;
}

/** v1: `memory.usage_in_bytes`, `memory.limit_in_bytes` and `memory.stat` (total_* fields). */
export function memoryFromV1(
  usageText: string,
  statText: string,
  limitText?: string,
): MemorySample | undefined {
  const usage = parseSingleValue(usageText);
  if (usage === undefined) return undefined;
  const stat = parseFlatKeyed(statText);
  const get = (k: string) => stat.get(`total_${k}`) ?? stat.get(k) ?? 0n;
  return withLimit(
    {
      usageBytes: usage,
      workingSetBytes: workingSet(usage, get("inactive_file")),
      rssBytes: get("rss"),
      pageFaults: get("pgfault"),
      majorPageFaults: get("pgmajfault"),
    },
    limitText === undefined ? undefined : parseSingleValue(limitText),
  );
}

/** v2: `memory.current`, `memory.max` and `memory.stat` (anon, inactive_file, pgfault, pgmajfault). */
export function memoryFromV2(
  currentText: string,
  statText: string,
  maxText?: string,
): MemorySample | undefined {
  const usage = parseSingleValue(currentText);
  if (usage === undefined) return undefined;
  const stat = parseFlatKeyed(statText);
  const get = (k: string) => stat.get(k) ?? 0n;
  return withLimit(
    {
      usageBytes: usage,
      workingSetBytes: workingSet(usage, get("inactive_file")),
      rssBytes: get("anon"),
      pageFaults: get("pgfault"),
      majorPageFaults: get("pgmajfault"),
    },
    maxText === undefined ? undefined : parseSingleValue(maxText),
  );
}

/** v2 `cpu.stat` → cumulative CPU time in ns (usage_usec × 1000). */
export function cpuUsageFromV2(cpuStatText: string): bigint | undefined {
  const us = parseFlatKeyed(cpuStatText).get("usage_usec");
  return us === undefined ? undefined : us * 1000n;
}

// ---------------------------------------------------------------------------------------------
// File access
// ---------------------------------------------------------------------------------------------

/** errno codes meaning "the process or cgroup is gone", not a failure. */
const GONE = new Set(["ENOENT", "ESRCH", "ENODEV", "ENOTDIR", "EINVAL"]);

/** Reads a small file; undefined when it (or its process/cgroup) no longer exists. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = errnoCode(err);
    if (code !== undefined && GONE.has(code)) return undefined;
    throw err;
  }
}

const versionCache = new Map<string, Promise<CgroupVersion>>();

/**
 * v2 when `root` is a cgroup2 mount (pure unified mode), else v1 (legacy or hybrid: a v2
 * hierarchy at <root>/unified without controllers does not count). Falls back to the presence
 * of `<root>/cgroup.controllers` when statfs is not conclusive. Cached per root.
 */
export function detectCgroupVersion(root = CGROUP_ROOT): Promise<CgroupVersion> {
  let p = versionCache.get(root);
  if (p === undefined) {
    p = (async (): Promise<CgroupVersion> => {
      try {
        if (Number((await statfs(root)).type) === CGROUP2_SUPER_MAGIC) return 2;
      } catch {
        // fall through to the file probe
      }
      try {
        await access(join(root, "cgroup.controllers"));
        return 2;
      } catch {
        return 1;
      }
    })();
    versionCache.set(root, p);
  }
  return p;
}

let mountsCache: Promise<CgroupMounts> | undefined;

/** The host's cgroup mounts (read once from /proc/self/mountinfo; cgroup mounts do not move). */
export function cgroupMounts(): Promise<CgroupMounts> {
  mountsCache ??= readFile("/proc/self/mountinfo", "utf8").then(parseCgroupMounts, () => ({
    v1: new Map<string, CgroupMount>(),
  }));
  return mountsCache;
}

/** Absolute directories of one cgroup, per controller we read. */
export interface CgroupPaths {
  version: CgroupVersion;
  cpuacct?: string;
  memory?: string;
  pids?: string;
}

const CONTROLLERS: readonly StatsController[] = ["cpuacct", "memory", "pids"];

function v1Mount(mounts: CgroupMounts, controller: StatsController): CgroupMount {
  // Fallback: the conventional /sys/fs/cgroup/<controller> (a symlink when co-mounted).
  return mounts.v1.get(controller) ?? { mountpoint: join(CGROUP_ROOT, controller), root: "/" };
}

/**
 * Directories of the cgroup at `path` (a cgroupfs path such as a pod's cgroup_parent, or a
 * container's cgroupsPath) under every controller we read. Does not check that they exist.
 */
export async function cgroupPathsOf(path: string): Promise<CgroupPaths> {
  const version = await detectCgroupVersion();
  const mounts = await cgroupMounts();
  if (version === 2) {
    const dir = cgroupDir(mounts.unified ?? { mountpoint: CGROUP_ROOT, root: "/" }, path);
    return { version, cpuacct: dir, memory: dir, pids: dir };
  }
  const out: CgroupPaths = { version };
  for (const c of CONTROLLERS) out[c] = cgroupDir(v1Mount(mounts, c), path);
  return out;
}

/**
 * A process's cgroup directories; undefined when the process is gone (or pid ≤ 0). A controller
 * where the process sits in the root cgroup is left out: that is the whole host's accounting.
 */
export async function cgroupPathsOfPid(pid: number): Promise<CgroupPaths | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const text = await readOptional(`/proc/${pid}/cgroup`);
  if (text === undefined) return undefined;
  const parsed = parseProcCgroup(text);
  const version = await detectCgroupVersion();
  const mounts = await cgroupMounts();
  if (version === 2) {
    if (parsed.unified === undefined || parsed.unified === "/") return undefined;
    const dir = cgroupDir(mounts.unified ?? { mountpoint: CGROUP_ROOT, root: "/" }, parsed.unified);
    return { version, cpuacct: dir, memory: dir, pids: dir };
  }
  const out: CgroupPaths = { version };
  for (const c of CONTROLLERS) {
    const p = parsed.v1.get(c);
    if (p !== undefined && p !== "/") out[c] = cgroupDir(v1Mount(mounts, c), p);
  }
  return out;
}

/** One reading of a cgroup; a field is undefined when its controller or cgroup is missing. */
export interface CgroupSample {
  cpuUsageNs?: bigint;
  memory?: MemorySample;
  pidsCurrent?: bigint;
}

export async function readCpuUsageNs(paths: CgroupPaths): Promise<bigint | undefined> {
  if (paths.cpuacct === undefined) return undefined;
  if (paths.version === 2) {
    const text = await readOptional(join(paths.cpuacct, "cpu.stat"));
    return text === undefined ? undefined : cpuUsageFromV2(text);
  }
  const text = await readOptional(join(paths.cpuacct, "cpuacct.usage"));
  return text === undefined ? undefined : parseSingleValue(text);
}

export async function readMemory(paths: CgroupPaths): Promise<MemorySample | undefined> {
  const dir = paths.memory;
  if (dir === undefined) return undefined;
  const v2 = paths.version === 2;
  const [usage, stat, limit] = await Promise.all([
    readOptional(join(dir, v2 ? "memory.current" : "memory.usage_in_bytes")),
    readOptional(join(dir, "memory.stat")),
    readOptional(join(dir, v2 ? "memory.max" : "memory.limit_in_bytes")),
  ]);
  if (usage === undefined || stat === undefined) return undefined;
  return v2 ? memoryFromV2(usage, stat, limit) : memoryFromV1(usage, stat, limit);
}

export async function readPidsCurrent(paths: CgroupPaths): Promise<bigint | undefined> {
  if (paths.pids === undefined) return undefined;
  const text = await readOptional(join(paths.pids, "pids.current"));
  return text === undefined ? undefined : parseSingleValue(text);
}

/** CPU, memory and pids of one cgroup, read concurrently. */
export async function readCgroupStats(paths: CgroupPaths): Promise<CgroupSample> {
  const [cpuUsageNs, memory, pidsCurrent] = await Promise.all([
    readCpuUsageNs(paths),
    readMemory(paths),
    readPidsCurrent(paths),
  ]);
  const out: CgroupSample = {};
  if (cpuUsageNs !== undefined) out.cpuUsageNs = cpuUsageNs;
  if (memory !== undefined) out.memory = memory;
  if (pidsCurrent !== undefined) out.pidsCurrent = pidsCurrent;
  return out;
}
