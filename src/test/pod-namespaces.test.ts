/**
 * Pod-level namespace semantics against a real berthd (what critest's NamespaceOption, host
 * network and seccomp specs check, pinned here): the pod's init as PID 1 of a shared pid
 * namespace, the pod's options deciding a container's network/IPC namespaces, the node's
 * hostname for pods that name none, and no seccomp filter unless one is asked for.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import {
  ContainerConfig,
  ContainerState,
  type DeepPartial,
  NamespaceMode,
  PodSandboxConfig,
  PodSandboxState,
} from "../api/gen/runtime/v1/api.js";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { containerStatus, execSync, runtimeClient, waitExited } from "./harness/cri.js";
import { startPodSuite, stopPodSuite } from "./harness/pod-env.js";
import { processesWithArgs } from "./harness/processes.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const _run = promisify(execFile);
const BRIDGE = "berthns0";
const SUBNET = "10.252.0.0/24";
const PAUSE = ["/pause"];

describe("pod namespaces", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let dir: string;
  let rt: ReturnType<typeof runtimeClient>;
  const image = "docker.io/berth/busybox:ns";

  const podConfig = (name: string, over: DeepPartial<PodSandboxConfig> = {}) =>
    PodSandboxConfig.fromPartial({
      metadata: { name, namespace: "ns-test", uid: `uid-${name}`, attempt: 0 },
      logDirectory: join(dir, "logs", name),
      ...over,
    });
  const withNs = (network: NamespaceMode, pid: NamespaceMode, ipc: NamespaceMode) => ({
    linux: { securityContext: { namespaceOptions: { network, pid, ipc } } },
  });
  const runPod = async (config: PodSandboxConfig) =>
    (await rt.call<{ podSandboxId: string }>("runPodSandbox", { config })).podSandboxId;
  const startContainer = async (
    podSandboxId: string,
    sandboxConfig: PodSandboxConfig,
    name: string,
    command: string[],
    over: DeepPartial<ContainerConfig> = {},
  ) => {
    const config = ContainerConfig.fromPartial({
      metadata: { name },
      image: { image },
      command,
      logPath: `${name}.log`,
      ...over,
    });
    const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
      podSandboxId,
      config,
      sandboxConfig,
    });
    await rt.call("startContainer", { containerId });
    return containerId;
  };
  const out = async (id: string, cmd: string[]) => {
    const r = await execSync(rt, id, cmd);
    assert.equal(r.exitCode, 0, `${cmd.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const pidMode = async (podSandboxId: string) => {
    const st = await rt.call<{ status: { linux: { namespaces: { options: { pid: number } } } } }>(
      "podSandboxStatus",
      { podSandboxId },
    );
    return st.status.linux.namespaces.options.pid;
  };

  before(async () => {
    ({ dir, berthd, rt } = await startPodSuite(
      "berth-podns-",
      { name: "berth-ns", bridge: BRIDGE, subnet: SUBNET },
      image,
    ));
  });

  after(() => stopPodSuite({ dir, berthd, rt }, BRIDGE));

  it("a pod that names no hostname gets the node's; a bad one is refused, leaving no pod", async () => {
    const cfg = podConfig("nohostname");
    const pod = await runPod(cfg);
    const c = await startContainer(pod, cfg, "c", ["sleep", "1000"]);
    assert.equal(await out(c, ["hostname"]), hostname());
    assert.equal(await out(c, ["cat", "/etc/hostname"]), hostname());

    const bad = podConfig("badhostname", { hostname: `x${"y".repeat(70)}` });
    await assert.rejects(runPod(bad), (err: { code: number }) => err.code === status.INVALID_ARGUMENT);
    const { items } = await rt.call<{ items: Array<{ metadata: { name: string } }> }>("listPodSandbox", {});
    assert.ok(!items.some((p) => p.metadata.name === "badhostname"));
  });

  it("shares the pod's pid namespace under its init, which outlives the containers", async () => {
    const cfg = podConfig("sharedpid"); // no namespace_options: pid POD
    const pod = await runPod(cfg);
    assert.equal(await pidMode(pod), NamespaceMode.POD);
    const inits = await processesWithArgs(PAUSE);
    const a = await startContainer(pod, cfg, "a", ["sleep", "1000"]);
    const b = await startContainer(pod, cfg, "b", ["sh", "-c", "sleep 0.3; exit 3"]);
    assert.equal(await out(a, ["cat", "/proc/1/cmdline"]), "/pause\0");
    assert.match(await out(a, ["ps", "-o", "args"]), /sleep 0\.3/, "a sees b's processes");
    // b exits: a, in the same pid namespace, is not taken down with it.
    assert.equal((await waitExited(rt, b)).exitCode, 3);
    assert.equal((await containerStatus(rt, a)).state, ContainerState.CONTAINER_RUNNING);
    assert.equal(await out(a, ["cat", "/proc/1/cmdline"]), "/pause\0");

    // A berthd crash and restart: the init (under conmon) lives on, and new containers join it.
    await berthd.kill("SIGKILL");
    await berthd.launch();
    rt.client.close();
    rt = runtimeClient(berthd.socket);
    const st = await rt.call<{ status: { state: number } }>("podSandboxStatus", { podSandboxId: pod });
    assert.equal(st.status.state, PodSandboxState.SANDBOX_READY);
    const c = await startContainer(pod, cfg, "c", ["sleep", "1000"]);
    assert.match(await out(c, ["ps", "-o", "args"]), /sleep 1000/);
    assert.equal(await out(c, ["cat", "/proc/1/cmdline"]), "/pause\0");

    // The init goes with the pod.
    assert.equal((await processesWithArgs(PAUSE)).length, inits.length);
    await rt.call("stopPodSandbox", { podSandboxId: pod });
    await rt.call("removePodSandbox", { podSandboxId: pod });
    assert.equal((await processesWithArgs(PAUSE)).length, inits.length - 1);
  });

  it("a pod with a pid namespace per container has no init", async () => {
    const before = (await processesWithArgs(PAUSE)).length;
    const cfg = podConfig("ownpid", withNs(NamespaceMode.POD, NamespaceMode.CONTAINER, NamespaceMode.POD));
    const pod = await runPod(cfg);
    assert.equal(await pidMode(pod), NamespaceMode.CONTAINER);
    // The container asks for POD: there is no pod pid namespace, so it gets its own.
    const c = await startContainer(pod, cfg, "c", ["sleep", "1000"]);
    assert.equal(await out(c, ["cat", "/proc/1/cmdline"]), "sleep\u00001000\u0000");
    assert.equal((await processesWithArgs(PAUSE)).length, before);
  });

  it("a host-network pod's containers run in the host's network, UTS and IPC namespaces", async () => {
    const cfg = podConfig("hostnet", withNs(NamespaceMode.NODE, NamespaceMode.CONTAINER, NamespaceMode.NODE));
    const pod = await runPod(cfg);
    // The container's own options ask for pod namespaces; the pod's decide.
    const c = await startContainer(pod, cfg, "c", ["sleep", "1000"], {
      linux: {
        securityContext: {
          namespaceOptions: {
            network: NamespaceMode.POD,
            pid: NamespaceMode.CONTAINER,
            ipc: NamespaceMode.POD,
          },
        },
      },
    });
    for (const ns of ["net", "uts", "ipc"]) {
      assert.equal(
        await out(c, ["readlink", `/proc/self/ns/${ns}`]),
        await readlink(`/proc/self/ns/${ns}`),
        ns,
      );
    }
    assert.notEqual(await out(c, ["readlink", "/proc/self/ns/pid"]), await readlink("/proc/self/ns/pid"));
  });

  it("no seccomp filter unless the request names a profile", async () => {
    const cfg = podConfig("seccomp", withNs(NamespaceMode.POD, NamespaceMode.CONTAINER, NamespaceMode.POD));
    const pod = await runPod(cfg);
    const seccompOf = async (id: string) =>
      (await out(id, ["grep", "^Seccomp:", "/proc/self/status"])).replace(/\s+/g, " ");
    const none = await startContainer(pod, cfg, "none", ["sleep", "1000"]);
    assert.equal(await seccompOf(none), "Seccomp: 0");
    const def = await startContainer(pod, cfg, "default", ["sleep", "1000"], {
      linux: { securityContext: { seccomp: { profileType: 0 /* RuntimeDefault */ } } },
    });
    assert.equal(await seccompOf(def), "Seccomp: 2");
  });
});
