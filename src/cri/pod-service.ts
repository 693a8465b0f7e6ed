/** RuntimeService pod sandbox RPCs: thin handlers over the sandbox backend. */
import {
  type ListPodSandboxRequest,
  ListPodSandboxResponse,
  type PodSandboxStatusRequest,
  PodSandboxStatusResponse,
  type RemovePodSandboxRequest,
  RemovePodSandboxResponse,
  type RunPodSandboxRequest,
  RunPodSandboxResponse,
  type StopPodSandboxRequest,
  StopPodSandboxResponse,
} from "../api/gen/runtime/v1/api.js";
import type { SandboxBackend } from "../backend/backend.js";
import { invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { unary } from "./boundary.js";

export function podService(opts: { logger: Logger; sandboxes: SandboxBackend }) {
  const { logger, sandboxes } = opts;
  return {
    runPodSandbox: unary(logger, "RunPodSandbox", async (req: RunPodSandboxRequest) => {
      if (!req.config) throw invalidArgument("RunPodSandbox needs a config");
      const podSandboxId = await sandboxes.run(req.config, req.runtimeHandler);
      return RunPodSandboxResponse.fromPartial({ podSandboxId });
    }),
    stopPodSandbox: unary(logger, "StopPodSandbox", async (req: StopPodSandboxRequest) => {
      await sandboxes.stop(req.podSandboxId);
      return StopPodSandboxResponse.fromPartial({});
    }),
    removePodSandbox: unary(logger, "RemovePodSandbox", async (req: RemovePodSandboxRequest) => {
      await sandboxes.remove(req.podSandboxId);
      return RemovePodSandboxResponse.fromPartial({});
    }),
    podSandboxStatus: unary(logger, "PodSandboxStatus", async (req: PodSandboxStatusRequest) =>
      PodSandboxStatusResponse.fromPartial(await sandboxes.status(req.podSandboxId, req.verbose)),
    ),
    listPodSandbox: unary(logger, "ListPodSandbox", async (req: ListPodSandboxRequest) =>
      ListPodSandboxResponse.fromPartial({ items: await sandboxes.list(req.filter) }),
    ),
  };
}
