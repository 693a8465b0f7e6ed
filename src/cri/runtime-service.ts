/**
 * runtime.v1.RuntimeService. This module answers Version and Status; the pod, container,
 * streaming and stats RPCs land with their issues and answer UNIMPLEMENTED until then.
 */
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Logger } from "../common/logger.js";
import { BERTH_VERSION, CRI_API_VERSION, RUNTIME_NAME } from "../common/version.js";
import type { BerthConfig } from "../config/config.js";
import { notYet, notYetStreaming, unary } from "./boundary.js";
import {
  RuntimeServiceService,
  type StatusRequest,
  StatusResponse,
  type VersionRequest,
  VersionResponse,
} from "./gen/runtime/v1/api.js";

export interface RuntimeServiceOptions {
  logger: Logger;
  config: BerthConfig;
}

export function runtimeService(opts: RuntimeServiceOptions): UntypedServiceImplementation {
  const { logger, config } = opts;
  const implemented: UntypedServiceImplementation = {
    version: unary(logger, "Version", async (_req: VersionRequest) =>
      VersionResponse.fromPartial({
        version: "0.1.0",
        runtimeName: RUNTIME_NAME,
        runtimeVersion: BERTH_VERSION,
        runtimeApiVersion: CRI_API_VERSION,
      }),
    ),
    status: unary(logger, "Status", async (req: StatusRequest) =>
      StatusResponse.fromPartial({
        status: {
          conditions: [
            { type: "RuntimeReady", status: true, reason: "", message: "" },
            {
              type: "NetworkReady",
              status: false,
              reason: "NetworkPluginNotReady",
              message: "berth: pod networking (CNI) is not implemented yet",
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
              }),
            }
          : {},
      }),
    ),
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
