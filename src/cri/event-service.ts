/** GetContainerEvents: a server stream of container lifecycle events for kubelet's evented PLEG. */
import { once } from "node:events";
import type { handleServerStreamingCall } from "@grpc/grpc-js";
import {
  type ContainerEventResponse,
  ContainerEventType,
  type GetEventsRequest,
} from "../api/gen/runtime/v1/api.js";
import { unavailable } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ContainerRecord } from "../container/container-manager.js";
import type { ContainerEvent, EventBus } from "../events/bus.js";
import type { SandboxManager } from "../pod/sandbox-manager.js";
import { toGrpcError } from "./boundary.js";
import { toStatus } from "./container-service.js";
import { toPodStatus } from "./pod-service.js";

const TYPES = {
  created: ContainerEventType.CONTAINER_CREATED_EVENT,
  started: ContainerEventType.CONTAINER_STARTED_EVENT,
  stopped: ContainerEventType.CONTAINER_STOPPED_EVENT,
  deleted: ContainerEventType.CONTAINER_DELETED_EVENT,
} as const;

export function eventService(opts: {
  logger: Logger;
  events: EventBus<ContainerRecord>;
  pods: SandboxManager;
}) {
  const { logger, events, pods } = opts;
  const toResponse = (e: ContainerEvent<ContainerRecord>): ContainerEventResponse => {
    const pod = pods.store.get(e.podId);
    return {
      containerId: e.containerId,
      containerEventType: TYPES[e.kind],
      createdAt: e.atNs,
      podSandboxStatus: pod ? toPodStatus(pod) : undefined,
      containersStatuses: [toStatus(e.record)],
    };
  };
  const getContainerEvents: handleServerStreamingCall<GetEventsRequest, ContainerEventResponse> = (call) => {
    const log = logger.child({ method: "GetContainerEvents" });
    const sub = events.subscribe();
    log.debug("subscriber joined");
    call.on("cancelled", () => sub.close("client went away"));
    call.on("close", () => sub.close("stream closed"));
    (async () => {
      for (;;) {
        const e = await sub.next();
        if (!e) break;
        if (!call.write(toResponse(e))) await once(call, "drain");
      }
      if (sub.closedReason?.includes("behind")) {
        // kubelet relists after a stream error; a silent end would look like a clean shutdown.
        call.emit("error", toGrpcError(unavailable(`event stream dropped: ${sub.closedReason}`)));
      }
      log.debug({ reason: sub.closedReason }, "subscriber left");
    })().catch((err: unknown) => {
      sub.close("write failed");
      log.warn({ err }, "event stream failed");
    });
  };
  return { getContainerEvents };
}
