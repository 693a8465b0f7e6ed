/** GetContainerEvents: CREATED, STARTED, STOPPED (seen from conmon's exit file), DELETED. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { get } from "node:http";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type ContainerEventResponse,
  ContainerEventType,
  ContainerState,
  GetEventsRequest,
} from "../api/gen/runtime/v1/api.js";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { type RuntimeClient, runtimeClient } from "./harness/cri.js";
import { importBusybox, startPodEnv } from "./harness/pod-env.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

describe("container events", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let rt: RuntimeClient;
  let dir: string;
  const image = "docker.io/berth/busybox:events";

  let metricsPort = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-events-"));
    metricsPort = await freePort();
    berthd = await startPodEnv({ dir, toml: `[metrics]\naddress = "127.0.0.1:${metricsPort}"\n` });
    rt = runtimeClient(berthd.socket);
    await importBusybox(berthd, dir, image);
  });

  after(async () => {
    rt?.client.close();
    await berthd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A host-network pod (no CNI needed) with one created, not yet started, container. */
  const createInHostPod = async (pod: string, container: string, command: string[]) => {
    const podConfig = {
      metadata: { name: pod, namespace: "default", uid: `${pod}-uid`, attempt: 0 },
      logDirectory: join(dir, "logs"),
      linux: { securityContext: { namespaceOptions: { network: 2 /* NODE */ } } },
    };
    const { podSandboxId } = await rt.call<{ podSandboxId: string }>("runPodSandbox", { config: podConfig });
    const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
      podSandboxId,
      config: {
        metadata: { name: container, attempt: 0 },
        image: { image },
        command,
        logPath: `${container}.log`,
      },
      sandboxConfig: podConfig,
    });
    return { podSandboxId, containerId };
  };

  it("streams a container's lifecycle, including an exit nobody asked about", async () => {
    const events: ContainerEventResponse[] = [];
    const stream = berthd.client.runtime.getContainerEvents(GetEventsRequest.fromPartial({}));
    let wake: (() => void) | undefined;
    stream.on("data", (e: ContainerEventResponse) => {
      events.push(e);
      wake?.();
    });
    stream.on("error", () => {});
    const waitFor = async (type: ContainerEventType) => {
      for (let i = 0; i < 300; i++) {
        if (events.some((e) => e.containerEventType === type)) return;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
      throw new Error(`no event ${ContainerEventType[type]}; got ${events.map((e) => e.containerEventType)}`);
    };
    const { podSandboxId, containerId } = await createInHostPod("ev", "short", ["/bin/sh", "-c", "exit 4"]);
    await waitFor(ContainerEventType.CONTAINER_CREATED_EVENT);
    await rt.call("startContainer", { containerId });
    await waitFor(ContainerEventType.CONTAINER_STARTED_EVENT);
    // No ContainerStatus call in between: the exit must be noticed by berthd itself.
    await waitFor(ContainerEventType.CONTAINER_STOPPED_EVENT);
    const stopped = events.find((e) => e.containerEventType === ContainerEventType.CONTAINER_STOPPED_EVENT);
    assert.equal(stopped?.containerId, containerId);
    assert.equal(stopped?.containersStatuses[0]?.state, ContainerState.CONTAINER_EXITED);
    assert.equal(stopped?.containersStatuses[0]?.exitCode, 4);
    assert.equal(stopped?.podSandboxStatus?.id, podSandboxId);
    await rt.call("removePodSandbox", { podSandboxId });
    await waitFor(ContainerEventType.CONTAINER_DELETED_EVENT);
    assert.deepEqual(
      events.filter((e) => e.containerId === containerId).map((e) => e.containerEventType),
      [
        ContainerEventType.CONTAINER_CREATED_EVENT,
        ContainerEventType.CONTAINER_STARTED_EVENT,
        ContainerEventType.CONTAINER_STOPPED_EVENT,
        ContainerEventType.CONTAINER_DELETED_EVENT,
      ],
    );
    stream.cancel();
  });

  it("records the start-up timeline and serves Prometheus metrics", async () => {
    const { podSandboxId, containerId } = await createInHostPod("tl", "t", ["/bin/sleep", "60"]);
    await rt.call("startContainer", { containerId });
    const pod = await rt.call<{ info: Record<string, string> }>("podSandboxStatus", {
      podSandboxId,
      verbose: true,
    });
    const podPhases = (JSON.parse(pod.info["info"] ?? "{}").timeline as Array<{ phase: string }>).map(
      (p) => p.phase,
    );
    assert.deepEqual(podPhases, ["files", "namespaces", "init"]);
    const ctr = await rt.call<{ info: Record<string, string> }>("containerStatus", {
      containerId,
      verbose: true,
    });
    const ctrPhases = JSON.parse(ctr.info["info"] ?? "{}").timeline as Array<{
      phase: string;
      durationMs: number;
    }>;
    assert.deepEqual(
      ctrPhases.map((p) => p.phase),
      ["image_config", "mount_sources", "rootfs", "spec", "runtime_create", "runtime_start"],
    );
    assert.ok(ctrPhases.every((p) => p.durationMs >= 0));
    const text = await new Promise<string>((resolve, reject) => {
      get(`http://127.0.0.1:${metricsPort}/metrics`, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve(body));
      }).on("error", reject);
    });
    assert.match(text, /berth_cri_requests_total\{method="RunPodSandbox",code="OK"\} [1-9]/);
    assert.match(text, /berth_cri_request_duration_seconds_count\{method="CreateContainer"\} [1-9]/);
    assert.match(
      text,
      /berth_startup_phase_duration_seconds_count\{object="container",phase="runtime_create"\} [1-9]/,
    );
    assert.match(text, /berth_containers\{state="running"\} 1/);
    assert.match(text, /process_resident_memory_bytes \d+/);
    await rt.call("removePodSandbox", { podSandboxId });
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}
