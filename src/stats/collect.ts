/**
 * CRI stats of a container and of a pod sandbox, from cgroups, the writable layer and the pod's
 * network namespace. Field semantics follow containerd's CRI plugin (container_stats_list.go,
 * sandbox_stats_linux.go) so kubelet's CRI stats provider reads them as it reads containerd's.
 *
 * The caller adds the attributes (id, metadata, labels, annotations) and, for a pod, the
 * `containers` list. Nothing here throws because a process or cgroup vanished: a container that
 * is not running (pid 0, exited, cgroup removed) gets no cpu/memory, only its writable layer.
 */
import type {
  ContainerStats,
  CpuUsage,
  LinuxPodSandboxStats,
  MemoryUsage,
  ProcessUsage,
} from "../api/gen/runtime/v1/api.js";
import { epochNowNs } from "../common/time.js";
import {
  type CgroupPaths,
  type CgroupSample,
  cgroupPathsOf,
  cgroupPathsOfPid,
  type MemorySample,
  readCgroupStats,
} from "./cgroups.js";
import { type CpuRateCache, podRateKey } from "./cpu-rate.js";
import { type DirUsageCache, dirUsage } from "./fs-usage.js";
import { networkUsage, readPodNetDev } from "./network.js";

export type ContainerStatsBody = Omit<ContainerStats, "attributes">;
export type PodStatsBody = Omit<LinuxPodSandboxStats, "containers">;

export interface ContainerStatsInput {
  id: string;
  /** The container's init pid on the host; 0 (or a gone pid) when it is not running. */
  pid: number;
  /**
   * The container's cgroupfs path as given to runc (`<cgroup_parent>/berth-<id>`). When set it
   * is read instead of the init pid's /proc/<pid>/cgroup (immune to pid reuse after exit).
   */
  cgroupsPath?: string;
  /** The writable layer: `<root>/containers/<id>/upper`. */
  upperDir: string;
  /** FilesystemIdentifier.mountpoint of the writable layer (berthd's root). */
  mountpoint: string;
  /** Timestamp of this sample, ns since the epoch (default: now). */
  nowNs?: bigint;
  /** Keeps the previous CPU sample per container for usage_nano_cores. */
  rates: CpuRateCache;
  /** Shares/throttles writable-layer walks; without it the tree is walked every call. */
  fsUsage?: DirUsageCache;
}

function u64(value: bigint): { value: bigint } {
  return { value: value < 0n ? 0n : value };
}

function cpuUsage(usageNs: bigint, nanoCores: bigint | undefined, ts: bigint): CpuUsage {
  const out: CpuUsage = { timestamp: ts, usageCoreNanoSeconds: u64(usageNs) };
  if (nanoCores !== undefined) out.usageNanoCores = u64(nanoCores);
  return out;
}

function memoryUsage(m: MemorySample, ts: bigint): MemoryUsage {
  const out: MemoryUsage = {
    timestamp: ts,
    workingSetBytes: u64(m.workingSetBytes),
    usageBytes: u64(m.usageBytes),
    rssBytes: u64(m.rssBytes),
    pageFaults: u64(m.pageFaults),
    majorPageFaults: u64(m.majorPageFaults),
  };
  // Unlimited: left unset (containerd sends 0, which reads as "nothing left").
  if (m.availableBytes !== undefined) out.availableBytes = u64(m.availableBytes);
  return out;
}

/** A cgroup path that would read the whole host's accounting instead of one pod's/container's. */
function isRootPath(path: string | undefined): boolean {
  return path === undefined || path.replace(/\/+/g, "/").replace(/\/$/, "") === "";
}

async function containerCgroup(
  pid: number,
  cgroupsPath: string | undefined,
): Promise<CgroupPaths | undefined> {
  if (!isRootPath(cgroupsPath)) return cgroupPathsOf(cgroupsPath as string);
  return cgroupPathsOfPid(pid);
}

/** Reads one container's cgroup; empty when it is not running. */
async function sampleContainer(pid: number, cgroupsPath?: string): Promise<CgroupSample> {
  const paths = await containerCgroup(pid, cgroupsPath);
  return paths === undefined ? {} : readCgroupStats(paths);
}

/** Distinct cgroups of `pids` (two pids in one cgroup must not be counted twice), read. */
async function sampleDistinct(pids: readonly number[]): Promise<CgroupSample[]> {
  const all = await Promise.all(pids.map((pid) => cgroupPathsOfPid(pid)));
  const distinct = new Map<string, CgroupPaths>();
  for (const p of all) if (p !== undefined) distinct.set(`${p.cpuacct}\0${p.memory}\0${p.pids}`, p);
  return Promise.all([...distinct.values()].map(readCgroupStats));
}

