/** Berth's pod and container records as the CRI shows them. */
import {
  type Container,
  type ContainerEventResponse,
  ContainerEventType,
  ContainerState,
  type ContainerStatus,
  NamespaceMode,
  type PodSandbox,
  PodSandboxState,
  type PodSandboxStatus,
} from "../../api/gen/runtime/v1/api.js";
import { type ContainerRecord, decodeContainerConfig } from "../../container/container-manager.js";
import type { ContainerEvent } from "../../events/bus.js";
import { decodePodConfig, type PodRecord } from "../../pod/sandbox-manager.js";

export const CONTAINER_STATES: Record<ContainerRecord["state"], ContainerState> = {
  CONTAINER_CREATED: ContainerState.CONTAINER_CREATED,
  CONTAINER_RUNNING: ContainerState.CONTAINER_RUNNING,
  CONTAINER_EXITED: ContainerState.CONTAINER_EXITED,
  CONTAINER_UNKNOWN: ContainerState.CONTAINER_UNKNOWN,
};

export function toContainer(c: ContainerRecord): Container {
  return {
    id: c.id,
    podSandboxId: c.podId,
    metadata: c.metadata,
    image: { image: c.image, annotations: {}, userSpecifiedImage: c.image, runtimeHandler: "" },
    imageRef: c.imageId,
    state: CONTAINER_STATES[c.state],
    createdAt: BigInt(c.createdAtNs),
    labels: c.labels,
    annotations: c.annotations,
  };
}

export function toContainerStatus(c: ContainerRecord): ContainerStatus {
  const config = decodeContainerConfig(c);
  return {
    ...toContainer(c),
    startedAt: BigInt(c.startedAtNs),
    finishedAt: BigInt(c.finishedAtNs),
    exitCode: c.exitCode,
    reason: c.reason,
    message: c.message,
    mounts: config.mounts,
    logPath: c.logPath,
    ...(config.linux?.resources && { resources: { linux: config.linux.resources } }),
  } as ContainerStatus;
}

export const podState = (p: PodRecord) =>
  p.state === "SANDBOX_READY" ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY;

export function toPodSandbox(p: PodRecord): PodSandbox {
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
  } as PodSandboxStatus;
}

const EVENT_TYPES = {
  created: ContainerEventType.CONTAINER_CREATED_EVENT,
  started: ContainerEventType.CONTAINER_STARTED_EVENT,
  stopped: ContainerEventType.CONTAINER_STOPPED_EVENT,
  deleted: ContainerEventType.CONTAINER_DELETED_EVENT,
} as const;

export function toEventResponse(
  e: ContainerEvent<ContainerRecord>,
  pod: PodRecord | undefined,
): ContainerEventResponse {
  return {
    containerId: e.containerId,
    containerEventType: EVENT_TYPES[e.kind],
    createdAt: e.atNs,
    podSandboxStatus: pod ? toPodStatus(pod) : undefined,
    containersStatuses: [toContainerStatus(e.record)],
  };
}
