/**
 * Pods of a sandbox RuntimeClass handler (gVisor's runsc) against a real berthd: one sandbox
 * per pod started by the pod's root container, two containers in it talking over localhost, the
 * pod IP from CNI, exec, logs, exit codes, the errors for what gVisor cannot do, and stop/remove
 * leaving no runsc process, state, cgroup or mount behind.
 * The handler runs gVisor's own network stack (runsc's default --network=sandbox), which takes
 * the pod's CNI interface from its network namespace.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import {
  ContainerConfig,
  type DeepPartial,
  NamespaceMode,
  PodSandboxConfig,
} from "../api/gen/runtime/v1/api.js";
import { type ContainerStatusView, execSync, parseCriLog, waitExited } from "./harness/cri.js";
import { httpGet, type PodSuite, startPodSuite, stopPodSuite } from "./harness/pod-env.js";
import { needsRoot } from "./harness/skip.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const run = promisify(execFile);
const RUNSC = "/usr/bin/runsc";
const BRIDGE = "berthgv0";
const SUBNET = "10.241.0.0/16";
const HANDLER = "runsc";

/** Why the suite cannot run here: not root, no runsc, or a runsc that cannot start a sandbox. */
async function skipReason(): Promise<string | undefined> {
  const root = needsRoot("runs gVisor sandboxes");
  if (root) return root;
  if (!existsSync(RUNSC)) return `needs gVisor's runsc at ${RUNSC} (Debian: apt-get install runsc)`;
  try {
    await run(RUNSC, ["--network=none", "do", "/bin/true"], { timeout: 30_000, cwd: "/tmp" });
  } catch (err) {
    return `runsc cannot run a sandbox here: ${(err as Error).message.split("\n")[0]}`;
  }
  return undefined;
}

const reason = await skipReason();
if (reason) console.log(`# skipping the gVisor suite: ${reason}`);

