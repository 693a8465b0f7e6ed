/**
 * Exec, Attach and PortForward: the CRI answers with a single-use URL on berthd's streaming
 * server (loopback by default), which speaks remotecommand and portforward to the client. The
 * sessions run through the backend (native: exec via the OCI runtime, attach via conmon).
 */

import {
  type AttachRequest,
  AttachResponse,
  type ExecRequest,
  ExecResponse,
  type PortForwardRequest,
  PortForwardResponse,
} from "../api/gen/runtime/v1/api.js";
import type { ContainerBackend, SandboxBackend } from "../backend/backend.js";
import { failedPrecondition } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { StreamingConfig } from "../config/config.js";
import { StreamingServer } from "../streaming/server.js";
import { unary } from "./boundary.js";

export interface StreamingServiceOptions {
  logger: Logger;
  sandboxes: SandboxBackend;
  containers: ContainerBackend;
}

export function createStreamingServer(
  opts: StreamingServiceOptions & { config: StreamingConfig },
): StreamingServer {
  const { config, sandboxes, containers } = opts;
  return new StreamingServer({
    address: config.address,
    idleTimeoutMs: config.idleTimeoutSeconds * 1000,
    handlers: {
      exec: (req, io) => containers.exec(req.containerId, req.cmd, req.tty, io),
      attach: (req, io) => containers.attach(req.containerId, io),
      portForward: (req, fwd) =>
        sandboxes.portForward(req.podSandboxId, { port: fwd.port, stream: fwd.stream, signal: fwd.signal }),
    },
  });
}

export function streamingService(opts: StreamingServiceOptions & { server: StreamingServer }) {
  const { logger, server, containers, sandboxes } = opts;
  return {
    exec: unary(logger, "Exec", async (req: ExecRequest) => {
      const { id } = await containers.streamTarget(req.containerId);
      return ExecResponse.fromPartial({
        url: server.execUrl({
          containerId: id,
          cmd: req.cmd,
          tty: req.tty,
          stdin: req.stdin,
          stdout: req.stdout,
          stderr: req.stderr,
        }),
      });
    }),
    attach: unary(logger, "Attach", async (req: AttachRequest) => {
      const { id, stdio } = await containers.streamTarget(req.containerId);
      if (req.stdin && !stdio.stdin)
        throw failedPrecondition(`container ${id} was created without stdin: cannot attach stdin`);
      // The terminal is the container's (as containerd does): with one, there is no stderr.
      return AttachResponse.fromPartial({
        url: server.attachUrl({
          containerId: id,
          tty: stdio.tty,
          stdin: req.stdin,
          stdout: req.stdout,
          stderr: req.stderr && !stdio.tty,
        }),
      });
    }),
    portForward: unary(logger, "PortForward", async (req: PortForwardRequest) => {
      const podSandboxId = await sandboxes.portForwardTarget(req.podSandboxId);
      return PortForwardResponse.fromPartial({
        url: server.portForwardUrl({ podSandboxId, port: req.port }),
      });
    }),
  };
}