/** ContainerStats without attributes: cpu/memory when running, the writable layer always. */
export async function containerStats(input: ContainerStatsInput): Promise<ContainerStatsBody> {
  const ts = input.nowNs ?? epochNowNs();
  const [sample, layer] = await Promise.all([
    sampleContainer(input.pid, input.cgroupsPath),
    input.fsUsage !== undefined
      ? input.fsUsage.get(input.upperDir)
      : dirUsage(input.upperDir).then((u) => ({ ...u, timestampNs: ts })),
  ]);
  const out: ContainerStatsBody = {
    writableLayer: {
      timestamp: layer.timestampNs,
      fsId: { mountpoint: input.mountpoint },
      usedBytes: u64(layer.bytes),
      inodesUsed: u64(layer.inodes),
    },
  };
  if (sample.cpuUsageNs !== undefined) {
    const rate = input.rates.update(input.id, sample.cpuUsageNs, ts);
    out.cpu = cpuUsage(sample.cpuUsageNs, rate, ts);
  }
  if (sample.memory !== undefined) out.memory = memoryUsage(sample.memory, ts);
  return out;
}

export interface PodStatsInput {
  podId: string;
  /**
   * Init pids of the pod's containers (0 or gone ones are skipped; pids sharing a cgroup count
   * once). The first live one also gives the pod's netns.
   */
  pids: readonly number[];
  /**
   * The pod's linux.cgroup_parent. When its cgroup exists, pod cpu/memory are read from it (it
   * holds every container of the pod); otherwise they are the sum over the containers. Must be
   * the pod's own cgroup (kubelet's `…/pod<uid>`), not one shared by several pods.
   */
  cgroupParent?: string;
  /** The pinned netns, read via nsenter when no container process is alive. */
  netnsPath?: string;
  /** Host-network pods report no network stats (their counters are the node's). */
  hostNetwork?: boolean;
  nowNs?: bigint;
  /** Keeps the previous pod-level CPU sample (key `pod/<id>`) for usage_nano_cores. */
  rates: CpuRateCache;
}

function sumMemory(samples: readonly MemorySample[]): MemorySample | undefined {
  if (samples.length === 0) return undefined;
  const out: MemorySample = {
    usageBytes: 0n,
    workingSetBytes: 0n,
    rssBytes: 0n,
    pageFaults: 0n,
    majorPageFaults: 0n,
  };
  for (const m of samples) {
    out.usageBytes += m.usageBytes;
    out.workingSetBytes += m.workingSetBytes;
    out.rssBytes += m.rssBytes;
    out.pageFaults += m.pageFaults;
    out.majorPageFaults += m.majorPageFaults;
  }
  return out; // no pod-level limit known: availableBytes unset
}

/** LinuxPodSandboxStats without `containers`: pod cpu, memory, network and process count. */
export async function podStats(input: PodStatsInput): Promise<PodStatsBody> {
  const ts = input.nowNs ?? epochNowNs();
  const parent = input.cgroupParent;
  const [containers, pod, ifaces] = await Promise.all([
    sampleDistinct(input.pids),
    isRootPath(parent)
      ? Promise.resolve<CgroupSample>({})
      : cgroupPathsOf(parent as string).then(readCgroupStats),
    input.hostNetwork === true ? Promise.resolve(undefined) : readPodNetDev(input.pids, input.netnsPath),
  ]);

  const out: PodStatsBody = {};

  let cpu = pod.cpuUsageNs;
  if (cpu === undefined) {
    const parts = containers.flatMap((c) => (c.cpuUsageNs === undefined ? [] : [c.cpuUsageNs]));
    if (parts.length > 0) cpu = parts.reduce((a, b) => a + b, 0n);
  }
  if (cpu !== undefined) out.cpu = cpuUsage(cpu, input.rates.update(podRateKey(input.podId), cpu, ts), ts);

  const memory =
    pod.memory ?? sumMemory(containers.flatMap((c) => (c.memory === undefined ? [] : [c.memory])));
  if (memory !== undefined) out.memory = memoryUsage(memory, ts);

  if (ifaces !== undefined) out.network = networkUsage(ifaces, ts);

  // As containerd: the sum of the containers' pids.current (0 when none is running). Note that
  // pids.current counts tasks, i.e. threads.
  const processCount = containers.reduce((a, c) => a + (c.pidsCurrent ?? 0n), 0n);
  const process: ProcessUsage = { timestamp: ts, processCount: u64(processCount) };
  out.process = process;
  return out;
}
