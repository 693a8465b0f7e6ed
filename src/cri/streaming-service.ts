/**
 * Exec and PortForward: the CRI answers with a single-use URL on berthd's streaming server
 * (loopback by default), which speaks SPDY/3.1 remotecommand and portforward to the client.
 * TTY exec and Attach need conmon's attach socket and are not implemented yet.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { failedPrecondition, invalidArgument, unimplemented } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { BerthConfig } from "../config/config.js";
import type { ContainerManager } from "../container/container-manager.js";
import type { SandboxManager } from "../pod/sandbox-manager.js";
import { forwardInNetns } from "../streaming/portforward.js";
import { runcExec } from "../streaming/runc-exec.js";
import { StreamingServer } from "../streaming/server.js";
import { unary } from "./boundary.js";
import {
  type ExecRequest,
  ExecResponse,
  type PortForwardRequest,
  PortForwardResponse,
} from "./gen/runtime/v1/api.js";

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
    handlers: {
      exec: async (req, io) => {
        const c = containers.store.resolve(req.containerId);
        const handler = config.runtime.handlers[c.runtimeHandler];
        if (!handler) throw failedPrecondition(`runtime handler ${c.runtimeHandler} is not configured`);
        // The container's whole process spec (user, caps, env…): only the command differs.
        const spec = JSON.parse(await readFile(join(c.dir, "config.json"), "utf8")) as { process: object };
        return runcExec(
          {
            runtimePath: handler.runtimePath,
            runtimeRoot: handler.runtimeRoot,
            containerId: c.id,
            processSpec: { ...spec.process, args: req.cmd, terminal: false } as never,
            tty: false,
          },
          io,
        );
      },
      portForward: (req, fwd) => {
        const pod = pods.store.resolve(req.podSandboxId);
        return forwardInNetns({
          netnsPath: pod.namespaces.net ?? "/proc/1/ns/net",
          port: fwd.port,
          stream: fwd.stream,
          signal: fwd.signal,
        });
      },
    },
  });
}

export function streamingService(opts: StreamingServiceOptions & { server: StreamingServer }) {
  const { logger, server, containers, pods } = opts;
  return {
    exec: unary(logger, "Exec", async (req: ExecRequest) => {
      const c = containers.store.resolve(req.containerId);
      if (c.state !== "CONTAINER_RUNNING") throw failedPrecondition(`container ${c.id} is not running`);
      if (req.tty) throw unimplemented("exec with a TTY is not implemented by berth yet");
      if (req.cmd.length === 0) throw invalidArgument("exec command is empty");
      return ExecResponse.fromPartial({
        url: server.execUrl({
          containerId: c.id,
          cmd: req.cmd,
          tty: false,
          stdin: req.stdin,
          stdout: req.stdout,
          stderr: req.stderr,
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
