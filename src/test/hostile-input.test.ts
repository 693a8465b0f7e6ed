/**
 * Hostile CRI requests against a real berthd, one group per RPC group: each is refused with the
 * right code, and leaves nothing behind (mounts under berthd's dirs, pod directories, pinned
 * namespaces, conmon processes, files outside the log directory). Pins the cases found by a
 * probe of the daemon, and the ones that were already right, so they stay right.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import {
  ContainerConfig,
  type DeepPartial,
  NamespaceMode,
  PodSandboxConfig,
  type Protocol,
} from "../api/gen/runtime/v1/api.js";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { execSync, runtimeClient } from "./harness/cri.js";
import { startPodSuite, stopPodSuite } from "./harness/pod-env.js";
import { processesWithArgs } from "./harness/processes.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const run = promisify(execFile);
const BRIDGE = "berthhi0";
const SUBNET = "10.248.0.0/24";

const HOST_NS = { linux: { securityContext: { namespaceOptions: { network: 2, pid: 1, ipc: 0 } } } };

describe("hostile input", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let dir: string;
  let rt: ReturnType<typeof runtimeClient>;
  const image = "docker.io/berth/busybox:hostile";
  let seq = 0;

  const podConfig = (over: DeepPartial<PodSandboxConfig> = {}) => {
    const name = `p${++seq}`;
    return PodSandboxConfig.fromPartial({
      metadata: { name, namespace: "hostile", uid: `uid-${name}`, attempt: 0 },
      logDirectory: join(dir, "logs", name),
      ...over,
    });
  };
  const runPod = async (config: PodSandboxConfig) =>
    (await rt.call<{ podSandboxId: string }>("runPodSandbox", { config })).podSandboxId;
  const createContainer = async (podSandboxId: string, over: DeepPartial<ContainerConfig> = {}) => {
    const config = ContainerConfig.fromPartial({
      metadata: { name: `c${++seq}` },
      image: { image },
      command: ["sleep", "1000"],
      logPath: `c${seq}.log`,
      ...over,
    });
    return (await rt.call<{ containerId: string }>("createContainer", { podSandboxId, config })).containerId;
  };
  const rejects = async (p: Promise<unknown>, code: status, message?: RegExp) =>
    assert.rejects(p, (err: { code: number; details: string }) => {
      assert.equal(err.code, code, `${status[code]} expected, got ${status[err.code]}: ${err.details}`);
      if (message) assert.match(err.details, message);
      return true;
    });

  /** What a refused request must not leave: berthd's mounts, pod dirs, pins, monitors. */
  const traces = async () => {
    const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
      .split("\n")
      .map((l) => l.split(" ")[4] ?? "")
      .filter((m) => m.startsWith(`${berthd.dir}/`) && !m.endsWith("/state/ns"))
      .sort();
    const podDirs = (await readdir(join(berthd.dir, "state", "pods")).catch(() => [])).sort();
    const pins: string[] = [];
    for (const kind of ["net", "ipc", "uts"]) {
      for (const f of await readdir(join(berthd.dir, "state", "ns", kind)).catch(() => []))
        pins.push(`${kind}/${f}`);
    }
    const { stdout } = await run("ps", ["-eo", "args"]);
    const monitors = stdout
      .split("\n")
      .filter((l) => l.startsWith("/usr/bin/conmon") && l.includes(berthd.dir));
    return { mounts, podDirs, pins: pins.sort(), monitors: monitors.length };
  };
  const leavesNothing = async (what: () => Promise<unknown>) => {
    const before = await traces();
    await what();
    assert.deepEqual(await traces(), before);
  };

  let pod: string; // a host-network pod for the container cases

  before(async () => {
    ({ dir, berthd, rt } = await startPodSuite(
      "berth-hostile-",
      { name: "berth-hostile", bridge: BRIDGE, subnet: SUBNET },
      image,
    ));
    pod = await runPod(podConfig(HOST_NS));
  });

  after(() => stopPodSuite({ dir, berthd, rt }, BRIDGE));

  describe("RunPodSandbox", () => {
    it("refuses before creating anything: CNI_ARGS, sysctls, ports, DNS, hostname, enums", async () => {
      const bad: Array<[string, DeepPartial<PodSandboxConfig>]> = [
        ["namespace breaking CNI_ARGS", { metadata: { name: "x", namespace: "a;K8S_POD_NAME=x", uid: "u" } }],
        ["sysctl not namespaced", { linux: { sysctls: { "kernel.panic": "1" } } }],
        ["sysctl value with a newline", { linux: { sysctls: { "net.ipv4.ip_forward": "1\n0" } } }],
        ["host port 70000", { portMappings: [{ containerPort: 80, hostPort: 70000 }] }],
        ["negative container port", { portMappings: [{ containerPort: -1, hostPort: 8080 }] }],
        ["protocol 7", { portMappings: [{ containerPort: 80, hostPort: 8080, protocol: 7 as Protocol }] }],
        ["host IP not an IP", { portMappings: [{ containerPort: 80, hostPort: 8080, hostIp: "evil" }] }],
        ["DNS server not an IP", { dnsConfig: { servers: ["notanip"] } }],
        ["DNS search injecting a server", { dnsConfig: { searches: ["a.com\nnameserver 6.6.6.6"] } }],
        ["DNS option injecting a server", { dnsConfig: { options: ["ndots:5\nnameserver 7.7.7.7"] } }],
        ["hostname with a hosts line", { hostname: "ok\n1.2.3.4 evil.example" }],
        ["host-network hostname with a hosts line", { hostname: "ok\n1.2.3.4 evil", ...HOST_NS }],
        ["host-network 10 000-character hostname", { hostname: "h".repeat(10_000), ...HOST_NS }],
        ["relative log directory", { logDirectory: "relative-logs" }],
        [
          "network mode 99",
          { linux: { securityContext: { namespaceOptions: { network: 99 as NamespaceMode } } } },
        ],
        ["pid mode 99", { linux: { securityContext: { namespaceOptions: { pid: 99 as NamespaceMode } } } }],
        [
          "pid mode TARGET",
          { linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.TARGET } } } },
        ],
        ["relative cgroup parent", { linux: { cgroupParent: "kubepods" } }],
        ["300 KiB annotation", { annotations: { big: "x".repeat(300 * 1024) } }],
        ["NUL in a label", { labels: { a: "b\0c" } }],
      ];
      for (const [what, over] of bad) {
        await leavesNothing(async () => {
          const cfg = podConfig(over);
          await rejects(runPod(cfg), status.INVALID_ARGUMENT);
          const { items } = await rt.call<{ items: Array<{ metadata: { name: string } }> }>(
            "listPodSandbox",
            {},
          );
          assert.ok(!items.some((p) => p.metadata.name === cfg.metadata?.name), what);
        });
      }
      await assert.rejects(stat(join(process.cwd(), "relative-logs")), "no log directory in berthd's cwd");
    });

    it("a pod with big (allowed) annotations does not stop ListPodSandbox for anyone", async () => {
      const big = { a: "x".repeat(120 * 1024), b: "y".repeat(120 * 1024) };
      const id = await runPod(podConfig({ annotations: big, ...HOST_NS }));
      const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {});
      assert.ok(items.some((p) => p.id === id));
      await rt.call("removePodSandbox", { podSandboxId: id });
    });

    it("sweeps pod files and namespace pins that no pod owns at start-up", async () => {
      const orphan = "0".repeat(64);
      await mkdir(join(berthd.dir, "state", "pods", orphan), { recursive: true });
      await writeFile(join(berthd.dir, "state", "pods", orphan, "hosts"), "");
      await mkdir(join(berthd.dir, "state", "ns", "uts"), { recursive: true });
      await writeFile(join(berthd.dir, "state", "ns", "uts", orphan), "");
      await berthd.kill("SIGKILL");
      await berthd.launch();
      rt.client.close();
      rt = runtimeClient(berthd.socket);
      // Version is answered before recovery; any other call waits for it.
      await rt.call("listPodSandbox", {});
      assert.ok(!(await readdir(join(berthd.dir, "state", "pods"))).includes(orphan));
      assert.ok(!(await readdir(join(berthd.dir, "state", "ns", "uts"))).includes(orphan));
      // The live pod is untouched.
      const st = await rt.call<{ status: { state: number } }>("podSandboxStatus", { podSandboxId: pod });
      assert.equal(st.status.state, 0 /* SANDBOX_READY */);
    });
  });

  describe("CreateContainer", () => {
    it("keeps the log inside the pod's log directory", async () => {
      const logDir = join(dir, "logs", `p${seq + 1}`);
      const p = await runPod(podConfig(HOST_NS));
      await mkdir(logDir, { recursive: true });
      const victim = join(dir, "victim.txt");
      await writeFile(victim, "untouched\n");
      await mkdir(join(dir, "elsewhere"));
      await symlink(join(dir, "elsewhere"), join(logDir, "link"));
      await mkdir(join(logDir, "adir.log"));
      for (const logPath of [
        "../../escape.log",
        "sub/../../../x/y.log",
        "../../victim.txt",
        "/etc/pwned.log",
        "link/c.log",
        "adir.log",
        "..",
      ]) {
        await leavesNothing(() => rejects(createContainer(p, { logPath }), status.INVALID_ARGUMENT));
      }
      await assert.rejects(stat(join(dir, "escape.log")));
      await assert.rejects(stat(join(dir, "x")));
      assert.equal(await readFile(victim, "utf8"), "untouched\n");
      assert.deepEqual(await readdir(join(dir, "elsewhere")), []);
      // A normal nested path is fine.
      const ok = await createContainer(p, { logPath: "nested/dir/c.log" });
      await rt.call("startContainer", { containerId: ok });
      await stat(join(logDir, "nested", "dir", "c.log"));
    });

    it("refuses bad names, resources and sizes with INVALID_ARGUMENT", async () => {
      const bad: Array<[string, DeepPartial<ContainerConfig>]> = [
        ["NUL in the name", { metadata: { name: "a\0b" } }],
        ["newline in the name", { metadata: { name: "a\nb" } }],
        ["cpuset injection", { linux: { resources: { cpusetCpus: "abc;rm" } } }],
        ["cpu quota 1 with period 0", { linux: { resources: { cpuQuota: 1n, cpuPeriod: 0n } } }],
        ["negative cpu quota", { linux: { resources: { cpuQuota: -5n } } }],
        [
          "memory limit 2^63 (wraps negative)",
          { linux: { resources: { memoryLimitInBytes: -(2n ** 63n) } } },
        ],
        ["cpu shares 1", { linux: { resources: { cpuShares: 1n } } }],
        ["NUL in an argument", { command: ["sh", "-c", "echo\0x"] }],
        ["env name with '='", { envs: [{ key: "A=B", value: "c" }] }],
        ["300 KiB annotation", { annotations: { big: "x".repeat(300 * 1024) } }],
        [
          "5000 mounts",
          { mounts: Array.from({ length: 5000 }, () => ({ containerPath: "/m", hostPath: "/tmp" })) },
        ],
      ];
      for (const [what, over] of bad) {
        await leavesNothing(() =>
          rejects(createContainer(pod, over), status.INVALID_ARGUMENT).catch((err: Error) => {
            throw new Error(`${what}: ${err.message}`);
          }),
        );
      }
    });

    it("racing RemovePodSandbox answers NOT_FOUND or FAILED_PRECONDITION, never INTERNAL", async () => {
      for (let i = 0; i < 4; i++) {
        const p = await runPod(podConfig(HOST_NS));
        const create = createContainer(p).then(
          () => status.OK,
          (err: { code: number }) => err.code,
        );
        await rt.call("stopPodSandbox", { podSandboxId: p });
        await rt.call("removePodSandbox", { podSandboxId: p });
        const code = await create;
        assert.ok(
          [status.OK, status.NOT_FOUND, status.FAILED_PRECONDITION].includes(code),
          `CreateContainer answered ${status[code]}`,
        );
      }
      const { containers } = await rt.call<{ containers: Array<{ podSandboxId: string }> }>(
        "listContainers",
        {},
      );
      const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {});
      for (const c of containers)
        assert.ok(
          items.some((p) => p.id === c.podSandboxId),
          "no orphan container",
        );
    });
  });

  describe("ExecSync", () => {
    it("answers a timeout even when a child holds the output; huge timeouts are clamped", async () => {
      const c = await createContainer(pod);
      await rt.call("startContainer", { containerId: c });
      // The child holds the output for an hour: waiting for it would hang the suite, not pass.
      await rejects(
        rt.call("execSync", { containerId: c, cmd: ["sh", "-c", "sleep 3600 & wait; echo x"], timeout: 1 }),
        status.DEADLINE_EXCEEDED,
      );
      assert.deepEqual(await processesWithArgs(["sleep", "3600"]), [], "the exec's process tree was killed");
      const r = await execSync(rt, c, ["echo", "hi"], 2147484);
      assert.equal(r.stdout, "hi\n");
      await rejects(
        rt.call("execSync", { containerId: c, cmd: ["echo", "hi"], timeout: -1 }),
        status.INVALID_ARGUMENT,
      );
      await rejects(rt.call("execSync", { containerId: c, cmd: ["echo", "a\0b"] }), status.INVALID_ARGUMENT);
    });
  });

  describe("stop and remove", () => {
    it("refuse empty and ambiguous ids; an unknown id is OK (idempotent)", async () => {
      // Pods until two ids share a first character (at most 17 by pigeonhole).
      const ids: string[] = [];
      let prefix = "";
      while (prefix === "") {
        const id = await runPod(podConfig(HOST_NS));
        prefix = ids.find((other) => other[0] === id[0])?.[0] ?? "";
        ids.push(id);
      }
      for (const rpc of ["stopPodSandbox", "removePodSandbox"]) {
        await rejects(rt.call(rpc, { podSandboxId: "" }), status.INVALID_ARGUMENT);
        await rejects(rt.call(rpc, { podSandboxId: prefix }), status.INVALID_ARGUMENT, /ambiguous/);
        await rt.call(rpc, { podSandboxId: "f".repeat(64) });
      }
      const cs: string[] = [];
      let cprefix = "";
      while (cprefix === "") {
        const id = await createContainer(pod);
        cprefix = cs.find((other) => other[0] === id[0])?.[0] ?? "";
        cs.push(id);
      }
      for (const rpc of ["stopContainer", "removeContainer"]) {
        await rejects(rt.call(rpc, { containerId: "" }), status.INVALID_ARGUMENT);
        await rejects(rt.call(rpc, { containerId: cprefix }), status.INVALID_ARGUMENT, /ambiguous/);
        await rt.call(rpc, { containerId: "f".repeat(64) });
      }
      // Nothing was stopped or removed by the refused calls.
      const { items } = await rt.call<{ items: Array<{ id: string; state: number }> }>("listPodSandbox", {});
      for (const id of ids) assert.equal(items.find((p) => p.id === id)?.state, 0);
      for (const id of ids) await rt.call("removePodSandbox", { podSandboxId: id });
    });
  });
});
