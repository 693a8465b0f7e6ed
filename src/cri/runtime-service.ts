/**
 * runtime.v1.RuntimeService: Version, Status and RuntimeConfig here; pods, containers, stats,
 * streaming and events in their own files, all over the backend interfaces. An RPC Berth does
 * not implement answers UNIMPLEMENTED.
 */

import {
  CgroupDriver,
  ListMetricDescriptorsResponse,
  ListPodSandboxMetricsResponse,
  RuntimeConfigResponse,
  RuntimeServiceService,
  type StatusRequest,
  StatusResponse,
  type UpdateRuntimeConfigRequest,
  UpdateRuntimeConfigResponse,
  type VersionRequest,
  VersionResponse,
} from "../api/gen/runtime/v1/api.js";
import type { ServiceImplementation } from "../api/grpc/server.js";
import type { ContainerBackend, SandboxBackend } from "../backend/backend.js";
import type { Logger } from "../common/logger.js";
import { redactUrl } from "../common/redact.js";
import { BERTH_VERSION, CRI_API_VERSION, RUNTIME_NAME } from "../common/version.js";
import type { BerthConfig } from "../config/config.js";
import type { StreamingServer } from "../streaming/server.js";
import { notYet, notYetStreaming, unary } from "./boundary.js";
import { containerService } from "./container-service.js";
import { eventService } from "./event-service.js";
import { podService } from "./pod-service.js";
import { statsService } from "./stats-service.js";
import { streamingService } from "./streaming-service.js";

export interface RuntimeServiceOptions {
  logger: Logger;
  config: BerthConfig;
  sandboxes: SandboxBackend;
  containers: ContainerBackend;
  server: StreamingServer;
}

export function runtimeService(opts: RuntimeServiceOptions): ServiceImplementation {
  const { logger, config, sandboxes } = opts;
  let podCidr = "";
  const implemented: ServiceImplementation = {
    ...podService(opts),
    ...containerService(opts),
    ...eventService(opts),
    ...statsService(opts),
    ...streamingService(opts),
    updateRuntimeConfig: unary(logger, "UpdateRuntimeConfig", async (req: UpdateRuntimeConfigRequest) => {
      // The pod CIDR is the CNI config's business here (host-local ranges); record what kubelet said.
      podCidr = req.runtimeConfig?.networkConfig?.podCidr ?? podCidr;
      return UpdateRuntimeConfigResponse.fromPartial({});
    }),
    listMetricDescriptors: unary(logger, "ListMetricDescriptors", async () =>
      ListMetricDescriptorsResponse.fromPartial({ descriptors: [] }),
    ),
    listPodSandboxMetrics: unary(logger, "ListPodSandboxMetrics", async () =>
      ListPodSandboxMetricsResponse.fromPartial({ podMetrics: [] }),
    ),
    runtimeConfig: unary(logger, "RuntimeConfig", async () =>
      RuntimeConfigResponse.fromPartial({ linux: { cgroupDriver: CgroupDriver.CGROUPFS } }),
    ),
    version: unary(logger, "Version", async (_req: VersionRequest) =>
      VersionResponse.fromPartial({
        version: "0.1.0",
        runtimeName: RUNTIME_NAME,
        runtimeVersion: BERTH_VERSION,
        runtimeApiVersion: CRI_API_VERSION,
      }),
    ),
    status: unary(logger, "Status", async (req: StatusRequest) => {
      const net = await sandboxes.networkStatus();
      return StatusResponse.fromPartial({
        status: {
          conditions: [
            { type: "RuntimeReady", status: true, reason: "", message: "" },
            {
              type: "NetworkReady",
              status: net.ready,
              reason: net.ready ? "" : (net.reason ?? "NetworkPluginNotReady"),
              message: net.ready ? "" : (net.message ?? "network plugin is not ready"),
            },
          ],
        },
        info: req.verbose
          ? {
              config: JSON.stringify({
                root: config.root,
                state: config.state,
                listen: config.listen,
                image: config.image,
                registry: { mirrors: shownMirrors(config), insecure: insecureHosts(config) },
                runtime: config.runtime,
                cni: { ...config.cni, ...net.info, podCidr },
              }),
            }
          : {},
      });
    }),
  };
  const service: ServiceImplementation = {};
  for (const [name, def] of Object.entries(RuntimeServiceService)) {
    const method = def.path.split("/").pop() ?? name;
    service[name] =
      implemented[name] ?? (def.responseStream ? notYetStreaming(logger, method) : notYet(logger, method));
  }
  return service;
}

function shownMirrors(config: BerthConfig): Record<string, { endpoints: string[] }> {
  return Object.fromEntries(
    Object.entries(config.registry.mirrors).map(([host, m]) => [
      host,
      { endpoints: m.endpoints.map(redactUrl) },
    ]),
  );
}

function insecureHosts(config: BerthConfig): string[] {
  return Object.entries(config.registry.configs)
    .filter(([, c]) => c.insecure)
    .map(([host]) => host);
}
