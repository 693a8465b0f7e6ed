/**
 * The pod benchmark's RuntimeService calls, over the typed CriClient.call (requests built
 * with `fromPartial`, so unset fields are proto defaults). Works against any CRI v1 endpoint:
 * berthd and containerd alike.
 */
import type { CriClient, RuntimeRequest, UnaryRuntimeMethod } from "../api/client.js";
import type {
  ContainerConfig,
  ContainerStatusResponse,
  DeepPartial,
  PodSandboxConfig,
  PodSandboxStatusResponse,
} from "../api/gen/runtime/v1/api.js";

export class PodCri {
  constructor(
    /** Replaced when the daemon restarts. */
    public cri: CriClient,
    private readonly timeoutMs = 120_000,
  ) {}

  private call<K extends UnaryRuntimeMethod>(method: K, req: DeepPartial<RuntimeRequest<K>>) {
    return this.cri.call(method, req, this.timeoutMs);
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    return (await this.call("runPodSandbox", { config })).podSandboxId;
  }

  async createContainer(
    podSandboxId: string,
    config: ContainerConfig,
    sandboxConfig: PodSandboxConfig,
  ): Promise<string> {
    const res = await this.call("createContainer", {
      podSandboxId,
      config,
      sandboxConfig,
    });
    return res.containerId;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.call("startContainer", { containerId });
  }

  async stopContainer(containerId: string, timeoutSec: number): Promise<void> {
    await this.call("stopContainer", { containerId, timeout: BigInt(timeoutSec) });
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.call("removeContainer", { containerId });
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.call("stopPodSandbox", { podSandboxId });
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.call("removePodSandbox", { podSandboxId });
  }

  podSandboxStatus(podSandboxId: string): Promise<PodSandboxStatusResponse> {
    return this.call("podSandboxStatus", { podSandboxId });
  }

  containerStatus(containerId: string): Promise<ContainerStatusResponse> {
    return this.call("containerStatus", { containerId });
  }

  async listPodIds(labelSelector: Record<string, string> = {}): Promise<string[]> {
    const res = await this.call("listPodSandbox", { filter: { labelSelector } });
    return res.items.map((p) => p.id);
  }
}
