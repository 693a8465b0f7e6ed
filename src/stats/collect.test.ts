/**
 * containerStats/podStats: without root, a container that is not running; as root (cgroup v1),
 * real cgroups under /sys/fs/cgroup/<controller>/berth-stats-test/<rand> holding a CPU-bound
 * shell loop and a node process holding 50 MiB.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, mkdir, mkdtemp, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { errnoCode } from "../common/errors.js";
import { needsRoot } from "../test/harness/skip.js";
import { SUITE_TIMEOUT_MS } from "../test/harness/timeouts.js";
import { detectCgroupVersion } from "./cgroups.js";
import { containerStats, podStats } from "./collect.js";
import { CpuRateCache } from "./cpu-rate.js";
import { DirUsageCache } from "./fs-usage.js";

const MiB = 1024n * 1024n;

let dir: string;
let upper: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-collect-"));
  upper = join(dir, "upper");
  await mkdir(join(upper, "etc"), { recursive: true });
  await writeFile(join(upper, "etc", "hostname"), "pod\n");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that is not running: a child we started and waited for. */
async function deadPid(): Promise<number> {
  const c = spawn("true", { stdio: "ignore" });
  await new Promise((r) => c.once("exit", r));
  return c.pid ?? 0;
}

describe("stats of something not running", () => {
  it("a stopped container has its writable layer only", async () => {
    for (const pid of [0, await deadPid()]) {
      const s = await containerStats({
        id: "c1",
        pid,
        upperDir: upper,
        mountpoint: "/var/lib/berth",
        rates: new CpuRateCache(),
      });
      assert.equal(s.cpu, undefined);
      assert.equal(s.memory, undefined);
      assert.equal(s.writableLayer?.fsId?.mountpoint, "/var/lib/berth");
      assert.equal(s.writableLayer?.inodesUsed?.value, 3n); // upper, etc, hostname
      assert.ok((s.writableLayer?.usedBytes?.value ?? 0n) > 0n);
      assert.ok((s.writableLayer?.timestamp ?? 0n) > 0n);
    }
  });

  it("a removed container (no upper dir, cgroup gone) gives zeros, never throws", async () => {
    const s = await containerStats({
      id: "c2",
      pid: 0,
      cgroupsPath: "/berth-stats-test-nonexistent/berth-c2",
      upperDir: join(dir, "missing"),
      mountpoint: "/",
      nowNs: 5n,
      rates: new CpuRateCache(),
      fsUsage: new DirUsageCache(),
    });
    assert.deepEqual(s, {
      writableLayer: {
        timestamp: s.writableLayer?.timestamp,
        fsId: { mountpoint: "/" },
        usedBytes: { value: 0n },
        inodesUsed: { value: 0n },
      },
    });
  });

  it("a pod without running containers reports zero processes and no cpu/memory", async () => {
    const p = await podStats({
      podId: "p",
      pids: [0, await deadPid()],
      hostNetwork: true,
      nowNs: 7n,
      rates: new CpuRateCache(),
    });
    assert.deepEqual(p, { process: { timestamp: 7n, processCount: { value: 0n } } });
    // cgroup_parent "/" or "" would be the whole host: ignored.
    const root = await podStats({
      podId: "p",
      pids: [],
      cgroupParent: "/",
      nowNs: 7n,
      rates: new CpuRateCache(),
    });
    assert.equal(root.cpu, undefined);
    assert.equal(root.memory, undefined);
    assert.equal(root.network, undefined, "no process, no netns path: no network");
  });
});

const CONTROLLERS = ["cpu", "cpuacct", "memory", "pids"] as const;

