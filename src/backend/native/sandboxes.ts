/** The native sandbox backend: pinned namespaces, the pod init and CNI (src/pod, src/network). */
import type {
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStats,
  PodSandboxStatsFilter,
  PodSandboxStatus,
} from "../../api/gen/runtime/v1/api.js";
import { failedPrecondition } from "../../common/errors.js";
import type { ContainerManager } from "../../container/container-manager.js";
import type { CniClient } from "../../network/cni.js";
import type { SandboxManager } from "../../pod/sandbox-manager.js";
import { forwardInNetns, forwardOnHost } from "../../streaming/portforward.js";
import type { NetworkStatus, PortForwardStream, SandboxBackend, WithInfo } from "../backend.js";
import { verboseInfo } from "../verbose-info.js";
import { podState, toPodSandbox, toPodStatus } from "./convert.js";
import { selectPods } from "./filters.js";
import type { NativeStats } from "./stats.js";

export class NativeSandboxBackend implements SandboxBackend {
  constructor(
    private readonly pods: SandboxManager,
    private readonly containers: ContainerManager,
    private readonly cni: CniClient,
    private readonly statsOf: NativeStats,
  ) {}

  async run(config: PodSandboxConfig, runtimeHandler: string): Promise<string> {
    return (await this.pods.run(config, runtimeHandler)).id;
  }

  async stop(id: string): Promise<void> {
    const pod = this.pods.store.find(id);
    if (!pod) return;
    await this.pods.exclusive(pod.id, async () => {
      for (const c of this.containers.listInPod(pod.id)) await this.containers.stop(c.id, 0);
      await this.pods.stop(pod.id);
    });
  }

  async remove(id: string): Promise<void> {
    const pod = this.pods.store.find(id);
    if (!pod) return;
    await this.pods.exclusive(pod.id, async () => {
      for (const c of this.containers.listInPod(pod.id)) await this.containers.remove(c.id);
      await this.pods.remove(pod.id);
    });
  }

  async status(id: string, verbose: boolean): Promise<WithInfo<PodSandboxStatus>> {
    const pod = this.pods.store.resolve(id);
    return { status: toPodStatus(pod), info: verbose ? verboseInfo(await this.pods.verboseInfo(pod)) : {} };
  }

  async list(f: PodSandboxFilter | undefined): Promise<PodSandbox[]> {
    return selectPods(this.pods.store.list(), f)
      .filter((p) => f?.state === undefined || f.state.state === podState(p))
      .map(toPodSandbox);
  }

  stats(id: string): Promise<PodSandboxStats> {
    return this.statsOf.forPod(this.pods.store.resolve(id));
  }

  listStats(f: PodSandboxStatsFilter | undefined): Promise<PodSandboxStats[]> {
    this.statsOf.prune();
    const list = selectPods(this.pods.store.list(), f).filter((p) => p.state === "SANDBOX_READY");
    return Promise.all(list.map((p) => this.statsOf.forPod(p)));
  }

  async portForwardTarget(id: string): Promise<string> {
    const pod = this.pods.store.resolve(id);
    if (pod.state !== "SANDBOX_READY") throw failedPrecondition(`pod sandbox ${pod.id} is not ready`);
    return pod.id;
  }

  portForward(podId: string, conn: PortForwardStream): Promise<void> {
    const pod = this.pods.store.resolve(podId);
    // A host-network pod listens in berthd's own network namespace.
    const netnsPath = pod.hostNetwork ? undefined : pod.namespaces.net;
    // A sandbox runtime's (gVisor's) own network stack answers on the pod IP, not in the netns.
    const podIp = pod.ips[0];
    if (netnsPath && podIp && this.pods.sandboxed(pod)) return forwardOnHost({ ...conn, host: podIp });
    return netnsPath ? forwardInNetns({ ...conn, netnsPath }) : forwardOnHost(conn);
  }

  async networkStatus(): Promise<NetworkStatus> {
    const net = await this.cni.networkStatus();
    return {
      ready: net.ready,
      ...(net.reason !== undefined && { reason: net.reason }),
      ...(net.message !== undefined && { message: net.message }),
      info: { network: net.networkName ?? null, source: net.source ?? null },
    };
  }
}
