import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerState } from "../api/gen/runtime/v1/api.js";
import { busyboxLayer } from "../tools/busybox-image.js";
import { buildImage, ociArchive } from "../tools/oci-builder.js";
import { pushImage } from "../tools/push-image.js";
import { startRegistry } from "../tools/registry-server.js";
import { startBerthd } from "./berth.js";
import { CNI_BIN_DIR, containerdMissing, containerdVersion, startContainerd } from "./containerd.js";
import { type ExecBenchResult, type ExecTarget, runExecBench } from "./exec.js";
import type { RuntimeInstance } from "./measure.js";
import { BRIDGE, CGROUP_PARENT, conflist, containerConfig, podConfig, SUBNET } from "./pod-configs.js";
import { PodCri } from "./pod-cri.js";
import {
  cgroupDirs,
  leftoverIptables,
  removeBridge,
  removeLeftoverNatRules,
  restoreRunContainerd,
  runContainerdSnapshot,
  sweepHost,
} from "./pod-host.js";
import { childrenOf, listProcs, monitorsUnder, type ProcMem, procsMem } from "./procs.js";
import { RssSampler, readMem } from "./rss.js";
import { type Cleanup, errorText, log, mountsUnder, removeTree, sleep, withTimeout } from "./util.js";

const RUNC = "/usr/sbin/runc";

export const POD_RPCS = [
  "RunPodSandbox",
  "CreateContainer",
  "StartContainer",
  "StopContainer",
  "RemoveContainer",
  "StopPodSandbox",
  "RemovePodSandbox",
] as const;
export type PodRpc = (typeof POD_RPCS)[number];

export interface LifecycleSample {
  /** Client-side wall time of each RPC, ms. */
  ms: Record<PodRpc, number>;
  /** CLOCK_MONOTONIC (process.hrtime) at RunPodSandbox's start, ms: lines samples up with traces. */
  startMonoMs: number;
  podId: string;
}

export interface ParallelRound {
  round: number;
  /** From the first RunPodSandbox to the last RemovePodSandbox of the round, ms. */
  wallMs: number;
  lifecycles: LifecycleSample[];
}

/** One look at the processes while `pods` pods run. */
export interface MemSnapshot {
  daemonRssKiB: number;
  daemonPssKiB: number;
  monitors: ProcMem[];
  /** Processes the sandbox itself runs (containerd: the pause process; berthd: none). */
  sandboxes: ProcMem[];
  containers: ProcMem[];
}

export interface PodMemory {
  pods: number;
  monitorBinary: string;
  /** VmRSS of the daemon with no pods, after the warm-up. */
  daemonIdleRssKiB: number;
  /** Largest VmRSS of the daemon polled (50 ms) during the parallel rounds. */
  daemonPeakRssKiB: number;
  /** Medians over the snapshots, with `pods` pods running. */
  daemonRssKiB: number;
  daemonPssKiB: number;
  monitorCount: number;
  monitorRssKiBPerPod: number;
  monitorPssKiBPerPod: number;
  sandboxCount: number;
  sandboxRssKiBPerPod: number;
  sandboxPssKiBPerPod: number;
  containerCount: number;
  snapshots: MemSnapshot[];
}

export interface PodRuntimeResult {
  name: string;
  version: string;
  notes: string[];
  warmup: LifecycleSample[];
  serial: LifecycleSample[];
  parallel: ParallelRound[];
  /** Busy CPU time of the whole machine (all processes) per serial lifecycle, ms. */
  serialMachineCpuMsPerLifecycle: number;
  memory?: PodMemory;
  /** berthd only: each RPC's durationMs from its debug log (server side: no gRPC, no client). */
  serverMs?: { serial: Record<PodRpc, number[]>; parallel: Record<PodRpc, number[]> };
  /** Exec latencies and throughput on one running container. */
  exec?: ExecBenchResult;
  startup?: StartupResult;
}

/** The daemon restarted with `pods` pods (each with a running container) on disk. */
export interface StartupResult {
  pods: number;
  /** Per restart: ms from exec to the first answered Version. */
  readyMs: number[];
  /** Pods listed after the last restart (should be `pods`). */
  listedPods: number;
}

