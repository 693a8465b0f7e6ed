/** ContainerStats, ListContainerStats, PodSandboxStats and ListPodSandboxStats over src/stats. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type ContainerStats,
  type ContainerStatsRequest,
  ContainerStatsResponse,
  type ListContainerStatsRequest,
  ListContainerStatsResponse,
  type ListPodSandboxStatsRequest,
  ListPodSandboxStatsResponse,
  NamespaceMode,
  type PodSandboxStats,
  type PodSandboxStatsRequest,
  PodSandboxStatsResponse,
} from "../api/gen/runtime/v1/api.js";
import { unavailable } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ContainerManager, ContainerRecord } from "../container/container-manager.js";
import { rootfsPaths } from "../container/rootfs.js";
import { decodePodConfig, type PodRecord, type SandboxManager } from "../pod/sandbox-manager.js";
import { containerStats, podStats } from "../stats/collect.js";
import { CpuRateCache } from "../stats/cpu-rate.js";
import { DirUsageCache } from "../stats/fs-usage.js";
import { unary } from "./boundary.js";
import { selectContainers, selectPods } from "./filters.js";

export interface StatsServiceOptions {
  logger: Logger;
  pods: SandboxManager;
  containers: ContainerManager;
  /** Reported as the writable layers' filesystem. */
  root: string;
}

export function statsService(opts: StatsServiceOptions) {
  const { logger, pods, containers } = opts;
  const rates = new CpuRateCache();
  const fsUsage = new DirUsageCache();
  const mountpoint = join(opts.root, "containers");

  /** Containers' cgroup paths: a bundle's spec does not change once the container exists. */
  const cgroupPaths = new Map<string, string | undefined>();

  /** The cgroup path runc was given, from the bundle's config.json (safe against pid reuse). */
  async function cgroupsPath(c: ContainerRecord): Promise<string | undefined> {
    if (cgroupPaths.has(c.id)) return cgroupPaths.get(c.id);
    let path: string | undefined;
    try {
      const spec = JSON.parse(await readFile(join(c.dir, "config.json"), "utf8")) as {
        linux?: { cgroupsPath?: string };
      };
      path = spec.linux?.cgroupsPath;
    } catch {
      return undefined; // not cached: the bundle may not be written yet
    }
    cgroupPaths.set(c.id, path);
    return path;
  }

  /** Forgets the paths of containers that are gone (called from the list RPCs kubelet polls). */
  function pruneCgroupPaths(): void {
    for (const id of cgroupPaths.keys()) if (!containers.store.get(id)) cgroupPaths.delete(id);
  }

  async function forContainer(c: ContainerRecord): Promise<ContainerStats> {
    const running = c.state === "CONTAINER_RUNNING";
    const pid = running ? await containers.initPid(c) : 0;
    const path = running ? await cgroupsPath(c) : undefined;
    const body = await containerStats({
      id: c.id,
      pid,
      ...(path ? { cgroupsPath: path } : {}),
      upperDir: rootfsPaths(c.dir).upper,
      mountpoint,
      rates,
      fsUsage,
    });
    return {
      attributes: { id: c.id, metadata: c.metadata, labels: c.labels, annotations: c.annotations },
      ...body,
    };
  }

  async function forPod(p: PodRecord): Promise<PodSandboxStats> {
    if (p.state !== "SANDBOX_READY") throw unavailable(`pod sandbox ${p.id} is not ready`);
    const list = containers.listInPod(p.id).filter((c) => c.phase === "created");
    const stats = await Promise.all(list.map(forContainer));
    const pids = (
      await Promise.all(list.filter((c) => c.state === "CONTAINER_RUNNING").map((c) => containers.initPid(c)))
    ).filter((pid) => pid > 0);
    const config = decodePodConfig(p);
    const body = await podStats({
      podId: p.id,
      pids,
      ...(config.linux?.cgroupParent ? { cgroupParent: config.linux.cgroupParent } : {}),
      ...(p.namespaces.net ? { netnsPath: p.namespaces.net } : {}),
      hostNetwork:
        p.hostNetwork || config.linux?.securityContext?.namespaceOptions?.network === NamespaceMode.NODE,
      rates,
    });
    rates.prune(BigInt(Date.now()) * 1_000_000n);
    return {
      attributes: { id: p.id, metadata: p.metadata, labels: p.labels, annotations: p.annotations },
      linux: { ...body, containers: stats },
    };
  }

  return {
    containerStats: unary(logger, "ContainerStats", async (req: ContainerStatsRequest) => {
      const c = containers.store.resolve(req.containerId);
      return ContainerStatsResponse.fromPartial({ stats: await forContainer(c) });
    }),
    listContainerStats: unary(logger, "ListContainerStats", async (req: ListContainerStatsRequest) => {
      const f = req.filter;
      pruneCgroupPaths();
      const list = selectContainers(containers.store.list(), f);
      return ListContainerStatsResponse.fromPartial({ stats: await Promise.all(list.map(forContainer)) });
    }),
    podSandboxStats: unary(logger, "PodSandboxStats", async (req: PodSandboxStatsRequest) => {
      const p = pods.store.resolve(req.podSandboxId);
      return PodSandboxStatsResponse.fromPartial({ stats: await forPod(p) });
    }),
    listPodSandboxStats: unary(logger, "ListPodSandboxStats", async (req: ListPodSandboxStatsRequest) => {
      const f = req.filter;
      pruneCgroupPaths();
      const list = selectPods(pods.store.list(), f).filter((p) => p.state === "SANDBOX_READY");
      return ListPodSandboxStatsResponse.fromPartial({ stats: await Promise.all(list.map(forPod)) });
    }),
  };
}
