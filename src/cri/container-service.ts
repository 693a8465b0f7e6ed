/** RuntimeService container RPCs: thin handlers over the container backend. */
import {
  type CheckpointContainerRequest,
  CheckpointContainerResponse,
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
import type { ContainerBackend } from "../backend/backend.js";
import { deadlineExceeded, invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { unary } from "./boundary.js";

export function containerService(opts: { logger: Logger; containers: ContainerBackend }) {
  const { logger, containers } = opts;
  return {
    createContainer: unary(logger, "CreateContainer", async (req: CreateContainerRequest) => {
      if (!req.config) throw invalidArgument("CreateContainer needs a config");
      // The request's copy of the pod config is not trusted: the backend uses the pod's own.
      const containerId = await containers.create(req.podSandboxId, req.config);
      return CreateContainerResponse.fromPartial({ containerId });
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
    containerStatus: unary(logger, "ContainerStatus", async (req: ContainerStatusRequest) =>
      ContainerStatusResponse.fromPartial(await containers.status(req.containerId, req.verbose)),
    ),
    listContainers: unary(logger, "ListContainers", async (req: ListContainersRequest) =>
      ListContainersResponse.fromPartial({ containers: await containers.list(req.filter) }),
    ),
    execSync: unary(logger, "ExecSync", async (req: ExecSyncRequest) => {
      const timeout = Number(req.timeout);
      if (timeout < 0) throw invalidArgument(`ExecSync timeout ${timeout} is negative`);
      const res = await containers.execSync(req.containerId, req.cmd, timeout);
      if (res.timedOut)
        throw deadlineExceeded(`command ${JSON.stringify(req.cmd)} timed out after ${timeout}s`);
      return ExecSyncResponse.fromPartial({ stdout: res.stdout, stderr: res.stderr, exitCode: res.exitCode });
    }),
    checkpointContainer: unary(logger, "CheckpointContainer", async (req: CheckpointContainerRequest) => {
      await containers.checkpoint(req.containerId, req.location, Number(req.timeout));
      return CheckpointContainerResponse.fromPartial({});
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
