/** ContainerStats, ListContainerStats, PodSandboxStats and ListPodSandboxStats. */
import {
  type ContainerStatsRequest,
  ContainerStatsResponse,
  type ListContainerStatsRequest,
  ListContainerStatsResponse,
  type ListPodSandboxStatsRequest,
  ListPodSandboxStatsResponse,
  type PodSandboxStatsRequest,
  PodSandboxStatsResponse,
} from "../api/gen/runtime/v1/api.js";
import type { ContainerBackend, SandboxBackend } from "../backend/backend.js";
import type { Logger } from "../common/logger.js";
import { unary } from "./boundary.js";

export function statsService(opts: {
  logger: Logger;
  sandboxes: SandboxBackend;
  containers: ContainerBackend;
}) {
  const { logger, sandboxes, containers } = opts;
  return {
    containerStats: unary(logger, "ContainerStats", async (req: ContainerStatsRequest) =>
      ContainerStatsResponse.fromPartial({ stats: await containers.stats(req.containerId) }),
    ),
    listContainerStats: unary(logger, "ListContainerStats", async (req: ListContainerStatsRequest) =>
      ListContainerStatsResponse.fromPartial({ stats: await containers.listStats(req.filter) }),
    ),
    podSandboxStats: unary(logger, "PodSandboxStats", async (req: PodSandboxStatsRequest) =>
      PodSandboxStatsResponse.fromPartial({ stats: await sandboxes.stats(req.podSandboxId) }),
    ),
    listPodSandboxStats: unary(logger, "ListPodSandboxStats", async (req: ListPodSandboxStatsRequest) =>
      ListPodSandboxStatsResponse.fromPartial({ stats: await sandboxes.listStats(req.filter) }),
    ),
  };
}