describe("gVisor (runsc) sandbox handler", { skip: reason ?? false, timeout: SUITE_TIMEOUT_MS }, () => {
  let s: PodSuite;
  const image = "docker.io/berth/busybox:gvisor";
  const runscRoot = () => join(s.dir, "runsc");

  before(async () => {
    s = await startPodSuite(
      "berth-gvisor-",
      { name: "berth-gvisor", bridge: BRIDGE, subnet: SUBNET },
      image,
      (dir) =>
        `[runtime.handlers.${HANDLER}]\nruntime_path = "${RUNSC}"\nruntime_root = "${dir}/runsc"\n` +
        `runtime_type = "sandbox"\nruntime_args = ["--platform=ptrace"]\n`,
    );
  });
  after(() => stopPodSuite(s, BRIDGE));

  const podConfig = (name: string, over: DeepPartial<PodSandboxConfig> = {}) =>
    PodSandboxConfig.fromPartial({
      metadata: { name, namespace: "gvisor-test", uid: `uid-${name}`, attempt: 0 },
      hostname: name,
      logDirectory: join(s.dir, "logs", name),
      ...over,
    });
  const runPod = async (config: PodSandboxConfig) =>
    (await s.rt.call<{ podSandboxId: string }>("runPodSandbox", { config, runtimeHandler: HANDLER }))
      .podSandboxId;
  const create = async (
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
    return (
      await s.rt.call<{ containerId: string }>("createContainer", { podSandboxId, config, sandboxConfig })
    ).containerId;
  };
  const startNew = async (
    podSandboxId: string,
    sandboxConfig: PodSandboxConfig,
    name: string,
    command: string[],
  ) => {
    const containerId = await create(podSandboxId, sandboxConfig, name, command);
    await s.rt.call("startContainer", { containerId });
    return containerId;
  };
  const logOf = async (st: ContainerStatusView) => parseCriLog(await readFile(st.logPath)).stdout.toString();
  const runscProcesses = async () => {
    const found: string[] = [];
    for (const p of await readdir("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      const cmd = (await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "")).replace(/\0/g, " ");
      if (cmd.includes(`--root=${runscRoot()}`)) found.push(`${p}: ${cmd}`);
    }
    return found;
  };

  it("runs a pod's containers in one sandbox: localhost between them, pod IP, exec, logs, exit codes", async () => {
    const config = podConfig("web");
    const pod = await runPod(config);
    const server = await startNew(pod, config, "server", [
      "sh",
      "-c",
      "mkdir -p /www && echo hello-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    const client = await startNew(pod, config, "client", [
      "sh",
      "-c",
      "for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/ && break; sleep 0.2; done; echo client-done; exec sleep 3600",
    ]);

    // One sandbox for the pod: the app containers run in the root container's sandbox process.
    const sandbox = await s.rt.call<{ info: Record<string, string> }>("podSandboxStatus", {
      podSandboxId: pod,
      verbose: true,
    });
    const podPid = JSON.parse(sandbox.info["info"] ?? "{}").pid as number;
    assert.ok(podPid > 0, "the pod's root container runs");
    for (const id of [server, client]) {
      const st = await s.rt.call<{ info: Record<string, string> }>("containerStatus", {
        containerId: id,
        verbose: true,
      });
      const info = JSON.parse(st.info["info"] ?? "{}") as { pid: number; runtimeType: string };
      assert.equal(info.pid, podPid, "every container of the pod runs in the pod's sandbox");
      assert.equal(info.runtimeType, "sandbox");
    }

    // Exec runs inside gVisor (its kernel log says so), with the command's exit code.
    const dmesg = await execSync(s.rt, server, ["dmesg"]);
    assert.match(dmesg.stdout, /gVisor/);
    assert.equal((await execSync(s.rt, server, ["cat", "/www/index.html"])).stdout, "hello-from-server\n");
    assert.equal((await execSync(s.rt, server, ["sh", "-c", "exit 3"])).exitCode, 3);
    assert.equal((await execSync(s.rt, client, ["hostname"])).stdout.trim(), "web");

    // The client reached the server over the pod's localhost; its output is in its CRI log.
    const deadline = Date.now() + 30_000;
    let clientLog = "";
    while (!clientLog.includes("client-done") && Date.now() < deadline) {
      clientLog = await logOf(
        (await s.rt.call<{ status: ContainerStatusView }>("containerStatus", { containerId: client })).status,
      );
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(clientLog, /hello-from-server\nclient-done\n/);

    // The pod's CNI address reaches the sandbox from the host.
    const st = await s.rt.call<{ status: { network: { ip: string } } }>("podSandboxStatus", {
      podSandboxId: pod,
    });
    assert.match(st.status.network.ip, /^10\.241\./);
    assert.equal(await httpGet(`http://${st.status.network.ip}:8080/`), "hello-from-server\n");

    // Stats come from the sandbox's cgroup.
    const stats = await s.rt.call<{ stats: { cpu?: { usageCoreNanoSeconds?: { value: bigint } } } }>(
      "containerStats",
      { containerId: server },
    );
    assert.ok((stats.stats.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n, "the sandbox's CPU time");

    // A container's exit code is its own; the sandbox and its siblings go on.
    const quitter = await startNew(pod, config, "quitter", ["sh", "-c", "echo bye; exit 7"]);
    const exited = await waitExited(s.rt, quitter);
    assert.equal(exited.exitCode, 7);
    assert.equal(await logOf(exited), "bye\n");
    assert.equal((await execSync(s.rt, server, ["true"])).exitCode, 0);

    // A container with stdin keeps it open (attach writes to it): it does not read EOF at once.
    const reader = await create(pod, config, "reader", ["sh", "-c", "read x; echo got $x"], { stdin: true });
    await s.rt.call("startContainer", { containerId: reader });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(
      (await s.rt.call<{ status: ContainerStatusView }>("containerStatus", { containerId: reader })).status
        .state,
      1,
    );

    // Stop: the container's stop signal ends it (exit code from the signal).
    await s.rt.call("stopContainer", { containerId: client, timeout: 10 });
    assert.equal((await waitExited(s.rt, client)).exitCode, 143);

    await s.rt.call("stopPodSandbox", { podSandboxId: pod });
    await s.rt.call("removePodSandbox", { podSandboxId: pod });
    assert.deepEqual(await runscProcesses(), [], "no runsc process (sandbox, gofer, waiter) is left");
    assert.deepEqual(await readdir(runscRoot()).catch(() => []), [], "runsc's state dir is empty");
    const cgroups = await readdir("/sys/fs/cgroup/memory").catch(() => [] as string[]);
    for (const id of [pod, server, client, quitter]) {
      assert.ok(!cgroups.includes(`berth-${id}`), `cgroup berth-${id} is gone`);
    }
    const mounts = await readFile("/proc/self/mountinfo", "utf8");
    assert.ok(!mounts.includes(pod), "no mount of the pod is left");
  });

  it("what gVisor cannot do is an error naming the handler", async () => {
    const hostPid = podConfig("hostpid", {
      linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.NODE } } },
    });
    await assert.rejects(runPod(hostPid), (err: { code: number; details: string }) => {
      assert.equal(err.code, status.INVALID_ARGUMENT);
      assert.match(err.details, /runtime handler "runsc" .*host's PID namespace/);
      return true;
    });
    const config = podConfig("update");
    const pod = await runPod(config);
    const c = await startNew(pod, config, "sleeper", ["sleep", "3600"]);
    await assert.rejects(
      s.rt.call("updateContainerResources", {
        containerId: c,
        linux: { memoryLimitInBytes: 64 * 1024 * 1024 },
      }),
      (err: { code: number; details: string }) => {
        assert.equal(err.code, status.UNIMPLEMENTED);
        assert.match(err.details, /runtime handler "runsc"/);
        return true;
      },
    );
    // A container created and never started goes away with its pod too.
    await create(pod, config, "never-started", ["true"]);
    await s.rt.call("stopPodSandbox", { podSandboxId: pod });
    await s.rt.call("removePodSandbox", { podSandboxId: pod });
    assert.deepEqual(await runscProcesses(), []);
  });
});
