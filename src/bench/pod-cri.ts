/**
 * The pod benchmark's RuntimeService client: the generated gRPC client (the one a CriClient
 * already holds, so no extra connection) called with `fromPartial` requests, so every unset
 * field is a proto default rather than undefined (as src/test/pods.test.ts's runtimeClient()).
 * Works against any CRI v1 endpoint: berthd and containerd alike.
 */
import { type CallOptions, type Client, Metadata, type ServiceError } from "@grpc/grpc-js";
import type { CriClient } from "../cri/client.js";
import {
  type ContainerConfig,
  ContainerStatusRequest,
  type ContainerStatusResponse,
  CreateContainerRequest,
  type CreateContainerResponse,
  ListPodSandboxRequest,
  type ListPodSandboxResponse,
  type PodSandboxConfig,
  PodSandboxStatusRequest,
  type PodSandboxStatusResponse,
  RemovePodSandboxRequest,
  type RemovePodSandboxResponse,
  RunPodSandboxRequest,
  type RunPodSandboxResponse,
  type RuntimeServiceClient,
  StartContainerRequest,
  type StartContainerResponse,
  StopContainerRequest,
  type StopContainerResponse,
  StopPodSandboxRequest,
  type StopPodSandboxResponse,
} from "../cri/gen/runtime/v1/api.js";

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type UnaryMethod<Req, Res> = (
  req: Req,
  md: Metadata,
  opts: Partial<CallOptions>,
  cb: Callback<Res>,
) => unknown;

function invoke<Req, Res>(client: Client, method: UnaryMethod<Req, Res>, req: Req, timeoutMs: number) {
  return new Promise<Res>((resolve, reject) => {
    method.call(client, req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

export class PodCri {
  private readonly rt: RuntimeServiceClient;

  constructor(
    cri: CriClient,
    private readonly timeoutMs = 120_000,
  ) {
    this.rt = cri.runtime;
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    const req = RunPodSandboxRequest.fromPartial({ config });
    const res = await invoke<RunPodSandboxRequest, RunPodSandboxResponse>(
      this.rt,
      this.rt.runPodSandbox,
      req,
      this.timeoutMs,
    );
    return res.podSandboxId;
  }

  async createContainer(
    podSandboxId: string,
    config: ContainerConfig,
    sandboxConfig: PodSandboxConfig,
  ): Promise<string> {
    const req = CreateContainerRequest.fromPartial({ podSandboxId, config, sandboxConfig });
    const res = await invoke<CreateContainerRequest, CreateContainerResponse>(
      this.rt,
      this.rt.createContainer,
      req,
      this.timeoutMs,
    );
    return res.containerId;
  }

  async startContainer(containerId: string): Promise<void> {
    const req = StartContainerRequest.fromPartial({ containerId });
    await invoke<StartContainerRequest, StartContainerResponse>(
      this.rt,
      this.rt.startContainer,
      req,
      this.timeoutMs,
    );
  }

  /** `timeoutSec` 0: SIGKILL at once (both runtimes). */
  async stopContainer(containerId: string, timeoutSec: number): Promise<void> {
    const req = StopContainerRequest.fromPartial({ containerId, timeout: BigInt(timeoutSec) });
    await invoke<StopContainerRequest, StopContainerResponse>(
      this.rt,
      this.rt.stopContainer,
      req,
      this.timeoutMs,
    );
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    const req = StopPodSandboxRequest.fromPartial({ podSandboxId });
    await invoke<StopPodSandboxRequest, StopPodSandboxResponse>(
      this.rt,
      this.rt.stopPodSandbox,
      req,
      this.timeoutMs,
    );
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    const req = RemovePodSandboxRequest.fromPartial({ podSandboxId });
    await invoke<RemovePodSandboxRequest, RemovePodSandboxResponse>(
      this.rt,
      this.rt.removePodSandbox,
      req,
      this.timeoutMs,
    );
  }

  podSandboxStatus(podSandboxId: string): Promise<PodSandboxStatusResponse> {
    const req = PodSandboxStatusRequest.fromPartial({ podSandboxId });
    return invoke<PodSandboxStatusRequest, PodSandboxStatusResponse>(
      this.rt,
      this.rt.podSandboxStatus,
      req,
      this.timeoutMs,
    );
  }

  containerStatus(containerId: string): Promise<ContainerStatusResponse> {
    const req = ContainerStatusRequest.fromPartial({ containerId });
    return invoke<ContainerStatusRequest, ContainerStatusResponse>(
      this.rt,
      this.rt.containerStatus,
      req,
      this.timeoutMs,
    );
  }

  async listPodIds(labelSelector: Record<string, string> = {}): Promise<string[]> {
    const req = ListPodSandboxRequest.fromPartial({ filter: { labelSelector } });
    const res = await invoke<ListPodSandboxRequest, ListPodSandboxResponse>(
      this.rt,
      this.rt.listPodSandbox,
      req,
      this.timeoutMs,
    );
    return res.items.map((p) => p.id);
  }
}
