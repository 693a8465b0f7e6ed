import { join } from "node:path";
import { type ContainerStats, NamespaceMode, type PodSandboxStats } from "../../api/gen/runtime/v1/api.js";
import { unavailable } from "../../common/errors.js";
import { epochNowNs } from "../../common/time.js";
import type { ContainerManager, ContainerRecord } from "../../container/container-manager.js";
import { rootfsPaths } from "../../container/rootfs.js";
import { decodePodConfig, type PodRecord } from "../../pod/sandbox-manager.js";
import { readBundleSpec } from "../../runtime-spec/bundle.js";
import { containerStats, podStats } from "../../stats/collect.js";
import { CpuRateCache } from "../../stats/cpu-rate.js";
import { DirUsageCache } from "../../stats/fs-usage.js";

export class NativeStats {
  private readonly rates = new CpuRateCache();
  private readonly fsUsage = new DirUsageCache();
  private readonly mountpoint: string;
  /** Containers' cgroup paths: a bundle's spec does not change once the container exists. */
  private readonly cgroupPaths = new Map<string, string | undefined>();

  constructor(
    private readonly containers: ContainerManager,
    /** berthd's root: the writable layers' filesystem is reported as <root>/containers. */
    root: string,
  ) {
    this.mountpoint = join(root, "containers");
  }

  /** The cgroup path runc was given, from the bundle's config.json (safe against pid reuse). */
  private async cgroupsPath(c: ContainerRecord): Promise<string | undefined> {
    if (this.cgroupPaths.has(c.id)) return this.cgroupPaths.get(c.id);
    let path: string | undefined;
    try {
      path = (await readBundleSpec(c.dir)).linux.cgroupsPath;
    } catch {
      return undefined; // not cached: the bundle may not be written yet
    }
    this.cgroupPaths.set(c.id, path);
    return path;
  }

  /** Forgets the paths of containers that are gone (called from the list RPCs kubelet polls). */
  prune(): void {
    for (const id of this.cgroupPaths.keys()) if (!this.containers.store.get(id)) this.cgroupPaths.delete(id);
  }

  async forContainer(c: ContainerRecord): Promise<ContainerStats> {
    const running = c.state === "CONTAINER_RUNNING";
    const pid = running ? await this.containers.initPid(c) : 0;
    // A sandboxed (gVisor) container's own cgroup stays empty: its pid, the sandbox's, gives the
    // sandbox's cgroup, where all of the pod's processes are accounted.
    const path = running && !this.containers.sandboxed(c) ? await this.cgroupsPath(c) : undefined;
    const body = await containerStats({
      id: c.id,
      pid,
      ...(path ? { cgroupsPath: path } : {}),
      upperDir: rootfsPaths(c.dir).upper,
      mountpoint: this.mountpoint,
      rates: this.rates,
      fsUsage: this.fsUsage,
    });
    return {
      attributes: { id: c.id, metadata: c.metadata, labels: c.labels, annotations: c.annotations },
      ...body,
    };
  }

  async forPod(p: PodRecord): Promise<PodSandboxStats> {
    if (p.state !== "SANDBOX_READY") throw unavailable(`pod sandbox ${p.id} is not ready`);
    const list = this.containers.listInPod(p.id).filter((c) => c.phase === "created");
    const stats = await Promise.all(list.map((c) => this.forContainer(c)));
    const pids = (
      await Promise.all(
        list.filter((c) => c.state === "CONTAINER_RUNNING").map((c) => this.containers.initPid(c)),
      )
    ).filter((pid) => pid > 0);
    const config = decodePodConfig(p);
    const body = await podStats({
      podId: p.id,
      pids,
      ...(config.linux?.cgroupParent ? { cgroupParent: config.linux.cgroupParent } : {}),
      ...(p.namespaces.net ? { netnsPath: p.namespaces.net } : {}),
      hostNetwork:
        p.hostNetwork || config.linux?.securityContext?.namespaceOptions?.network === NamespaceMode.NODE,
      rates: this.rates,
    });
    this.rates.prune(epochNowNs());
    return {
      attributes: { id: p.id, metadata: p.metadata, labels: p.labels, annotations: p.annotations },
      linux: { ...body, containers: stats },
    };
  }
}
