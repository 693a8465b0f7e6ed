/**
 * runtime.v1.RuntimeService: Version, Status and RuntimeConfig here, pods and containers in
 * pod-service.ts and container-service.ts. RPCs whose issue has not landed yet (streaming,
 * stats, events) answer UNIMPLEMENTED.
 */
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
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
import type { Logger } from "../common/logger.js";
import { BERTH_VERSION, CRI_API_VERSION, RUNTIME_NAME } from "../common/version.js";
import type { BerthConfig } from "../config/config.js";
import type { ContainerManager, ContainerRecord } from "../container/container-manager.js";
import type { EventBus } from "../events/bus.js";
import type { CniClient } from "../network/cni.js";
import type { SandboxManager } from "../pod/sandbox-manager.js";
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
  cni: CniClient;
  pods: SandboxManager;
  containers: ContainerManager;
  events: EventBus<ContainerRecord>;
  server: StreamingServer;
}

export function runtimeService(opts: RuntimeServiceOptions): UntypedServiceImplementation {
  const { logger, config, cni } = opts;
  let podCidr = "";
  const implemented: UntypedServiceImplementation = {
    ...podService(opts),
    ...containerService(opts),
    ...eventService(opts),
    ...statsService({ ...opts, root: config.root }),
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
      const net = await cni.networkStatus();
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
                registry: { mirrors: config.registry.mirrors, insecure: insecureHosts(config) },
                runtime: config.runtime,
                cni: { ...config.cni, network: net.networkName ?? null, source: net.source ?? null, podCidr },
              }),
            }
          : {},
      });
    }),
  };
  const service: UntypedServiceImplementation = {};
  for (const [name, def] of Object.entries(RuntimeServiceService)) {
    const method = def.path.split("/").pop() ?? name;
    service[name] =
      implemented[name] ?? (def.responseStream ? notYetStreaming(logger, method) : notYet(logger, method));
  }
  return service;
}

function insecureHosts(config: BerthConfig): string[] {
  return Object.entries(config.registry.configs)
    .filter(([, c]) => c.insecure)
    .map(([host]) => host);
}
