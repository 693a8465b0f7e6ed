/**
 * Exec, Attach and PortForward: the CRI answers with a single-use URL on berthd's streaming
 * server (loopback by default), which speaks remotecommand and portforward to the client. The
 * sessions run through the container manager: exec via the OCI runtime (with or without a
 * terminal), attach via the container's conmon.
 */

import {
  type AttachRequest,
  AttachResponse,
  type ExecRequest,
  ExecResponse,
  type PortForwardRequest,
  PortForwardResponse,
} from "../api/gen/runtime/v1/api.js";
import { failedPrecondition } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { BerthConfig } from "../config/config.js";
import type { ContainerManager } from "../container/container-manager.js";
import type { SandboxManager } from "../pod/sandbox-manager.js";
import { forwardInNetns, forwardOnHost } from "../streaming/portforward.js";
import { StreamingServer } from "../streaming/server.js";
import { unary } from "./boundary.js";

export interface StreamingServiceOptions {
  logger: Logger;
  config: BerthConfig;
  pods: SandboxManager;
  containers: ContainerManager;
}

export function createStreamingServer(opts: StreamingServiceOptions): StreamingServer {
  const { config, pods, containers } = opts;
  return new StreamingServer({
    address: config.streaming.address,
    idleTimeoutMs: config.streaming.idleTimeoutSeconds * 1000,
    handlers: {
      exec: (req, io) => containers.exec(req.containerId, req.cmd, req.tty, io),
      attach: (req, io) => containers.attach(req.containerId, io),
      portForward: (req, fwd) => {
        const pod = pods.store.resolve(req.podSandboxId);
        const conn = { port: fwd.port, stream: fwd.stream, signal: fwd.signal };
        // A host-network pod listens in berthd's own network namespace.
        const netnsPath = pod.hostNetwork ? undefined : pod.namespaces.net;
        return netnsPath ? forwardInNetns({ ...conn, netnsPath }) : forwardOnHost(conn);
      },
    },
  });
}

export function streamingService(opts: StreamingServiceOptions & { server: StreamingServer }) {
  const { logger, server, containers, pods } = opts;
  const running = (id: string) => {
    const c = containers.store.resolve(id);
    if (c.state !== "CONTAINER_RUNNING") throw failedPrecondition(`container ${c.id} is not running`);
    return c;
  };
  return {
    exec: unary(logger, "Exec", async (req: ExecRequest) => {
      const c = running(req.containerId);
      return ExecResponse.fromPartial({
        url: server.execUrl({
          containerId: c.id,
          cmd: req.cmd,
          tty: req.tty,
          stdin: req.stdin,
          stdout: req.stdout,
          stderr: req.stderr,
        }),
      });
    }),
    attach: unary(logger, "Attach", async (req: AttachRequest) => {
      const c = running(req.containerId);
      const stdio = containers.stdioConfig(c.id);
      if (req.stdin && !stdio.stdin)
        throw failedPrecondition(`container ${c.id} was created without stdin: cannot attach stdin`);
      // The terminal is the container's (as containerd does): with one, there is no stderr.
      return AttachResponse.fromPartial({
        url: server.attachUrl({
          containerId: c.id,
          tty: stdio.tty,
          stdin: req.stdin,
          stdout: req.stdout,
          stderr: req.stderr && !stdio.tty,
        }),
      });
    }),
    portForward: unary(logger, "PortForward", async (req: PortForwardRequest) => {
      const pod = pods.store.resolve(req.podSandboxId);
      if (pod.state !== "SANDBOX_READY") throw failedPrecondition(`pod sandbox ${pod.id} is not ready`);
      return PortForwardResponse.fromPartial({
        url: server.portForwardUrl({ podSandboxId: pod.id, port: req.port }),
      });
    }),
  };
}