export interface PodBenchOptions {
  serialIterations: number;
  parallel: number;
  rounds: number;
  warmup: number;
  /** Serial lifecycles per runtime before switching to the other. */
  chunk: number;
  /** Skip containerd, with this reason. */
  skipContainerd?: string;
  /** Extra berthd config. */
  berthToml: string;
  /** CPU-profile berthd into this dir (written when it exits). */
  cpuProfDir?: string;
  /** Timed runs of each exec kind per runtime (0: no exec bench), and `cat` throughput runs. */
  execIterations: number;
  execCatRuns: number;
  /** Pods on disk for the start-up measurement (0: none), and how many restarts to time. */
  startupPods: number;
  startupRestarts: number;
}

export interface PodBenchResult {
  berth: PodRuntimeResult;
  containerd?: PodRuntimeResult;
  containerdSkipped?: string;
  options: Omit<PodBenchOptions, "skipContainerd" | "berthToml" | "cpuProfDir">;
  network: Record<string, unknown>;
  image: { ref: string; sandboxImage: string; manifestDigest: string; configDigest: string };
}

interface PodRuntime {
  name: "berth" | "containerd";
  version: string;
  notes: string[];
  instance: RuntimeInstance & { dir: string };
  cri: PodCri;
  monitorBinary: string;
  result: PodRuntimeResult;
  failed?: string;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Set by cleanup (signal, watchdog, failure): no new RPC starts, and cleanup waits for the
 * lifecycles in flight before it removes pods and stops the daemons, so no pod is left
 * half-made behind a closed connection.
 */
class Work {
  aborted = false;
  private readonly inflight = new Set<Promise<unknown>>();

  track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  check(): void {
    if (this.aborted) throw new Error("benchmark aborted");
  }

  async abort(): Promise<void> {
    this.aborted = true;
    await Promise.allSettled([...this.inflight]);
  }
}

/**
 * Waits (at most 20 s) until the machine has been mostly idle for a second: a start-up is then
 * timed on the same footing for both runtimes, not in the wake of the pods just made or of the
 * daemon just stopped (its pods' CNI teardown is not part of this; they live on).
 */
async function machineQuiet(work: Work): Promise<void> {
  const cores = availableParallelism();
  const deadline = Date.now() + 20_000;
  let quietFor = 0;
  while (quietFor < 4 && Date.now() < deadline) {
    work.check();
    const before = await machineCpuMs();
    await sleep(250);
    const busy = (await machineCpuMs()) - before;
    quietFor = busy <= 0.25 * 250 * cores ? quietFor + 1 : 0;
  }
}

/** Busy (non-idle, non-iowait) CPU time of the whole machine so far, ms. */
async function machineCpuMs(): Promise<number> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy * 10; // USER_HZ = 100
}

function emptyByRpc(): Record<PodRpc, number[]> {
  return Object.fromEntries(POD_RPCS.map((r) => [r, [] as number[]])) as unknown as Record<PodRpc, number[]>;
}

/** `durationMs` of each successful RPC in a slice of berthd's JSON log. */
export function serverDurations(logs: string): Record<PodRpc, number[]> {
  const out = emptyByRpc();
  for (const line of logs.split("\n")) {
    if (!line.startsWith("{") || !line.includes('"durationMs"')) continue;
    let j: { method?: string; durationMs?: number; msg?: string };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      continue;
    }
    const m = j.method as PodRpc | undefined;
    if (m && m in out && j.msg === `${m} done` && typeof j.durationMs === "number") out[m].push(j.durationMs);
  }
  return out;
}

/** Best effort: stop and remove a pod (after a failure, or at cleanup). */
async function forceRemovePod(cri: PodCri, podId: string): Promise<void> {
  await cri.stopPodSandbox(podId).catch(() => {});
  await cri.removePodSandbox(podId).catch((err: unknown) => log(`remove pod ${podId}: ${errorText(err)}`));
}

/** One timed pod + container lifecycle; `check` also verifies the pod IP and the running container. */
function lifecycle(
  work: Work,
  rt: PodRuntime,
  name: string,
  logRoot: string,
  image: string,
  check = false,
): Promise<LifecycleSample> {
  work.check();
  return work.track(timedLifecycle(work, rt, name, logRoot, image, check));
}

