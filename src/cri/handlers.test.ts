/**
 * The CRI handlers against a fake backend (no root, no runc): they pass requests through,
 * shape the answers, map typed errors to gRPC codes, and check what is theirs to check.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ServiceError, status } from "@grpc/grpc-js";
import { pino } from "pino";
import {
  ContainerState,
  type ContainerStatus,
  PodSandboxState,
  type PodSandboxStatus,
} from "../api/gen/runtime/v1/api.js";
import type { ContainerBackend, SandboxBackend } from "../backend/backend.js";
import { failedPrecondition, invalidArgument, notFound } from "../common/errors.js";
import { defaultConfig } from "../config/config.js";
import { StreamingServer } from "../streaming/server.js";
import { runtimeService } from "./runtime-service.js";

type Handler = (
  call: { request: unknown; on?: unknown },
  cb: (err: ServiceError | null, res?: unknown) => void,
) => void;

const notUsed = () => Promise.reject(new Error("not used by this test"));

function fakeSandboxes(over: Partial<SandboxBackend> = {}): SandboxBackend {
  return {
    run: notUsed,
    stop: notUsed,
    remove: notUsed,
    status: notUsed,
    list: notUsed,
    stats: notUsed,
    listStats: notUsed,
    portForwardTarget: notUsed,
    portForward: notUsed,
    networkStatus: async () => ({ ready: true }),
    ...over,
  };
}

function fakeContainers(over: Partial<ContainerBackend> = {}): ContainerBackend {
  return {
    create: notUsed,
    start: notUsed,
    stop: notUsed,
    remove: notUsed,
    status: notUsed,
    list: notUsed,
    updateResources: notUsed,
    reopenLog: notUsed,
    execSync: notUsed,
    streamTarget: notUsed,
    exec: notUsed,
    attach: notUsed,
    stats: notUsed,
    listStats: notUsed,
    events: () => {
      throw new Error("not used by this test");
    },
    checkpoint: notUsed,
    ...over,
  };
}

describe("CRI handlers over a fake backend", () => {
  const server = new StreamingServer({ handlers: { exec: notUsed, attach: notUsed, portForward: notUsed } });
  before(() => server.start());
  after(() => server.close());

  const service = (sandboxes: SandboxBackend, containers: ContainerBackend) =>
    runtimeService({
      logger: pino({ level: "silent" }),
      config: defaultConfig(),
      sandboxes,
      containers,
      server,
    });
  const call = (svc: ReturnType<typeof service>, name: string, request: object) =>
    new Promise<unknown>((resolve, reject) => {
      const grpcCall = {
        request,
        cancelled: false,
        getDeadline: () => Number.POSITIVE_INFINITY,
        on: () => grpcCall,
        removeListener: () => grpcCall,
      };
      (svc[name] as Handler)(grpcCall, (err, res) => (err ? reject(err) : resolve(res)));
    });
  const code = (c: status) => (err: ServiceError) => {
    assert.equal(err.code, c, `${status[c]} expected, got ${status[err.code]}: ${err.details}`);
    return true;
  };

  it("RunPodSandbox: a missing config is INVALID_ARGUMENT; the handler is passed through", async () => {
    const seen: string[] = [];
    const svc = service(
      fakeSandboxes({
        run: async (config, handler) => {
          seen.push(`${config.metadata?.name}/${handler}`);
          return "pod-1";
        },
      }),
      fakeContainers(),
    );
    await assert.rejects(call(svc, "runPodSandbox", {}), code(status.INVALID_ARGUMENT));
    const res = await call(svc, "runPodSandbox", {
      config: { metadata: { name: "p", namespace: "n", uid: "u", attempt: 0 } },
      runtimeHandler: "runsc",
    });
    assert.deepEqual(res, { podSandboxId: "pod-1" });
    assert.deepEqual(seen, ["p/runsc"]);
  });

  it("verbose Status shows mirror endpoints without their credentials", async () => {
    const config = defaultConfig();
    config.registry.mirrors["docker.io"] = {
      endpoints: ["https://user:s3cret@mirror.example:5000/v2", "http://plain.example"],
    };
    const svc = runtimeService({
      logger: pino({ level: "silent" }),
      config,
      sandboxes: fakeSandboxes(),
      containers: fakeContainers(),
      server,
    });
    const res = (await call(svc, "status", { verbose: true })) as { info: Record<string, string> };
    const shown = JSON.parse(res.info.config ?? "{}") as { registry: { mirrors: Record<string, unknown> } };
    assert.deepEqual(shown.registry.mirrors["docker.io"], {
      endpoints: ["https://<credentials>@mirror.example:5000/v2", "http://plain.example"],
    });
    assert.ok(!JSON.stringify(res).includes("s3cret"));
  });

  it("maps the backend's typed errors to gRPC codes, anything else to INTERNAL", async () => {
    const errors = [
      [notFound("no pod"), status.NOT_FOUND],
      [invalidArgument("ambiguous"), status.INVALID_ARGUMENT],
      [failedPrecondition("not ready"), status.FAILED_PRECONDITION],
      [new TypeError("bug"), status.INTERNAL],
    ] as const;
    for (const [err, grpc] of errors) {
      const svc = service(fakeSandboxes({ stop: () => Promise.reject(err) }), fakeContainers());
      await assert.rejects(call(svc, "stopPodSandbox", { podSandboxId: "x" }), code(grpc));
    }
  });

  it("status answers carry the backend's status and verbose info", async () => {
    const podStatus = { id: "pod-1", state: PodSandboxState.SANDBOX_READY } as PodSandboxStatus;
    const ctrStatus = { id: "c-1", state: ContainerState.CONTAINER_EXITED, exitCode: 3 } as ContainerStatus;
    const verbose: boolean[] = [];
    const svc = service(
      fakeSandboxes({
        status: async (_id, v) => {
          verbose.push(v);
          const info: Record<string, string> = v ? { info: '{"pid":7}' } : {};
          return { status: podStatus, info };
        },
      }),
      fakeContainers({ status: async () => ({ status: ctrStatus, info: {} }) }),
    );
    const pod = (await call(svc, "podSandboxStatus", { podSandboxId: "pod", verbose: true })) as {
      status: PodSandboxStatus;
      info: Record<string, string>;
    };
    assert.equal(pod.status.id, "pod-1");
    assert.deepEqual(pod.info, { info: '{"pid":7}' });
    assert.deepEqual(verbose, [true]);
    const ctr = (await call(svc, "containerStatus", { containerId: "c" })) as { status: ContainerStatus };
    assert.equal(ctr.status.exitCode, 3);
  });

  it("ExecSync: a negative timeout is refused, a timed-out command is DEADLINE_EXCEEDED", async () => {
    const svc = service(
      fakeSandboxes(),
      fakeContainers({
        execSync: async (_id, cmd) =>
          cmd[0] === "slow"
            ? { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), exitCode: -1, timedOut: true }
            : { stdout: Buffer.from("out"), stderr: Buffer.alloc(0), exitCode: 2, timedOut: false },
      }),
    );
    await assert.rejects(
      call(svc, "execSync", { containerId: "c", cmd: ["x"], timeout: -1n }),
      code(status.INVALID_ARGUMENT),
    );
    await assert.rejects(
      call(svc, "execSync", { containerId: "c", cmd: ["slow"], timeout: 1n }),
      code(status.DEADLINE_EXCEEDED),
    );
    const ok = (await call(svc, "execSync", { containerId: "c", cmd: ["x"], timeout: 0n })) as {
      exitCode: number;
    };
    assert.equal(ok.exitCode, 2);
  });

  it("Attach: stdin of a container without stdin is refused; a TTY has no stderr", async () => {
    const svc = service(
      fakeSandboxes(),
      fakeContainers({
        streamTarget: async (id) => ({
          id: `${id}-full`,
          stdio: { tty: id === "tty", stdin: id === "tty", stdinOnce: false },
        }),
      }),
    );
    await assert.rejects(
      call(svc, "attach", { containerId: "plain", stdin: true, stdout: true }),
      code(status.FAILED_PRECONDITION),
    );
    const res = (await call(svc, "attach", {
      containerId: "tty",
      stdin: true,
      stdout: true,
      stderr: true,
    })) as {
      url: string;
    };
    assert.match(res.url, /^http:\/\/127\.0\.0\.1:\d+\/attach\//);
    // stderr with a TTY would be refused by the streaming server's validation if passed on.
  });

  it("PortForward: the backend decides which pod may be reached", async () => {
    const svc = service(
      fakeSandboxes({
        portForwardTarget: async (id) => {
          if (id !== "ready") throw failedPrecondition("not ready");
          return "ready-full";
        },
      }),
      fakeContainers(),
    );
    await assert.rejects(
      call(svc, "portForward", { podSandboxId: "stopped", port: [80] }),
      code(status.FAILED_PRECONDITION),
    );
    const res = (await call(svc, "portForward", { podSandboxId: "ready", port: [80] })) as { url: string };
    assert.match(res.url, /\/portforward\//);
  });

  it("Status reports the network condition; CheckpointContainer reaches the backend", async () => {
    const asked: unknown[] = [];
    const svc = service(
      fakeSandboxes({
        networkStatus: async () => ({ ready: false, reason: "NoConfig", message: "no CNI config" }),
      }),
      fakeContainers({
        checkpoint: async (id, location, timeoutSec) => {
          asked.push([id, location, timeoutSec]);
          if (!location.startsWith("/")) throw invalidArgument("not absolute");
        },
      }),
    );
    const res = (await call(svc, "status", {})) as {
      status: { conditions: Array<{ type: string; status: boolean; reason: string }> };
    };
    const net = res.status.conditions.find((c) => c.type === "NetworkReady");
    assert.deepEqual([net?.status, net?.reason], [false, "NoConfig"]);
    await call(svc, "checkpointContainer", { containerId: "c", location: "/tmp/c.tar", timeout: 7 });
    await assert.rejects(
      call(svc, "checkpointContainer", { containerId: "c", location: "c.tar", timeout: 0 }),
      code(status.INVALID_ARGUMENT),
    );
    assert.deepEqual(asked, [
      ["c", "/tmp/c.tar", 7],
      ["c", "c.tar", 0],
    ]);
  });

  it("lists pass the filter through", async () => {
    const filters: unknown[] = [];
    const svc = service(
      fakeSandboxes({
        list: async (f) => {
          filters.push(f);
          return [];
        },
      }),
      fakeContainers({
        list: async (f) => {
          filters.push(f);
          return [];
        },
      }),
    );
    await call(svc, "listPodSandbox", { filter: { id: "ab", labelSelector: { a: "b" } } });
    await call(svc, "listContainers", { filter: { podSandboxId: "cd", labelSelector: {} } });
    assert.deepEqual(filters, [
      { id: "ab", labelSelector: { a: "b" } },
      { podSandboxId: "cd", labelSelector: {} },
    ]);
  });
});
