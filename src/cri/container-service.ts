/** RuntimeService container RPCs: thin handlers over the ContainerManager. */

import {
  type Container,
  ContainerState,
  type ContainerStatus,
  type ContainerStatusRequest,
  ContainerStatusResponse,
  type CreateContainerRequest,
  CreateContainerResponse,
  type ExecSyncRequest,
  ExecSyncResponse,
  type ListContainersRequest,
  ListContainersResponse,
  type RemoveContainerRequest,
  RemoveContainerResponse,
  type ReopenContainerLogRequest,
  ReopenContainerLogResponse,
  type StartContainerRequest,
  StartContainerResponse,
  type StopContainerRequest,
  StopContainerResponse,
  type UpdateContainerResourcesRequest,
  UpdateContainerResourcesResponse,
} from "../api/gen/runtime/v1/api.js";
import { deadlineExceeded, invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import {
  type ContainerManager,
  type ContainerRecord,
  decodeContainerConfig,
} from "../container/container-manager.js";
import { unary } from "./boundary.js";
import { selectContainers } from "./filters.js";
import { verboseInfo } from "./verbose-info.js";

const STATES: Record<ContainerRecord["state"], ContainerState> = {
  CONTAINER_CREATED: ContainerState.CONTAINER_CREATED,
  CONTAINER_RUNNING: ContainerState.CONTAINER_RUNNING,
  CONTAINER_EXITED: ContainerState.CONTAINER_EXITED,
  CONTAINER_UNKNOWN: ContainerState.CONTAINER_UNKNOWN,
};

function toContainer(c: ContainerRecord): Container {
  return {
    id: c.id,
    podSandboxId: c.podId,
    metadata: c.metadata,
    image: { image: c.image, annotations: {}, userSpecifiedImage: c.image, runtimeHandler: "" },
    imageRef: c.imageId,
    state: STATES[c.state],
    createdAt: BigInt(c.createdAtNs),
    labels: c.labels,
    annotations: c.annotations,
  };
}

export function toStatus(c: ContainerRecord): ContainerStatus {
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

export function containerService(opts: { logger: Logger; containers: ContainerManager }) {
  const { logger, containers } = opts;
  return {
    createContainer: unary(logger, "CreateContainer", async (req: CreateContainerRequest) => {
      if (!req.config) throw invalidArgument("CreateContainer needs a config");
      const c = await containers.create(req.podSandboxId, req.config);
      return CreateContainerResponse.fromPartial({ containerId: c.id });
    }),
    startContainer: unary(logger, "StartContainer", async (req: StartContainerRequest) => {
      await containers.start(req.containerId);
      return StartContainerResponse.fromPartial({});
    }),
    stopContainer: unary(logger, "StopContainer", async (req: StopContainerRequest) => {
      await containers.stop(req.containerId, Number(req.timeout));
      return StopContainerResponse.fromPartial({});
    }),
    removeContainer: unary(logger, "RemoveContainer", async (req: RemoveContainerRequest) => {
      await containers.remove(req.containerId);
      return RemoveContainerResponse.fromPartial({});
    }),
    containerStatus: unary(logger, "ContainerStatus", async (req: ContainerStatusRequest) => {
      const c = await containers.refresh(containers.store.resolve(req.containerId).id);
      if (!c) throw invalidArgument(`container ${req.containerId} vanished`);
      const info = req.verbose ? verboseInfo(await containers.verboseInfo(c)) : {};
      return ContainerStatusResponse.fromPartial({ status: toStatus(c), info });
    }),
    listContainers: unary(logger, "ListContainers", async (req: ListContainersRequest) => {
      const f = req.filter;
      // States are current without a refresh here: exits arrive through conmon's exit files.
      const list = selectContainers(containers.store.list(), f).filter(
        (c) => f?.state === undefined || STATES[c.state] === f.state.state,
      );
      return ListContainersResponse.fromPartial({ containers: list.map(toContainer) });
    }),
    execSync: unary(logger, "ExecSync", async (req: ExecSyncRequest) => {
      const timeout = Number(req.timeout);
      if (timeout < 0) throw invalidArgument(`ExecSync timeout ${timeout} is negative`);
      const res = await containers.execSync(req.containerId, req.cmd, timeout);
      if (res.timedOut)
        throw deadlineExceeded(`command ${JSON.stringify(req.cmd)} timed out after ${timeout}s`);
      return ExecSyncResponse.fromPartial({ stdout: res.stdout, stderr: res.stderr, exitCode: res.exitCode });
    }),
    reopenContainerLog: unary(logger, "ReopenContainerLog", async (req: ReopenContainerLogRequest) => {
      await containers.reopenLog(req.containerId);
      return ReopenContainerLogResponse.fromPartial({});
    }),
    updateContainerResources: unary(
      logger,
      "UpdateContainerResources",
      async (req: UpdateContainerResourcesRequest) => {
        await containers.updateResources(req.containerId, req.linux);
        return UpdateContainerResourcesResponse.fromPartial({});
      },
    ),
  };
}
