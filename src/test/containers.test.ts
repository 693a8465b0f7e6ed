/**
 * Containers end to end against a real berthd (conmon + runc, CNI bridge, overlay rootfs):
 * localhost shared by a pod's containers, host port mappings, users / groups / capabilities,
 * read-only rootfs and no_new_privs, the CRI log format (partial and long lines, stderr), OOM
 * kills, a container exiting while berthd is down, bad requests, and live resource updates.
 * Uses a test-only bridge (berthco0) and subnet (10.247.0.0/24); removes everything it made.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { ContainerState, Protocol } from "../api/gen/runtime/v1/api.js";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { busyboxEntries, busyboxLayer } from "../tools/busybox-image.js";
import { buildImage, buildLayer, ociArchive } from "../tools/oci-builder.js";
import {
  containerStatus,
  execSync,
  type GrpcError,
  parseCriLogLines,
  type RuntimeClient,
  removeAllPods,
  runtimeClient,
  sleep,
  waitExited,
} from "./harness/cri.js";
import { httpGet, startPodEnv } from "./harness/pod-env.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const run = promisify(execFile);
const BRIDGE = "berthco0";
const SUBNET = "10.247.0.0/24";
const GATEWAY = "10.247.0.1";
const HOST_PORT = 18081;
const MiB = 1024 * 1024;

const IMAGE = "docker.io/berth/busybox:ct";
/** /etc/passwd with user "app" (1234:2345, also in group "extra" 3456) and config User "1000:1000". */
const USER_IMAGE = "docker.io/berth/busybox-user:ct";