async function integrationSkip(): Promise<string | false> {
  const root = needsRoot("creates cgroups");
  if (root) return root;
  if ((await detectCgroupVersion()) !== 1) return "written for cgroup v1 hierarchies";
  for (const c of CONTROLLERS) {
    try {
      await access(join("/sys/fs/cgroup", c, "cgroup.procs"));
    } catch {
      return `no ${c} hierarchy at /sys/fs/cgroup/${c}`;
    }
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("stats of live cgroups", { skip: await integrationSkip(), timeout: SUITE_TIMEOUT_MS }, () => {
  const top = "/berth-stats-test";
  const podPath = `${top}/${randomBytes(6).toString("hex")}`;
  const ctrPath = `${podPath}/berth-${randomBytes(6).toString("hex")}`;
  const children: ChildProcess[] = [];
  let busy: ChildProcess;
  let hog: ChildProcess;

  const cg = (c: string, path: string, file?: string) => join("/sys/fs/cgroup", c, path, file ?? "");

  async function join_(pid: number): Promise<void> {
    for (const c of CONTROLLERS) await writeFile(cg(c, ctrPath, "cgroup.procs"), `${pid}\n`);
  }

  async function kill(c: ChildProcess): Promise<void> {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await exited;
  }

  before(async () => {
    for (const c of CONTROLLERS) await mkdir(cg(c, ctrPath), { recursive: true });
    await writeFile(cg("memory", ctrPath, "memory.limit_in_bytes"), `${256n * MiB}\n`);

    busy = spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" });
    children.push(busy);
    await join_(busy.pid ?? 0);

    // Allocates only after being moved: v1 does not move existing charges with a task.
    const script =
      "process.stdin.once('data', () => { globalThis.hold = Buffer.alloc(50 * 1024 * 1024, 1);" +
      " process.stdout.write('ready\\n'); }); setInterval(() => {}, 1 << 30);";
    hog = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] });
    children.push(hog);
    await join_(hog.pid ?? 0);
    const ready = new Promise<void>((resolve, reject) => {
      hog.stdout?.once("data", () => resolve());
      hog.once("exit", (code) => reject(new Error(`memory hog exited (${code})`)));
    });
    hog.stdin?.write("go\n");
    await ready;
  });

  after(async () => {
    for (const c of children) await kill(c).catch(() => {});
    for (const path of [ctrPath, podPath, top]) {
      for (const c of CONTROLLERS) {
        for (let i = 0; i < 50; i++) {
          try {
            await rmdir(cg(c, path));
            break;
          } catch (err) {
            const code = errnoCode(err);
            if (code === "ENOENT" || code === "ENOTEMPTY") break; // gone, or another run's
            if (code !== "EBUSY") break;
            await sleep(20);
          }
        }
      }
    }
  });

  it("container: cpu rises with usage_nano_cores > 0 on the second sample; memory is counted", async () => {
    const rates = new CpuRateCache();
    const input = { id: "busy", pid: busy.pid ?? 0, upperDir: upper, mountpoint: "/", rates };
    const first = await containerStats(input);
    assert.ok(first.cpu?.usageCoreNanoSeconds !== undefined, "cpu read");
    assert.equal(first.cpu.usageNanoCores, undefined, "no rate on the first sample");
    await sleep(300);
    const second = await containerStats(input);
    const u1 = first.cpu.usageCoreNanoSeconds.value;
    const u2 = second.cpu?.usageCoreNanoSeconds?.value ?? 0n;
    assert.ok(u2 > u1, `cpu usage rises: ${u1} → ${u2}`);
    assert.ok((second.cpu?.usageNanoCores?.value ?? 0n) > 0n, "usage_nano_cores > 0");
    assert.ok((second.cpu?.timestamp ?? 0n) > first.cpu.timestamp);

    const mem = second.memory;
    assert.ok(mem !== undefined, "memory read");
    const ws = mem.workingSetBytes?.value ?? 0n;
    assert.ok(ws > 40n * MiB, `working set ${ws} > 40 MiB`);
    assert.ok((mem.usageBytes?.value ?? 0n) >= ws);
    assert.ok((mem.rssBytes?.value ?? 0n) > 40n * MiB, "rss counts the anonymous 50 MiB");
    assert.ok((mem.pageFaults?.value ?? 0n) > 0n);
    assert.equal(mem.availableBytes?.value, 256n * MiB - ws, "available = limit − working set");
  });

  it("container: the cgroupsPath gives the same cgroup as the init pid", async () => {
    const s = await containerStats({
      id: "by-path",
      pid: 0,
      cgroupsPath: ctrPath,
      upperDir: upper,
      mountpoint: "/",
      rates: new CpuRateCache(),
    });
    assert.ok((s.memory?.workingSetBytes?.value ?? 0n) > 40n * MiB);
    assert.ok((s.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n);
  });

  it("pod: from the cgroup parent, and summed over containers without one", async () => {
    const pids = [busy.pid ?? 0, hog.pid ?? 0];
    for (const cgroupParent of [podPath, undefined]) {
      const rates = new CpuRateCache();
      const first = await podStats({ podId: "pod", pids, cgroupParent, rates });
      await sleep(300);
      const second = await podStats({ podId: "pod", pids, cgroupParent, rates });
      const label = cgroupParent === undefined ? "summed" : "parent";
      const u1 = first.cpu?.usageCoreNanoSeconds?.value ?? 0n;
      const u2 = second.cpu?.usageCoreNanoSeconds?.value ?? 0n;
      assert.ok(u1 > 0n && u2 > u1, `${label}: pod cpu rises ${u1} → ${u2}`);
      assert.equal(first.cpu?.usageNanoCores, undefined);
      assert.ok((second.cpu?.usageNanoCores?.value ?? 0n) > 0n, `${label}: usage_nano_cores > 0`);
      const ws = second.memory?.workingSetBytes?.value ?? 0n;
      // Both pids share one cgroup: counted once, not twice.
      assert.ok(ws > 40n * MiB && ws < 100n * MiB, `${label}: working set ${ws}`);
      assert.ok((second.process?.processCount?.value ?? 0n) >= 2n, `${label}: processes`);
      // The test processes are in the host netns: its interfaces, without lo.
      assert.ok(second.network !== undefined);
      assert.ok(!second.network.interfaces.some((i) => i.name === "lo"));
      if (second.network.interfaces.length > 0) assert.ok(second.network.defaultInterface !== undefined);
    }
  });

  it("a container whose process died reports no cpu/memory", async () => {
    const pid = busy.pid ?? 0;
    await kill(busy);
    const s = await containerStats({
      id: "busy",
      pid,
      upperDir: upper,
      mountpoint: "/",
      rates: new CpuRateCache(),
    });
    assert.equal(s.cpu, undefined);
    assert.equal(s.memory, undefined);
    const p = await podStats({ podId: "pod", pids: [pid, hog.pid ?? 0], rates: new CpuRateCache() });
    assert.ok((p.process?.processCount?.value ?? 0n) >= 1n);
  });
});