async function timedLifecycle(
  work: Work,
  rt: PodRuntime,
  name: string,
  logRoot: string,
  image: string,
  check: boolean,
): Promise<LifecycleSample> {
  const pod = podConfig(name, randomUUID(), logRoot);
  await mkdir(pod.logDirectory, { recursive: true }); // kubelet makes it before RunPodSandbox
  const ctr = containerConfig(image);
  const ms = {} as Record<PodRpc, number>;
  const timed = async <T>(rpc: PodRpc, f: () => Promise<T>): Promise<T> => {
    work.check();
    const t0 = nowMs();
    const r = await f();
    ms[rpc] = nowMs() - t0;
    return r;
  };
  const startMonoMs = nowMs();
  let podId: string | undefined;
  try {
    podId = await timed("RunPodSandbox", () => rt.cri.runPodSandbox(pod));
    const id = podId;
    const containerId = await timed("CreateContainer", () => rt.cri.createContainer(id, ctr, pod));
    await timed("StartContainer", () => rt.cri.startContainer(containerId));
    if (check) await verify(rt, id, containerId);
    await timed("StopContainer", () => rt.cri.stopContainer(containerId, 0));
    await timed("RemoveContainer", () => rt.cri.removeContainer(containerId));
    await timed("StopPodSandbox", () => rt.cri.stopPodSandbox(id));
    await timed("RemovePodSandbox", () => rt.cri.removePodSandbox(id));
    podId = undefined;
    return { ms, startMonoMs, podId: id } satisfies LifecycleSample;
  } catch (err) {
    if (podId !== undefined) await forceRemovePod(rt.cri, podId);
    throw new Error(`${rt.name} pod ${name}: ${errorText(err)}`);
  } finally {
    await rm(pod.logDirectory, { recursive: true, force: true });
  }
}

