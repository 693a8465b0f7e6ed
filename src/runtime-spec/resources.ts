/**
 * Cgroup resources, devices, oom_score_adj and sysctls of a container spec.
 */

import type { LinuxContainerResources } from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import { defaultDeviceRules, isNamespacedSysctl } from "./defaults.js";
import type { LinuxDevice, LinuxDeviceCgroup, LinuxResources } from "./types.js";

function num(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw invalidArgument(`${what} ${v} is out of range`);
  }
  return Number(v);
}

function nonNegative(v: bigint, what: string): number {
  if (v < 0n) throw invalidArgument(`${what} must not be negative`);
  return num(v, what);
}

/**
 * The oom_score_adj of the process: the requested value, raised to `min` (berthd's own score:
 * without CAP_SYS_RESOURCE a process cannot lower it, like containerd's restrict_oom_score_adj).
 */
export function clampOomScoreAdj(requested: bigint, min: number | undefined): number {
  const v = num(requested, "oom_score_adj");
  if (v < -1000 || v > 1000) throw invalidArgument(`oom_score_adj ${v} is outside [-1000, 1000]`);
  return min !== undefined && v < min ? min : v;
}

const PAGE_SIZE = /^[1-9]\d*[KMGTP]?B$/;
/** A cpuset list: "0-3,6,8-9". */
const CPUSET = /^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?){0,1023}$/;

function inRange(v: bigint, what: string, min: number, max: number): number {
  const n = num(v, what);
  if (n < min || n > max) throw invalidArgument(`${what} ${n} is outside [${min}, ${max}]`);
  return n;
}

/** -1 (unlimited) or a value the kernel takes: CFS quotas start at 1 ms. */
function cpuQuota(v: bigint): number {
  return v === -1n ? -1 : inRange(v, "cpu_quota", 1000, Number.MAX_SAFE_INTEGER);
}

function cpuset(v: string, what: string): string {
  if (!CPUSET.test(v)) throw invalidArgument(`${what} ${JSON.stringify(v)} is not a list like "0-3,6"`);
  return v;
}

/** -1 (unlimited) or a byte count. */
function swapLimit(v: bigint): number {
  return v === -1n ? -1 : nonNegative(v, "memory_swap_limit_in_bytes");
}

/** Cgroup resources (without devices) from the CRI request. */
export function buildResources(r: LinuxContainerResources | undefined): Omit<LinuxResources, "devices"> {
  const out: Omit<LinuxResources, "devices"> = {};
  if (!r) return out;
  const cpu: NonNullable<LinuxResources["cpu"]> = {};
  // The kernel's bounds: shares 2–262144, CFS period 1 ms–1 s.
  if (r.cpuShares !== 0n) cpu.shares = inRange(r.cpuShares, "cpu_shares", 2, 262144);
  if (r.cpuQuota !== 0n) cpu.quota = cpuQuota(r.cpuQuota);
  if (r.cpuPeriod !== 0n) cpu.period = inRange(r.cpuPeriod, "cpu_period", 1000, 1_000_000);
  if (r.cpusetCpus !== "") cpu.cpus = cpuset(r.cpusetCpus, "cpuset_cpus");
  if (r.cpusetMems !== "") cpu.mems = cpuset(r.cpusetMems, "cpuset_mems");
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  if (r.memoryLimitInBytes !== 0n) {
    const limit = nonNegative(r.memoryLimitInBytes, "memory_limit_in_bytes");
    // Memory and memory+swap equal by default: no swapping unless a swap limit is given.
    const swap = r.memorySwapLimitInBytes !== 0n ? swapLimit(r.memorySwapLimitInBytes) : limit;
    if (swap >= 0 && swap < limit)
      throw invalidArgument("memory_swap_limit_in_bytes is below memory_limit_in_bytes");
    out.memory = { limit, swap };
  } else if (r.memorySwapLimitInBytes !== 0n) {
    out.memory = { swap: swapLimit(r.memorySwapLimitInBytes) };
  }

  if (r.hugepageLimits.length > 0) {
    out.hugepageLimits = r.hugepageLimits.map((h) => {
      if (!PAGE_SIZE.test(h.pageSize))
        throw invalidArgument(`invalid hugepage size ${JSON.stringify(h.pageSize)}`);
      return { pageSize: h.pageSize, limit: nonNegative(h.limit, `hugepage limit ${h.pageSize}`) };
    });
  }
  const unified = Object.entries(r.unified);
  if (unified.length > 0) {
    for (const [k] of unified) {
      if (!/^[a-z][a-z0-9_.]{0,127}$/.test(k))
        throw invalidArgument(`invalid unified cgroup key ${JSON.stringify(k)}`);
    }
    out.unified = Object.fromEntries(unified);
  }
  return out;
}

/** A device of the request, stat'd on the host by the caller. */
export interface ResolvedDevice {
  /** Path inside the container. */
  path: string;
  type: "c" | "b";
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
  /** CRI permissions: a subset of "rwm" ("" → "rwm"). */
  permissions: string;
}

/**
 * Device nodes and device cgroup rules. Unprivileged: deny all, the standard devices, then each
 * requested device with its permissions. Privileged: every device allowed (the caller passes the
 * host's devices as `devices`).
 */
export function buildDevices(
  devices: readonly ResolvedDevice[],
  privileged: boolean,
): { devices: LinuxDevice[]; rules: LinuxDeviceCgroup[] } {
  const nodes: LinuxDevice[] = [];
  const rules: LinuxDeviceCgroup[] = privileged ? [{ allow: true, access: "rwm" }] : defaultDeviceRules();
  const paths = new Set<string>();
  for (const d of devices) {
    if (!d.path.startsWith("/"))
      throw invalidArgument(`device path ${JSON.stringify(d.path)} is not absolute`);
    if (d.type !== "c" && d.type !== "b")
      throw invalidArgument(`device ${d.path} has invalid type ${d.type}`);
    const access = d.permissions === "" ? "rwm" : d.permissions;
    if (!/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) {
      throw invalidArgument(`device ${d.path} has invalid permissions ${JSON.stringify(d.permissions)}`);
    }
    if (paths.has(d.path)) continue;
    paths.add(d.path);
    nodes.push({
      path: d.path,
      type: d.type,
      major: d.major,
      minor: d.minor,
      fileMode: d.fileMode,
      uid: d.uid,
      gid: d.gid,
    });
    if (!privileged) rules.push({ allow: true, type: d.type, major: d.major, minor: d.minor, access });
  }
  return { devices: nodes, rules };
}

/**
 * The pod's sysctls that may be applied to a container: namespaced ones only, and not the
 * network (ipc) ones when the pod uses the host's network (ipc) namespace.
 */
export function filterSysctls(
  sysctls: Readonly<Record<string, string>>,
  opts: { hostNetwork: boolean; hostIpc: boolean },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(sysctls)) {
    if (!isNamespacedSysctl(k)) continue;
    const n = k.replaceAll("/", ".");
    if (opts.hostNetwork && n.startsWith("net.")) continue;
    if (opts.hostIpc && !n.startsWith("net.")) continue;
    out[k] = v;
  }
  return out;
}
