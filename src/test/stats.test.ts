/** Container and pod stats from real cgroups: CPU rises under load, memory shows in the working set. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { ContainerStats, PodSandboxStats } from "../api/gen/runtime/v1/api.js";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { type RuntimeClient, runtimeClient } from "./harness/cri.js";
import { importBusybox, startPodEnv } from "./harness/pod-env.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const run = promisify(execFile);
const BERTH = new URL("../bin/berth.js", import.meta.url).pathname;
const BRIDGE = "berthst0";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("stats", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let rt: RuntimeClient;
  let dir: string;
  let podId = "";
  const ids: Record<string, string> = {};
  const image = "docker.io/berth/busybox:stats";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-stats-"));
    berthd = await startPodEnv({
      dir,
      network: { name: "berth-stats", bridge: BRIDGE, subnet: "10.254.0.0/24", portmap: false },
    });
    rt = runtimeClient(berthd.socket);
    await importBusybox(berthd, dir, image);
    const podConfig = {
      metadata: { name: "stats", namespace: "default", uid: "stats-uid", attempt: 0 },
      logDirectory: join(dir, "logs"),
      labels: { app: "stats" },
    };
    ({ podSandboxId: podId } = await rt.call<{ podSandboxId: string }>("runPodSandbox", {
      config: podConfig,
    }));
    const start = async (name: string, command: string[]) => {
      const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
        podSandboxId: podId,
        config: {
          metadata: { name, attempt: 0 },
          image: { image },
          command,
          logPath: `${name}.log`,
          labels: { c: name },
        },
        sandboxConfig: podConfig,
      });
      await rt.call("startContainer", { containerId });
      ids[name] = containerId;
    };
    await start("burn", ["/bin/sh", "-c", "while :; do :; done"]);
    await start("mem", [
      "/bin/sh",
      "-c",
      "dd if=/dev/zero of=/dev/shm/fill bs=1M count=60; echo hi > /layer.txt; sleep 1000",
    ]);
  });

  after(async () => {
    if (podId) await rt.call("removePodSandbox", { podSandboxId: podId }).catch(() => {});
    rt?.client.close();
    await berthd?.stop();
    await run("ip", ["link", "del", BRIDGE]).catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const stat = async (id: string) =>
    (await rt.call<{ stats: ContainerStats }>("containerStats", { containerId: id })).stats;

  it("shows a busy container's CPU usage rising, with a rate", async () => {
    const first = await stat(ids["burn"]!);
    await sleep(500);
    const second = await stat(ids["burn"]!);
    assert.equal(second.attributes?.id, ids["burn"]);
    assert.ok(
      (second.cpu?.usageCoreNanoSeconds?.value ?? 0n) > (first.cpu?.usageCoreNanoSeconds?.value ?? 0n),
    );
    assert.ok((second.cpu?.usageNanoCores?.value ?? 0n) > 0n);
  });

  it("shows memory a container holds in its working set, and its writable layer", async () => {
    let s = await stat(ids["mem"]!);
    for (let i = 0; i < 50 && (s.memory?.workingSetBytes?.value ?? 0n) < 50n << 20n; i++) {
      await sleep(100);
      s = await stat(ids["mem"]!);
    }
    assert.ok(
      (s.memory?.workingSetBytes?.value ?? 0n) >= 50n << 20n,
      `working set ${s.memory?.workingSetBytes?.value}`,
    );
    assert.ok((s.writableLayer?.inodesUsed?.value ?? 0n) >= 1n);
  });

  it("lists container stats with filters", async () => {
    const all = await rt.call<{ stats: ContainerStats[] }>("listContainerStats", {});
    assert.deepEqual(all.stats.map((s) => s.attributes?.id).sort(), Object.values(ids).sort());
    const one = await rt.call<{ stats: ContainerStats[] }>("listContainerStats", {
      filter: { labelSelector: { c: "mem" } },
    });
    assert.deepEqual(
      one.stats.map((s) => s.attributes?.id),
      [ids["mem"]],
    );
  });

  it("reports pod stats: CPU, memory, processes and the pod's network", async () => {
    const res = await rt.call<{ stats: PodSandboxStats }>("podSandboxStats", { podSandboxId: podId });
    const linux = res.stats.linux;
    assert.equal(res.stats.attributes?.id, podId);
    assert.ok((linux?.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n);
    assert.ok((linux?.memory?.workingSetBytes?.value ?? 0n) >= 50n << 20n);
    assert.ok((linux?.process?.processCount?.value ?? 0n) >= 2n);
    assert.equal(linux?.network?.defaultInterface?.name, "eth0");
    assert.equal(linux?.containers.length, 2);
    const list = await rt.call<{ stats: PodSandboxStats[] }>("listPodSandboxStats", {
      filter: { labelSelector: { app: "stats" } },
    });
    assert.deepEqual(
      list.stats.map((s) => s.attributes?.id),
      [podId],
    );
  });

  it("berth stats and statsp print them as crictl does", async () => {
    const berth = (args: string[]) =>
      run(process.execPath, [BERTH, "--runtime-endpoint", `unix://${berthd.socket}`, ...args]);
    const { stdout } = await berth(["stats"]);
    const lines = stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^CONTAINER\s+NAME\s+CPU %\s+MEM\s+DISK\s+INODES$/);
    const burn = lines.find((l) => l.includes(" burn "));
    assert.ok(burn, stdout);
    // CPU % of one core over crictl's 1 s sample: the busy loop uses some; mem holds ~60 MiB
    const cpu = burn.trim().split(/\s+/)[2] ?? "";
    assert.match(cpu, /^\d+\.\d\d$/, burn);
    assert.ok(Number(cpu) > 0, burn);
    assert.match(lines.find((l) => l.includes(" mem ")) ?? "", /\s(6\d|[7-9]\d)(\.\d+)?MB\s/);
    const pods = (await berth(["statsp", "--seconds", "0"])).stdout;
    assert.match(pods, /^POD\s+NAME\s+CPU %\s+MEM\s+RX\s+TX\n[0-9a-f]{13}\s+stats\s/);
    const json = JSON.parse((await berth(["stats", "-o", "json", "mem"])).stdout) as { stats: unknown[] };
    assert.equal(json.stats.length, 1);
  });
});
