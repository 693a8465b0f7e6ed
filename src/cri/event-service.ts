/** GetContainerEvents: a server stream of container lifecycle events for kubelet's evented PLEG. */
import { once } from "node:events";
import type { ContainerEventResponse, GetEventsRequest } from "../api/gen/runtime/v1/api.js";
import type { ServerStreamHandler } from "../api/grpc/server.js";
import type { ContainerBackend } from "../backend/backend.js";
import { unavailable } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { toGrpcError } from "./boundary.js";

export function eventService(opts: { logger: Logger; containers: ContainerBackend }) {
  const { logger, containers } = opts;
  const getContainerEvents: ServerStreamHandler<GetEventsRequest, ContainerEventResponse> = (call) => {
    const log = logger.child({ method: "GetContainerEvents" });
    const sub = containers.events();
    log.debug("subscriber joined");
    call.on("cancelled", () => sub.close("client went away"));
    call.on("close", () => sub.close("stream closed"));
    (async () => {
      for (;;) {
        const e = await sub.next();
        if (!e) break;
        if (!call.write(e)) await once(call, "drain");
      }
      if (sub.closedReason?.includes("behind")) {
        // kubelet relists after a stream error; a silent end would look like a clean shutdown.
        call.fail(toGrpcError(unavailable(`event stream dropped: ${sub.closedReason}`)));
      }
      log.debug({ reason: sub.closedReason }, "subscriber left");
    })().catch((err: unknown) => {
      sub.close("write failed");
      log.warn({ err }, "event stream failed");
    });
  };
  return { getContainerEvents };
}
