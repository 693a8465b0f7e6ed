/** RuntimeService pod sandbox RPCs: thin handlers over the SandboxManager. */

import {
  type ListPodSandboxRequest,
  ListPodSandboxResponse,
  NamespaceMode,
  type PodSandbox,
  PodSandboxState,
  type PodSandboxStatus,
  type PodSandboxStatusRequest,
  PodSandboxStatusResponse,
  type RemovePodSandboxRequest,
  RemovePodSandboxResponse,
  type RunPodSandboxRequest,
  RunPodSandboxResponse,
  type StopPodSandboxRequest,
  StopPodSandboxResponse,
} from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ContainerManager } from "../container/container-manager.js";
import { decodePodConfig, type PodRecord, type SandboxManager } from "../pod/sandbox-manager.js";
import { unary } from "./boundary.js";
import { selectPods } from "./filters.js";
import { verboseInfo } from "./verbose-info.js";

export interface PodServiceOptions {
  logger: Logger;
  pods: SandboxManager;
  containers: ContainerManager;
}

const podState = (p: PodRecord) =>
  p.state === "SANDBOX_READY" ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY;

function toPodSandbox(p: PodRecord): PodSandbox {
  return {
    id: p.id,
    metadata: p.metadata,
    state: podState(p),
    createdAt: BigInt(p.createdAtNs),
    labels: p.labels,
    annotations: p.annotations,
    runtimeHandler: p.runtimeHandler,
  };
}

export function toPodStatus(p: PodRecord): PodSandboxStatus {
  const mode = (host: boolean) => (host ? NamespaceMode.NODE : NamespaceMode.POD);
  const pidMode = p.hostPid
    ? NamespaceMode.NODE
    : (decodePodConfig(p).linux?.securityContext?.namespaceOptions?.pid ?? NamespaceMode.POD);
  return {
    id: p.id,
    metadata: p.metadata,
    state: podState(p),
    createdAt: BigInt(p.createdAtNs),
    network: { ip: p.ips[0] ?? "", additionalIps: p.ips.slice(1).map((ip) => ({ ip })) },
    linux: {
      namespaces: {
        options: { network: mode(p.hostNetwork), pid: pidMode, ipc: mode(p.hostIpc), targetId: "" },
      },
    },
    labels: p.labels,
    annotations: p.annotations,
    runtimeHandler: p.runtimeHandler,
  };
}

export function podService(opts: PodServiceOptions) {
  const { logger, pods, containers } = opts;

  async function stopPod(id: string): Promise<void> {
    for (const c of containers.listInPod(id)) await containers.stop(c.id, 0);
    await pods.stop(id);
  }

  return {
    runPodSandbox: unary(logger, "RunPodSandbox", async (req: RunPodSandboxRequest) => {
      if (!req.config) throw invalidArgument("RunPodSandbox needs a config");
      const pod = await pods.run(req.config, req.runtimeHandler);
      return RunPodSandboxResponse.fromPartial({ podSandboxId: pod.id });
    }),
    stopPodSandbox: unary(logger, "StopPodSandbox", async (req: StopPodSandboxRequest) => {
      const pod = pods.store.find(req.podSandboxId);
      if (pod) await stopPod(pod.id);
      return StopPodSandboxResponse.fromPartial({});
    }),
    removePodSandbox: unary(logger, "RemovePodSandbox", async (req: RemovePodSandboxRequest) => {
      const pod = pods.store.find(req.podSandboxId);
      if (pod) {
        for (const c of containers.listInPod(pod.id)) await containers.remove(c.id);
        await pods.remove(pod.id);
      }
      return RemovePodSandboxResponse.fromPartial({});
    }),
    podSandboxStatus: unary(logger, "PodSandboxStatus", async (req: PodSandboxStatusRequest) => {
      const pod = pods.store.resolve(req.podSandboxId);
      const info = req.verbose ? verboseInfo(await pods.verboseInfo(pod)) : {};
      return PodSandboxStatusResponse.fromPartial({ status: toPodStatus(pod), info });
    }),
    listPodSandbox: unary(logger, "ListPodSandbox", async (req: ListPodSandboxRequest) => {
      const f = req.filter;
      const items = selectPods(pods.store.list(), f).filter(
        (p) => f?.state === undefined || f.state.state === podState(p),
      );
      return ListPodSandboxResponse.fromPartial({ items: items.map(toPodSandbox) });
    }),
  };
}