async function verify(rt: PodRuntime, podId: string, containerId: string): Promise<void> {
  const ps = await rt.cri.podSandboxStatus(podId);
  const ip = ps.status?.network?.ip ?? "";
  if (!ip.startsWith("10.253.")) throw new Error(`pod ${podId} has IP "${ip}", want one in ${SUBNET}`);
  const cs = await rt.cri.containerStatus(containerId);
  if (cs.status?.state !== ContainerState.CONTAINER_RUNNING) {
    throw new Error(`container ${containerId} is in state ${cs.status?.state}, want RUNNING`);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? 0 : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sum = (xs: readonly ProcMem[], f: (m: ProcMem) => number) => xs.reduce((n, m) => n + f(m), 0);

async function snapshot(rt: PodRuntime): Promise<MemSnapshot> {
  const procs = await listProcs();
  const monitors = monitorsUnder(procs, rt.monitorBinary, rt.instance.dir);
  const children = childrenOf(procs, monitors).filter((p) => p.argv[0]?.endsWith("sleep"));
  const sandboxes = children.filter((p) => p.argv[1] === "infinity");
  const containers = children.filter((p) => p.argv[1] === "3600");
  const [daemon] = await procsMem([{ pid: rt.instance.pid, ppid: 0, argv: ["daemon"] }]);
  return {
    daemonRssKiB: daemon?.rssKiB ?? 0,
    daemonPssKiB: daemon?.pssKiB ?? 0,
    monitors: await procsMem(monitors),
    sandboxes: await procsMem(sandboxes),
    containers: await procsMem(containers),
  };
}

/** Starts `n` pods at once, looks at memory a few times, then tears them down. */
async function measureMemory(
  work: Work,
  rt: PodRuntime,
  n: number,
  logRoot: string,
  image: string,
  idleRssKiB: number,
  peakRssKiB: number,
): Promise<PodMemory> {
  const started: Array<{ podId: string; logDir: string }> = [];
  const failures: string[] = [];
  const startOne = async (i: number): Promise<void> => {
    const pod = podConfig(`${rt.name}-mem-${i}`, randomUUID(), logRoot);
    await mkdir(pod.logDirectory, { recursive: true });
    try {
      const podId = await rt.cri.runPodSandbox(pod);
      started.push({ podId, logDir: pod.logDirectory });
      const containerId = await rt.cri.createContainer(podId, containerConfig(image), pod);
      await rt.cri.startContainer(containerId);
    } catch (err) {
      failures.push(errorText(err));
    }
  };
  work.check();
  await Promise.all(Array.from({ length: n }, (_, i) => work.track(startOne(i))));
  try {
    if (failures.length > 0) throw new Error(`${rt.name}: starting ${n} pods: ${failures[0]}`);
    await sleep(2000); // let the monitors settle (Go runtime, conmon's log setup)
    const snaps: MemSnapshot[] = [];
    for (let i = 0; i < 5; i++) {
      snaps.push(await snapshot(rt));
      await sleep(250);
    }
    const med = (f: (s: MemSnapshot) => number) => median(snaps.map(f));
    const last = snaps[snaps.length - 1]!;
    if (last.monitors.length === 0) throw new Error(`${rt.name}: no ${rt.monitorBinary} processes found`);
    if (last.containers.length !== n) {
      log(`${rt.name}: expected ${n} container processes, found ${last.containers.length}`);
    }
    return {
      pods: n,
      monitorBinary: rt.monitorBinary,
      daemonIdleRssKiB: idleRssKiB,
      daemonPeakRssKiB: peakRssKiB,
      daemonRssKiB: med((s) => s.daemonRssKiB),
      daemonPssKiB: med((s) => s.daemonPssKiB),
      monitorCount: last.monitors.length,
      monitorRssKiBPerPod: med((s) => sum(s.monitors, (m) => m.rssKiB)) / n,
      monitorPssKiBPerPod: med((s) => sum(s.monitors, (m) => m.pssKiB)) / n,
      sandboxCount: last.sandboxes.length,
      sandboxRssKiBPerPod: med((s) => sum(s.sandboxes, (m) => m.rssKiB)) / n,
      sandboxPssKiBPerPod: med((s) => sum(s.sandboxes, (m) => m.pssKiB)) / n,
      containerCount: last.containers.length,
      snapshots: snaps,
    };
  } finally {
    await work.track(
      Promise.all(
        started.map(async (s) => {
          await forceRemovePod(rt.cri, s.podId);
          await rm(s.logDir, { recursive: true, force: true });
        }),
      ),
    );
  }
}

// ---- the benchmark ----

export async function runPodBench(cleanup: Cleanup, opts: PodBenchOptions): Promise<PodBenchResult> {
  const tmp = await mkdtemp(join(tmpdir(), "berth-bench-pods-"));
  const daemonDirs: string[] = [];
  const runBefore = await runContainerdSnapshot();
  cleanup.add(`pod bench temp dir ${tmp}`, async () => {
    await removeTree(tmp);
  });
  cleanup.add("pod bench host state (processes, cgroups, bridge, /run/containerd)", async () => {
    await sweepHost([...daemonDirs, tmp]);
    await removeLeftoverNatRules();
    await removeBridge();
    await restoreRunContainerd(runBefore);
    const rules = await leftoverIptables();
    if (rules.length > 0) log(`cleanup: iptables rules still name the bench network:\n${rules.join("\n")}`);
    const mounts = (await Promise.all([...daemonDirs, tmp].map(mountsUnder))).flat();
    if (mounts.length > 0) log(`cleanup: mounts left: ${mounts.join(" ")}`);
  });
  if (existsSync(`/sys/class/net/${BRIDGE}`)) {
    log(`${BRIDGE} exists already (an earlier run's?); it is removed at the end`);
  }
  if ((await cgroupDirs()).length > 0) {
    log(`cgroup parent ${CGROUP_PARENT} exists already; reusing it (removed at the end)`);
  }

  const netDir = join(tmp, "net.d");
  const logRoot = join(tmp, "pod-logs");
  await mkdir(netDir, { recursive: true });
  await mkdir(logRoot, { recursive: true });
  await writeFile(join(netDir, "10-berth-bench.conflist"), conflist(join(tmp, "ipam")));

  // One image for both: busybox, PATH set, Entrypoint sleep infinity (containerd's pause).
  const image = buildImage([await busyboxLayer()], {
    config: {
      Entrypoint: ["/bin/sleep", "infinity"],
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      WorkingDir: "/",
    },
  });
  const registry = await startRegistry();
  cleanup.add("pod bench registry", () => registry.stop());
  const ref = `${registry.host}/bench/busybox:v1`;
  const sandboxImage = `${registry.host}/bench/pause:v1`;
  await pushImage(registry.url, "bench/busybox", "v1", image);
  await pushImage(registry.url, "bench/pause", "v1", image);

  const runtimes: PodRuntime[] = [];
  const newResult = (name: string, version: string, notes: string[]): PodRuntimeResult => ({
    name,
    version,
    notes,
    warmup: [],
    serial: [],
    parallel: [],
    serialMachineCpuMsPerLifecycle: 0,
  });

  // berthd
  const berthToml =
    `[cni]\nconf_dirs = ["${netDir}"]\nbin_dirs = ["${CNI_BIN_DIR}"]\n` +
    `[runtime.handlers.runc]\nruntime_path = "${RUNC}"\nruntime_root = "${tmp}/berth-runc"\n` +
    opts.berthToml;
  if (opts.cpuProfDir) await mkdir(opts.cpuProfDir, { recursive: true });
  const berthd = await startBerthd(
    cleanup,
    berthToml,
    opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {},
  );
  daemonDirs.push(berthd.dir);
  const berthCri = new PodCri(berthd.client);
  cleanup.add("berthd pods", () => removeAllPods(berthCri, "berth"));
  const archive = join(tmp, "busybox.tar");
  await writeFile(archive, await ociArchive([{ image, name: ref }]));
  await berthd.client.importImage(archive);
  const bv = await berthd.client.version();
  const berthVersion = `${bv.runtimeName} ${bv.runtimeVersion}`;
  const berthNotes = [
    "log_level debug (per-RPC durationMs)",
    "no pause process: pinned namespaces (unshare), conmon per container",
    ...(opts.berthToml.trim() ? [`extra config: ${opts.berthToml.trim()}`] : []),
    ...(opts.cpuProfDir ? [`CPU profile in ${opts.cpuProfDir}`] : []),
  ];
  runtimes.push({
    name: "berth",
    version: berthVersion,
    notes: berthNotes,
    instance: berthd,
    cri: berthCri,
    monitorBinary: "conmon",
    result: newResult("berth", berthVersion, berthNotes),
  });

  // containerd
  let containerdSkipped = opts.skipContainerd ?? containerdMissing();
  if (containerdSkipped === undefined) {
    try {
      const c = await startContainerd(cleanup, registry.host, { cniConfDir: netDir, sandboxImage });
      daemonDirs.push(c.dir);
      const cri = new PodCri(c.client);
      cleanup.add("containerd pods", () => removeAllPods(cri, "containerd"));
      await c.client.pullImage(ref, undefined, 120_000);
      await c.client.pullImage(sandboxImage, undefined, 120_000);
      await waitNetworkReady(c);
      const version = await containerdVersion().catch(() => "containerd");
      const notes = [
        "overlayfs snapshotter, runc v2 shim (one per pod), SystemdCgroup = false",
        `sandbox_image ${sandboxImage} (busybox sleep infinity)`,
        "log level info",
      ];
      runtimes.push({
        name: "containerd",
        version,
        notes,
        instance: c,
        cri,
        monitorBinary: "containerd-shim-runc-v2",
        result: newResult("containerd", version, notes),
      });
    } catch (err) {
      containerdSkipped = `containerd failed to start: ${errorText(err)}`;
      log(containerdSkipped);
    }
  }

  // Registered last, so it runs first: stop issuing RPCs and let the ones in flight finish.
  const work = new Work();
  cleanup.add("pod bench: stop and drain lifecycles in flight", () => work.abort());

  /** Runs `f` for a runtime; containerd is dropped on failure, berthd's failure ends the bench. */
  const guarded = async (rt: PodRuntime, what: string, f: () => Promise<void>) => {
    if (rt.failed) return;
    try {
      await f();
    } catch (err) {
      if (rt.name === "berth" || work.aborted) throw err;
      rt.failed = `${what}: ${errorText(err)}`;
      log(`${rt.name}: dropped: ${rt.failed}\n${rt.instance.output().slice(-3000)}`);
    }
  };

  // Warm-up (checks networking and the running container).
  for (const rt of runtimes) {
    await guarded(rt, "warm-up", async () => {
      for (let i = 0; i < opts.warmup; i++) {
        rt.result.warmup.push(
          await withTimeout(
            lifecycle(work, rt, `${rt.name}-warm-${i}`, logRoot, ref, true),
            120_000,
            "warm-up",
          ),
        );
      }
    });
  }
  const idle = new Map<string, number>();
  for (const rt of runtimes) idle.set(rt.name, (await readMem(rt.instance.pid))?.rssKiB ?? 0);

  // Serial, alternating chunks.
  const logMark = () => berthd.output().length;
  let mark = logMark();
  const cpu = new Map<string, number>();
  for (let done = 0, chunk = 0; done < opts.serialIterations; chunk++) {
    const n = Math.min(opts.chunk, opts.serialIterations - done);
    const order = chunk % 2 === 0 ? runtimes : [...runtimes].reverse();
    for (const rt of order) {
      await guarded(rt, "serial", async () => {
        const c0 = await machineCpuMs();
        for (let i = 0; i < n; i++) {
          rt.result.serial.push(await lifecycle(work, rt, `${rt.name}-s-${done + i}`, logRoot, ref));
        }
        cpu.set(rt.name, (cpu.get(rt.name) ?? 0) + (await machineCpuMs()) - c0);
      });
    }
    done += n;
    log(`serial: ${done}/${opts.serialIterations}`);
  }
  for (const rt of runtimes) {
    rt.result.serialMachineCpuMsPerLifecycle = (cpu.get(rt.name) ?? 0) / Math.max(1, rt.result.serial.length);
  }
  const serialLogs = berthd.output().slice(mark);
  mark = logMark();

  // Parallel rounds.
  const samplers = new Map(runtimes.map((rt) => [rt.name, new RssSampler(rt.instance.pid, 50).start()]));
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? runtimes : [...runtimes].reverse();
    for (const rt of order) {
      await guarded(rt, "parallel", async () => {
        const t0 = nowMs();
        const settled = await Promise.allSettled(
          Array.from({ length: opts.parallel }, (_, i) =>
            lifecycle(work, rt, `${rt.name}-p-${round}-${i}`, logRoot, ref),
          ),
        );
        const wallMs = nowMs() - t0;
        const bad = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
        if (bad) throw bad.reason;
        const lifecycles = settled.map((s) => (s as PromiseFulfilledResult<LifecycleSample>).value);
        rt.result.parallel.push({ round, wallMs, lifecycles });
      });
    }
    log(`parallel: round ${round + 1}/${opts.rounds}`);
  }
  const peaks = new Map<string, number>();
  for (const [name, s] of samplers) peaks.set(name, (await s.stop()).maxRssKiB);
  const parallelLogs = berthd.output().slice(mark);

  // Memory with `parallel` pods running.
  for (const rt of runtimes) {
    await guarded(rt, "memory", async () => {
      rt.result.memory = await measureMemory(
        work,
        rt,
        opts.parallel,
        logRoot,
        ref,
        idle.get(rt.name) ?? 0,
        peaks.get(rt.name) ?? 0,
      );
      const m = rt.result.memory;
      log(
        `${rt.name} with ${m.pods} pods: daemon ${(m.daemonRssKiB / 1024).toFixed(1)} MiB, ` +
          `${m.monitorCount} × ${rt.monitorBinary} ${(m.monitorRssKiBPerPod / 1024).toFixed(2)} MiB/pod`,
      );
    });
  }

  // Exec on one running container per runtime (after the memory figures: `cat` grows the heap).
  if (opts.execIterations > 0) await execBench(work, runtimes, logRoot, ref, `${tmp}/berth-runc`, opts);

  if (opts.startupPods > 0) {
    for (const rt of runtimes) {
      await guarded(rt, "start-up", async () => {
        rt.result.startup = await measureStartup(work, rt, opts, logRoot, ref);
        log(
          `${rt.name}: ready in ${rt.result.startup.readyMs.map((x) => x.toFixed(0)).join(", ")} ms with ${opts.startupPods} pods`,
        );
      });
    }
  }

  const berthRt = runtimes[0]!;
  berthRt.result.serverMs = { serial: serverDurations(serialLogs), parallel: serverDurations(parallelLogs) };
  const c = runtimes.find((r) => r.name === "containerd");
  if (c?.failed) containerdSkipped = `containerd failed: ${c.failed}`;
  return {
    berth: berthRt.result,
    ...(c && !c.failed ? { containerd: c.result } : {}),
    ...(containerdSkipped !== undefined ? { containerdSkipped } : {}),
    options: {
      serialIterations: opts.serialIterations,
      parallel: opts.parallel,
      rounds: opts.rounds,
      warmup: opts.warmup,
      chunk: opts.chunk,
      execIterations: opts.execIterations,
      execCatRuns: opts.execCatRuns,
      startupPods: opts.startupPods,
      startupRestarts: opts.startupRestarts,
    },
    network: {
      bridge: BRIDGE,
      subnet: SUBNET,
      plugins: ["bridge (isGateway, ipMasq, host-local)", "portmap"],
      binDir: CNI_BIN_DIR,
      cgroupParent: CGROUP_PARENT,
    },
    image: { ref, sandboxImage, manifestDigest: image.manifestDigest, configDigest: image.configDigest },
  };
}

/**
 * Start-up: `startupPods` pods with a running container each, then the daemon restarted
 * `startupRestarts` times over them (its pods and containers live on, as after an upgrade),
 * timed from exec to the first answered Version; the pods are removed afterwards.
 */
async function measureStartup(
  work: Work,
  rt: PodRuntime,
  opts: PodBenchOptions,
  logRoot: string,
  image: string,
): Promise<StartupResult> {
  const restart = rt.instance.restart;
  if (!restart) throw new Error(`${rt.name}: cannot restart`);
  const made: Array<{ podId: string; logDir: string }> = [];
  try {
    for (let i = 0; i < opts.startupPods; i += opts.parallel) {
      const batch = Array.from({ length: Math.min(opts.parallel, opts.startupPods - i) }, async (_, j) => {
        work.check();
        const pod = podConfig(`${rt.name}-up-${i + j}`, randomUUID(), logRoot);
        await mkdir(pod.logDirectory, { recursive: true });
        const podId = await rt.cri.runPodSandbox(pod);
        made.push({ podId, logDir: pod.logDirectory });
        const containerId = await rt.cri.createContainer(podId, containerConfig(image), pod);
        await rt.cri.startContainer(containerId);
      });
      await work.track(Promise.all(batch));
    }
    const readyMs: number[] = [];
    for (let i = 0; i < opts.startupRestarts; i++) {
      work.check();
      readyMs.push(await work.track(restart(() => machineQuiet(work))));
      rt.cri.cri = rt.instance.client;
    }
    const listedPods = (await rt.cri.listPodIds()).length;
    return { pods: opts.startupPods, readyMs, listedPods };
  } finally {
    for (let i = 0; i < made.length; i += opts.parallel) {
      await work.track(
        Promise.all(
          made.slice(i, i + opts.parallel).map(async (m) => {
            await forceRemovePod(rt.cri, m.podId);
            await rm(m.logDir, { recursive: true, force: true });
          }),
        ),
      );
    }
  }
}

/** Runs the exec benchmark on a pod + container per runtime; a failure is logged, not fatal. */
async function execBench(
  work: Work,
  runtimes: PodRuntime[],
  logRoot: string,
  image: string,
  berthRuncRoot: string,
  opts: PodBenchOptions,
): Promise<void> {
  const pods: Array<{ rt: PodRuntime; podId: string }> = [];
  try {
    const targets: ExecTarget[] = [];
    for (const rt of runtimes.filter((r) => !r.failed)) {
      const pod = podConfig(`${rt.name}-exec`, randomUUID(), logRoot);
      await mkdir(pod.logDirectory, { recursive: true });
      const podId = await rt.cri.runPodSandbox(pod);
      pods.push({ rt, podId });
      const containerId = await rt.cri.createContainer(podId, containerConfig(image), pod);
      await rt.cri.startContainer(containerId);
      targets.push({
        name: rt.name,
        client: rt.instance.client,
        containerId,
        ...(rt.name === "berth" ? { runcRoot: berthRuncRoot } : {}),
      });
    }
    const results = await work.track(
      runExecBench(targets, opts.execIterations, opts.execCatRuns, () => work.check()),
    );
    for (const rt of runtimes) {
      const r = results.get(rt.name);
      if (r) rt.result.exec = r;
    }
    log(`exec: ${opts.execIterations} runs of each kind, ${opts.execCatRuns} cat runs per runtime`);
  } catch (err) {
    if (work.aborted) throw err;
    log(`exec bench failed: ${errorText(err)}`);
  } finally {
    for (const p of pods) await forceRemovePod(p.rt.cri, p.podId);
  }
}

async function removeAllPods(cri: PodCri, name: string): Promise<void> {
  let ids: string[];
  try {
    ids = await cri.listPodIds();
  } catch (err) {
    log(`cleanup: listing ${name} pods: ${errorText(err)}`);
    return;
  }
  if (ids.length > 0) log(`cleanup: removing ${ids.length} ${name} pod(s)`);
  for (const id of ids) await forceRemovePod(cri, id);
}

async function waitNetworkReady(c: RuntimeInstance): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = await c.client.status();
    const net = s.status?.conditions.find((x) => x.type === "NetworkReady");
    if (net?.status) return;
    if (Date.now() > deadline) throw new Error(`containerd: NetworkReady is false: ${net?.message ?? ""}`);
    await sleep(200);
  }
}