/** Asserts a rejected gRPC call's code, and that its message matches `message` if given. */
function grpcError(code: number, message?: RegExp) {
  return (err: GrpcError) => {
    assert.equal(
      err.code,
      code,
      `expected gRPC code ${status[code]}, got ${status[err.code]}: ${err.details}`,
    );
    if (message) assert.match(err.details, message);
    return true;
  };
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

const capLine = (statusText: string, field: string) =>
  new RegExp(`^${field}:\\s*([0-9a-f]+)$`, "m").exec(statusText)?.[1];

describe("containers", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let dir: string;
  let rt: RuntimeClient;
  let podSeq = 0;

  type PodExtra = Record<string, unknown>;
  interface Pod {
    id: string;
    config: Record<string, unknown>;
  }

  const podConfig = (name: string, extra: PodExtra = {}) => ({
    metadata: { name, namespace: "ct", uid: `uid-${name}-${++podSeq}`, attempt: 0 },
    hostname: name,
    logDirectory: join(dir, "logs", `${name}-${podSeq}`),
    labels: { pod: name },
    ...extra,
  });

  async function runPod(name: string, extra: PodExtra = {}): Promise<Pod> {
    const config = podConfig(name, extra);
    const { podSandboxId } = await rt.call<{ podSandboxId: string }>("runPodSandbox", { config });
    return { id: podSandboxId, config };
  }

  async function removePod(pod: Pod): Promise<void> {
    await rt.call("stopPodSandbox", { podSandboxId: pod.id });
    await rt.call("removePodSandbox", { podSandboxId: pod.id });
  }

  const containerConfig = (name: string, command: string[], extra: Record<string, unknown> = {}) => ({
    metadata: { name, attempt: 0 },
    image: { image: IMAGE },
    command,
    logPath: `${name}.log`,
    labels: { c: name },
    ...extra,
  });

  async function createContainer(
    pod: Pod,
    name: string,
    command: string[],
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
      podSandboxId: pod.id,
      config: containerConfig(name, command, extra),
      sandboxConfig: pod.config,
    });
    return containerId;
  }

  async function startContainer(
    pod: Pod,
    name: string,
    command: string[],
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    const id = await createContainer(pod, name, command, extra);
    await rt.call("startContainer", { containerId: id });
    return id;
  }

  /** Polls the container's CRI log until `done(text)`; returns the text. */
  async function waitLog(logPath: string, done: (text: string) => boolean, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    let text = "";
    for (;;) {
      text = await readFile(logPath, "utf8").catch(() => "");
      if (done(text) || Date.now() > deadline) return text;
      await sleep(100);
    }
  }

  async function listContainers(filter: Record<string, unknown> = {}) {
    const r = await rt.call<{ containers: Array<{ id: string; state: number; metadata: { name: string } }> }>(
      "listContainers",
      { filter },
    );
    return r.containers;
  }

  const runcArgs = () => [`--root=${join(dir, "runc")}`];

  /** The container's init pid on the host, from the runtime's state. */
  async function containerPid(id: string): Promise<number> {
    const { stdout } = await run("runc", [...runcArgs(), "state", id]);
    const pid = (JSON.parse(stdout) as { pid: number }).pid;
    assert.ok(pid > 0, `runc state of ${id} has no pid: ${stdout}`);
    return pid;
  }

  /** /sys/fs/cgroup/<controller><path> of a process (cgroup v1). */
  async function cgroupDir(pid: number, controller: string): Promise<string> {
    const text = await readFile(`/proc/${pid}/cgroup`, "utf8");
    for (const line of text.split("\n")) {
      const [, controllers, path] = line.split(":");
      if (controllers?.split(",").includes(controller))
        return join("/sys/fs/cgroup", controllers, path ?? "");
    }
    throw new Error(`no ${controller} cgroup in /proc/${pid}/cgroup:\n${text}`);
  }

  /** What a failed create could leak: bundle dirs, runtime containers, overlay mounts. */
  async function leftovers() {
    const bundles = await readdir(join(berthd.root, "containers")).catch(() => [] as string[]);
    const { stdout } = await run("runc", [...runcArgs(), "list", "-q"]).catch(() => ({ stdout: "" }));
    const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
      .split("\n")
      .filter((l) => l.split(" ")[4]?.startsWith(join(berthd.root, "containers")));
    return {
      bundles: bundles.sort(),
      runc: stdout.split("\n").filter(Boolean).sort(),
      mounts: mounts.length,
    };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-ct-"));
    berthd = await startPodEnv({ dir, network: { name: "berth-ct", bridge: BRIDGE, subnet: SUBNET } });
    rt = runtimeClient(berthd.socket);

    const plain = buildImage([await busyboxLayer()]);
    const userEntries = (await busyboxEntries()).map((e) => {
      if (e.name === "etc/passwd")
        return { ...e, content: "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/:/bin/sh\n" };
      if (e.name === "etc/group") return { ...e, content: "root:x:0:\nappgrp:x:2345:\nextra:x:3456:app\n" };
      return e;
    });
    const withUser = buildImage([await buildLayer(userEntries)], { config: { User: "1000:1000" } });
    const archive = join(dir, "images.tar");
    await writeFile(
      archive,
      await ociArchive([
        { image: plain, name: IMAGE },
        { image: withUser, name: USER_IMAGE },
      ]),
    );
    await berthd.client.importImage(archive);
  });

  after(async () => {
    // Remove every pod through the runtime; then whatever a failure (or a dead berthd) left.
    if (rt) await removeAllPods(rt);
    rt?.client.close();
    if (dir) {
      const { stdout } = await run("runc", [...runcArgs(), "list", "-q"]).catch(() => ({ stdout: "" }));
      for (const id of stdout.split("\n").filter(Boolean)) {
        await run("runc", [...runcArgs(), "delete", "--force", id]).catch(() => {});
      }
    }
    // BERTH_TEST_LOG=<file> keeps berthd's JSON log lines for a post-mortem.
    if (berthd && process.env["BERTH_TEST_LOG"])
      await writeFile(process.env["BERTH_TEST_LOG"], berthd.output);
    if (berthd) {
      // A berthd stuck in a request may not stop on SIGTERM: SIGKILL it after 20 s.
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        berthd.kill("SIGTERM").then(() => true),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), 20_000);
        }),
      ]);
      clearTimeout(timer);
      if (!stopped) await berthd.kill("SIGKILL");
      await berthd.stop();
    }
    await run("ip", ["link", "del", BRIDGE]).catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("lets a pod's containers talk over localhost", async () => {
    const pod = await runPod("shared");
    await startContainer(pod, "web", [
      "/bin/sh",
      "-c",
      "mkdir -p /www && echo shared-page > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    const client = await startContainer(pod, "client", [
      "/bin/sh",
      "-c",
      "for i in $(seq 1 100); do wget -q -O - http://127.0.0.1:8080/ && break; sleep 0.1; done; exec sleep 3600",
    ]);
    const { logPath } = await containerStatus(rt, client);
    const log = await waitLog(logPath, (t) => t.includes("shared-page"));
    assert.match(log, / stdout F shared-page$/m, `client log:\n${log}`);
    const ex = await execSync(rt, client, ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html"]);
    assert.deepEqual(ex, { stdout: "shared-page\n", stderr: "", exitCode: 0 });
    await removePod(pod);
  });

  it("maps a host port to the pod (reached via the bridge gateway)", async () => {
    const pod = await runPod("ports", {
      portMappings: [{ containerPort: 8080, hostPort: HOST_PORT, protocol: Protocol.TCP }],
    });
    await startContainer(pod, "web", [
      "/bin/sh",
      "-c",
      "mkdir -p /www && echo mapped > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    let body = "";
    let lastErr: unknown;
    for (let i = 0; i < 50 && body === ""; i++) {
      body = await httpGet(`http://${GATEWAY}:${HOST_PORT}/index.html`, 3000).catch((e: unknown) => {
        lastErr = e;
        return "";
      });
      if (body === "") await sleep(100);
    }
    assert.equal(body, "mapped\n", `no answer on ${GATEWAY}:${HOST_PORT}: ${String(lastErr)}`);
    await removePod(pod);
    const { stdout } = await run("iptables-save", ["-t", "nat"]);
    assert.ok(!stdout.includes(`--dport ${HOST_PORT}`), `port mapping rules left behind:\n${stdout}`);
  });

  it("applies users, groups and capabilities", async () => {
    const pod = await runPod("sec");
    const sleeper = ["sleep", "3600"];
    const idOf = async (id: string) => (await execSync(rt, id, ["id"])).stdout.trim();
    const statusOf = async (id: string) =>
      (await execSync(rt, id, ["cat", "/proc/self/status"])).stdout.replace(/\t/g, " ");

    // run_as_user / run_as_group: the init process (log) and exec'd processes.
    const u = await startContainer(pod, "uid1000", ["/bin/sh", "-c", "id; exec sleep 3600"], {
      linux: { securityContext: { runAsUser: { value: 1000 }, runAsGroup: { value: 1000 } } },
    });
    const { logPath } = await containerStatus(rt, u);
    const log = await waitLog(logPath, (t) => t.includes("uid="));
    assert.match(log, / stdout F uid=1000 gid=1000( groups=1000)?$/m, log);
    assert.match(await idOf(u), /^uid=1000 gid=1000( groups=1000)?$/);
    // A non-root process keeps no effective capabilities (none are ambient).
    assert.equal(capLine(await statusOf(u), "CapEff"), "0000000000000000");

    const root = await startContainer(pod, "root", sleeper);
    assert.match(await idOf(root), /^uid=0\(root\) gid=0\(root\)/);
    assert.equal(capLine(await statusOf(root), "CapEff"), "00000000a80425fb");

    const nb = await startContainer(pod, "netbind", sleeper, {
      linux: {
        securityContext: {
          capabilities: { dropCapabilities: ["ALL"], addCapabilities: ["NET_BIND_SERVICE"] },
        },
      },
    });
    const nbStatus = await statusOf(nb);
    assert.equal(capLine(nbStatus, "CapEff"), "0000000000000400");
    assert.equal(capLine(nbStatus, "CapBnd"), "0000000000000400");

    // The image's User when CRI sets none; CRI's user wins over it.
    const img = { image: { image: USER_IMAGE } };
    const iu = await startContainer(pod, "imageuser", sleeper, img);
    assert.match(await idOf(iu), /^uid=1000 gid=1000( groups=1000)?$/);
    const r0 = await startContainer(pod, "imageuser-root", sleeper, {
      ...img,
      linux: { securityContext: { runAsUser: { value: 0 } } },
    });
    assert.match(await idOf(r0), /^uid=0\(root\) gid=0\(root\)/);

    // run_as_username from the image's /etc/passwd, with its /etc/group memberships.
    const byName = await startContainer(pod, "byname", sleeper, {
      ...img,
      linux: { securityContext: { runAsUsername: "app" } },
    });
    const id = await idOf(byName);
    assert.match(id, /^uid=1234\(app\) gid=2345\(appgrp\) groups=/);
    assert.match(id, /3456\(extra\)/);
    await assert.rejects(
      createContainer(pod, "nosuchuser", sleeper, {
        ...img,
        linux: { securityContext: { runAsUsername: "bob" } },
      }),
      grpcError(status.INVALID_ARGUMENT, /bob/),
    );
    await removePod(pod);
  });

  it("honours readonly_rootfs and no_new_privs", async () => {
    const pod = await runPod("ro");
    const ro = await startContainer(pod, "ro", ["sleep", "3600"], {
      linux: { securityContext: { readonlyRootfs: true, noNewPrivs: true } },
    });
    const w = await execSync(rt, ro, ["/bin/sh", "-c", "echo x > /x"]);
    assert.notEqual(w.exitCode, 0);
    assert.match(w.stderr, /Read-only file system/);
    const mounts = (await execSync(rt, ro, ["cat", "/proc/self/mounts"])).stdout;
    assert.match(mounts, /^overlay \/ overlay ro[,\s]/m, mounts);
    // The pod's /dev/shm stays writable.
    assert.equal((await execSync(rt, ro, ["touch", "/dev/shm/ok"])).exitCode, 0);
    const st = (await execSync(rt, ro, ["cat", "/proc/self/status", "/proc/1/status"])).stdout;
    assert.deepEqual(
      st.match(/^NoNewPrivs:\s*(\d)$/gm)?.map((l) => l.slice(-1)),
      ["1", "1"],
    );

    // The same without them: writable, NoNewPrivs 0 (so the checks above can fail).
    const rw = await startContainer(pod, "rw", ["sleep", "3600"]);
    assert.equal((await execSync(rt, rw, ["/bin/sh", "-c", "echo x > /x && cat /x"])).stdout, "x\n");
    const st2 = (await execSync(rt, rw, ["cat", "/proc/self/status"])).stdout;
    assert.match(st2, /^NoNewPrivs:\s*0$/m);
    await removePod(pod);
  });

  it("writes CRI logs: partial lines, stderr, long lines split by conmon", async () => {
    const pod = await runPod("logs");
    const exitedLog = async (id: string) => {
      await waitExited(rt, id);
      const { logPath } = await containerStatus(rt, id);
      return parseCriLogLines(await readFile(logPath, "utf8"));
    };

    // Output without a newline at exit: one partial line, nothing after it.
    const partial = await startContainer(pod, "partial", ["printf", "abc"]);
    const pl = await exitedLog(partial);
    assert.deepEqual(
      pl.map((l) => [l.stream, l.tag, l.content]),
      [["stdout", "P", "abc"]],
    );

    const streams = await startContainer(pod, "streams", [
      "/bin/sh",
      "-c",
      "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2",
    ]);
    const sl = await exitedLog(streams);
    assert.deepEqual(
      sl.map((l) => [l.stream, l.tag, l.content]),
      [
        ["stdout", "F", "out1"],
        ["stderr", "F", "err1"],
        ["stdout", "F", "out2"],
      ],
    );

    // A 40000-byte line: conmon reads 8 KiB at a time, so several P lines then one F line.
    const expected = Array.from({ length: 5000 }, (_, i) => `${String(i).padStart(7, "0")},`).join("");
    const long = await startContainer(pod, "long", [
      "awk",
      'BEGIN { for (i = 0; i < 5000; i++) printf "%07d,", i; printf "\\n" }',
    ]);
    const ll = await exitedLog(long);
    assert.ok(
      ll.every((l) => l.stream === "stdout"),
      "only stdout",
    );
    const tags = ll.map((l) => l.tag).join("");
    assert.match(tags, /^P{2,}F$/, `tags ${tags}`);
    assert.ok(
      ll.every((l) => l.content.length <= 8192),
      `chunk sizes ${ll.map((l) => l.content.length)}`,
    );
    assert.equal(ll.map((l) => l.content).join(""), expected);
    const times = ll.map((l) => Date.parse(l.time));
    assert.ok(times.every((t) => !Number.isNaN(t)));
    await removePod(pod);
  });

  it("reports an OOM kill as exit code 137, reason OOMKilled", async () => {
    const pod = await runPod("oom");
    const id = await startContainer(pod, "hog", ["tail", "/dev/zero"], {
      linux: { resources: { memoryLimitInBytes: 32 * MiB } },
    });
    const st = await waitExited(rt, id, 60_000);
    // Where conmon 2.1.6 records the OOM (its working directory, the bundle; and --persist-dir).
    const oomFiles = [
      join(berthd.root, "containers", id, "oom"),
      join(berthd.dir, "state", "runtime", "containers", id, "oom"),
    ];
    const seen = await Promise.all(
      oomFiles.map(async (f) => `${f}: ${(await exists(f)) ? "present" : "absent"}`),
    );
    assert.equal(st.exitCode, 137, `exit code ${st.exitCode}, reason ${st.reason}; ${seen.join(", ")}`);
    assert.equal(st.reason, "OOMKilled", `reason ${JSON.stringify(st.reason)}; ${seen.join(", ")}`);
    await removePod(pod);
  });

  const readNum = async (path: string) => Number((await readFile(path, "utf8")).trim());

  it("updates memory and CPU limits of a running container created without any", async () => {
    const pod = await runPod("update");
    const free = await startContainer(pod, "free", ["sleep", "3600"]);
    const pid = await containerPid(free);
    const mem = await cgroupDir(pid, "memory");
    const cpu = await cgroupDir(pid, "cpu");
    assert.match(mem, new RegExp(free), "the container has its own memory cgroup");
    assert.equal(await readNum(join(cpu, "cpu.cfs_quota_us")), -1);
    await rt.call("updateContainerResources", {
      containerId: free,
      linux: { memoryLimitInBytes: 64 * MiB, cpuQuota: 50_000, cpuPeriod: 100_000, cpuShares: 512 },
    });
    assert.equal(await readNum(join(mem, "memory.limit_in_bytes")), 64 * MiB);
    assert.equal(await readNum(join(cpu, "cpu.cfs_quota_us")), 50_000);
    assert.equal(await readNum(join(cpu, "cpu.cfs_period_us")), 100_000);
    assert.equal(await readNum(join(cpu, "cpu.shares")), 512);
    assert.equal((await containerStatus(rt, free)).state, ContainerState.CONTAINER_RUNNING);
    await removePod(pod);
  });

  it("raises and lowers the memory limit of a running container created with one", async () => {
    const pod = await runPod("update-limited");
    // Created with 64 MiB: memory and memory+swap are both 64 MiB (no swap).
    const limited = await startContainer(pod, "limited", ["sleep", "3600"], {
      linux: { resources: { memoryLimitInBytes: 64 * MiB } },
    });
    const mem = await cgroupDir(await containerPid(limited), "memory");
    const limits = async () => ({
      memory: await readNum(join(mem, "memory.limit_in_bytes")),
      memsw: await readNum(join(mem, "memory.memsw.limit_in_bytes")),
    });
    assert.deepEqual(await limits(), { memory: 64 * MiB, memsw: 64 * MiB });
    for (const limit of [128 * MiB, 48 * MiB]) {
      await rt.call("updateContainerResources", {
        containerId: limited,
        linux: { memoryLimitInBytes: limit },
      });
      // As if created with this limit: still no swap.
      assert.deepEqual(
        await limits(),
        { memory: limit, memsw: limit },
        `after an update to ${limit / MiB} MiB`,
      );
    }
    assert.equal((await containerStatus(rt, limited)).state, ContainerState.CONTAINER_RUNNING);
    await removePod(pod);
  });

  it("bad requests get clear gRPC errors and leak nothing", async (t) => {
    const pod = await runPod("bad");

    await t.test("unknown container ids: NOT_FOUND; Stop and Remove succeed", async () => {
      const unknown = "no-such-container";
      await assert.rejects(rt.call("containerStatus", { containerId: unknown }), grpcError(status.NOT_FOUND));
      await assert.rejects(rt.call("startContainer", { containerId: unknown }), grpcError(status.NOT_FOUND));
      await assert.rejects(
        rt.call("execSync", { containerId: unknown, cmd: ["true"], timeout: 5 }),
        grpcError(status.NOT_FOUND),
      );
      await assert.rejects(
        rt.call("updateContainerResources", { containerId: unknown, linux: { cpuShares: 512 } }),
        grpcError(status.NOT_FOUND),
      );
      await rt.call("stopContainer", { containerId: unknown, timeout: 1 });
      await rt.call("removeContainer", { containerId: unknown });
      const gone = "f".repeat(64);
      await rt.call("stopContainer", { containerId: gone, timeout: 1 });
      await rt.call("removeContainer", { containerId: gone });
    });

    await t.test("an ambiguous id prefix: INVALID_ARGUMENT", async () => {
      let prefix: string | undefined;
      for (let i = 0; i < 17 && !prefix; i++) {
        await createContainer(pod, `amb${i}`, ["sleep", "3600"]);
        const firsts = (await listContainers()).map((c) => c.id[0]!);
        prefix = firsts.find((c, j) => firsts.indexOf(c) !== j);
      }
      assert.ok(prefix, "two container ids share a first hex digit after 17 creates");
      await assert.rejects(
        rt.call("containerStatus", { containerId: prefix }),
        grpcError(status.INVALID_ARGUMENT, /ambiguous/),
      );
      await assert.rejects(
        rt.call("startContainer", { containerId: prefix }),
        grpcError(status.INVALID_ARGUMENT, /ambiguous/),
      );
    });

    await t.test("a duplicate name in the pod: ALREADY_EXISTS naming the holder", async () => {
      const first = await createContainer(pod, "dup", ["sleep", "3600"]);
      await assert.rejects(
        createContainer(pod, "dup", ["sleep", "3600"]),
        grpcError(status.ALREADY_EXISTS, new RegExp(first)),
      );
      assert.equal((await listContainers({ labelSelector: { c: "dup" } })).length, 1);
    });

    await t.test("a mount runc cannot make (a file over a directory): an error, nothing left", async () => {
      const before = await leftovers();
      const file = join(dir, "plain-file");
      await writeFile(file, "not a directory\n");
      await assert.rejects(
        createContainer(pod, "filemount", ["sleep", "3600"], {
          mounts: [{ containerPath: "/bin", hostPath: file, readonly: true }],
        }),
        (err: GrpcError) => {
          assert.equal(err.code, status.INVALID_ARGUMENT, err.details);
          assert.match(err.details, /plain-file|\/bin|not a directory/, err.details);
          return true;
        },
      );
      assert.deepEqual(await listContainers({ labelSelector: { c: "filemount" } }), []);
      assert.deepEqual(await leftovers(), before);
      // The name was released: the same name with a good config works.
      const ok = await createContainer(pod, "filemount", ["sleep", "3600"]);
      assert.equal((await containerStatus(rt, ok)).state, ContainerState.CONTAINER_CREATED);
    });

    await t.test(
      "a host path under /proc that cannot be created: an error naming it, nothing left",
      async () => {
        const before = await leftovers();
        // A short deadline: a hang here must fail this test, not the whole file.
        const quick = runtimeClient(berthd.socket, 15_000);
        try {
          await assert.rejects(
            quick.call("createContainer", {
              podSandboxId: pod.id,
              config: containerConfig("badmount", ["sleep", "3600"], {
                mounts: [{ containerPath: "/data", hostPath: "/proc/nonexistent/x" }],
              }),
              sandboxConfig: pod.config,
            }),
            (err: GrpcError) => {
              assert.notEqual(
                err.code,
                status.DEADLINE_EXCEEDED,
                "CreateContainer with hostPath /proc/nonexistent/x did not answer within 15 s",
              );
              assert.equal(err.code, status.INVALID_ARGUMENT, err.details);
              assert.match(err.details, /\/proc\/nonexistent\/x/);
              return true;
            },
          );
        } finally {
          quick.client.close();
        }
        assert.deepEqual(await listContainers({ labelSelector: { c: "badmount" } }), []);
        assert.deepEqual(await leftovers(), before);
        const ok = await createContainer(pod, "badmount", ["sleep", "3600"]);
        assert.equal((await containerStatus(rt, ok)).state, ContainerState.CONTAINER_CREATED);
      },
    );

    await t.test("a 4096-byte memory limit: a clear error, nothing left", async () => {
      const before = await leftovers();
      let failed: GrpcError | undefined;
      let id: string | undefined;
      try {
        id = await createContainer(pod, "tiny", ["sleep", "3600"], {
          linux: { resources: { memoryLimitInBytes: 4096 } },
        });
        await rt.call("startContainer", { containerId: id });
      } catch (err) {
        failed = err as GrpcError;
      }
      assert.ok(failed, `container ${id} with a 4096-byte memory limit was created and started`);
      assert.match(failed.details, /memory/i, failed.details);
      assert.equal(failed.code, status.INVALID_ARGUMENT, failed.details);
      if (id === undefined) {
        assert.deepEqual(await listContainers({ labelSelector: { c: "tiny" } }), []);
        assert.deepEqual(await leftovers(), before);
      }
    });

    await t.test("CreateContainer in a stopped pod: FAILED_PRECONDITION", async () => {
      const stopped = await runPod("stopped");
      await rt.call("stopPodSandbox", { podSandboxId: stopped.id });
      await assert.rejects(
        createContainer(stopped, "late", ["sleep", "3600"]),
        grpcError(status.FAILED_PRECONDITION, new RegExp(stopped.id)),
      );
      await rt.call("removePodSandbox", { podSandboxId: stopped.id });
    });

    await removePod(pod);
    assert.deepEqual(await listContainers({ podSandboxId: pod.id }), []);
  });

  it("sees the exit of a container that ended while berthd was down", async () => {
    const pod = await runPod("down");
    const id = await startContainer(pod, "exit5", ["/bin/sh", "-c", "sleep 2; exit 5"]);
    const pid = await containerPid(id);
    await berthd.kill("SIGKILL");
    const exitFile = join(berthd.dir, "state", "runtime", "exits", id);
    const deadline = Date.now() + 20_000;
    while ((await exists(`/proc/${pid}`)) || !(await exists(exitFile))) {
      assert.ok(Date.now() < deadline, "the container exited and conmon wrote its exit file");
      await sleep(100);
    }
    await berthd.launch();
    rt.client.close();
    rt = runtimeClient(berthd.socket);
    const st = await containerStatus(rt, id);
    assert.equal(st.state, ContainerState.CONTAINER_EXITED);
    assert.equal(st.exitCode, 5);
    assert.equal(st.reason, "Error");
    assert.ok(st.startedAt > 0n && st.finishedAt > st.startedAt, `${st.startedAt} .. ${st.finishedAt}`);
    assert.ok(
      st.finishedAt - st.startedAt >= 1_500_000_000n,
      `ran ${(st.finishedAt - st.startedAt) / 1_000_000n} ms`,
    );
    assert.ok(st.finishedAt <= BigInt(Date.now()) * 1_000_000n);
    await removePod(pod);
  });
});
