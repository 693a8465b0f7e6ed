/** Pod benchmark summaries: per-RPC p50/p95, throughput, memory, the printed tables and the goal. */
import { EXEC_KINDS, EXEC_LABELS, type ExecBenchResult } from "./exec.js";
import type { LifecycleSample, PodBenchResult, PodRpc, PodRuntimeResult } from "./pods.js";
import { POD_RPCS } from "./pods.js";

/** Goal: Berth's pod+container start (RunPodSandbox + CreateContainer + StartContainer) ≤ this × containerd's. */
export const POD_GOAL_RATIO = 0.8;

export interface Dist {
  n: number;
  p50: number;
  p95: number;
  mean: number;
  min: number;
  max: number;
}

/** Linear interpolation between closest ranks (numpy's default). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function dist(xs: readonly number[]): Dist {
  return {
    n: xs.length,
    p50: percentile(xs, 0.5),
    p95: percentile(xs, 0.95),
    mean: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN,
    min: xs.length ? Math.min(...xs) : Number.NaN,
    max: xs.length ? Math.max(...xs) : Number.NaN,
  };
}

/** Per-RPC rows plus two derived ones. */
export type PodMetric = PodRpc | "start" | "lifecycle";
export const METRIC_LABELS: Record<PodMetric, string> = {
  RunPodSandbox: "RunPodSandbox",
  CreateContainer: "CreateContainer",
  StartContainer: "StartContainer",
  StopContainer: "StopContainer (timeout 0)",
  RemoveContainer: "RemoveContainer",
  StopPodSandbox: "StopPodSandbox",
  RemovePodSandbox: "RemovePodSandbox",
  start: "pod+container start (Run+Create+Start)",
  lifecycle: "full lifecycle (sum of the 7 RPCs)",
};
const METRICS: PodMetric[] = [...POD_RPCS, "start", "lifecycle"];

function metricValue(s: LifecycleSample, m: PodMetric): number {
  if (m === "start") return s.ms.RunPodSandbox + s.ms.CreateContainer + s.ms.StartContainer;
  if (m === "lifecycle") return POD_RPCS.reduce((n, r) => n + s.ms[r], 0);
  return s.ms[m];
}

function latencies(samples: readonly LifecycleSample[]): Record<PodMetric, Dist> {
  return Object.fromEntries(METRICS.map((m) => [m, dist(samples.map((s) => metricValue(s, m)))])) as Record<
    PodMetric,
    Dist
  >;
}

export interface PodSummary {
  serial: Record<PodMetric, Dist>;
  parallel: Record<PodMetric, Dist>;
  /** Wall time of one round of `parallel` concurrent lifecycles. */
  parallelRoundMs: Dist;
  /** Lifecycles per second in the parallel rounds (all lifecycles / sum of round wall times). */
  parallelLifecyclesPerSec: number;
  serialMachineCpuMsPerLifecycle: number;
  memory?: {
    daemonIdleRssMiB: number;
    daemonRssMiB: number;
    daemonPeakRssMiB: number;
    monitorRssMiBPerPod: number;
    monitorPssMiBPerPod: number;
    sandboxRssMiBPerPod: number;
    perPodOverheadRssMiB: number;
    totalRssMiB: number;
    monitorCount: number;
    sandboxCount: number;
    containerCount: number;
  };
  /** Daemon restarts with pods on disk: exec to first answered Version, ms. */
  startup?: { pods: number; listedPods: number; readyMs: Dist };
  /** berthd: server-side durationMs from its log. */
  server?: { serial: Record<PodRpc, Dist>; parallel: Record<PodRpc, Dist> };
}

const mib = (kib: number) => kib / 1024;

export function summarizePods(r: PodRuntimeResult): PodSummary {
  const par = r.parallel.flatMap((round) => round.lifecycles);
  const wall = r.parallel.map((round) => round.wallMs);
  const m = r.memory;
  const byRpc = (x: Record<PodRpc, number[]>) =>
    Object.fromEntries(POD_RPCS.map((k) => [k, dist(x[k])])) as Record<PodRpc, Dist>;
  return {
    serial: latencies(r.serial),
    parallel: latencies(par),
    parallelRoundMs: dist(wall),
    parallelLifecyclesPerSec: par.length / (wall.reduce((a, b) => a + b, 0) / 1000),
    serialMachineCpuMsPerLifecycle: r.serialMachineCpuMsPerLifecycle,
    ...(m
      ? {
          memory: {
            daemonIdleRssMiB: mib(m.daemonIdleRssKiB),
            daemonRssMiB: mib(m.daemonRssKiB),
            daemonPeakRssMiB: mib(m.daemonPeakRssKiB),
            monitorRssMiBPerPod: mib(m.monitorRssKiBPerPod),
            monitorPssMiBPerPod: mib(m.monitorPssKiBPerPod),
            sandboxRssMiBPerPod: mib(m.sandboxRssKiBPerPod),
            perPodOverheadRssMiB: mib(m.monitorRssKiBPerPod + m.sandboxRssKiBPerPod),
            totalRssMiB: mib(m.daemonRssKiB + (m.monitorRssKiBPerPod + m.sandboxRssKiBPerPod) * m.pods),
            monitorCount: m.monitorCount,
            sandboxCount: m.sandboxCount,
            containerCount: m.containerCount,
          },
        }
      : {}),
    ...(r.startup
      ? {
          startup: {
            pods: r.startup.pods,
            listedPods: r.startup.listedPods,
            readyMs: dist(r.startup.readyMs),
          },
        }
      : {}),
    ...(r.serverMs
      ? { server: { serial: byRpc(r.serverMs.serial), parallel: byRpc(r.serverMs.parallel) } }
      : {}),
  };
}

export interface PodGoal {
  ratio: number | undefined;
  met: boolean | undefined;
  text: string;
}

export function podGoal(berth: PodSummary, containerd: PodSummary | undefined): PodGoal {
  const what = `Goal: Berth pod+container start (RunPodSandbox + CreateContainer + StartContainer, serial p50) <= ${POD_GOAL_RATIO}x containerd's`;
  if (!containerd) return { ratio: undefined, met: undefined, text: `${what}: not measured (no containerd)` };
  const b = berth.serial.start.p50;
  const c = containerd.serial.start.p50;
  const ratio = b / c;
  const met = ratio <= POD_GOAL_RATIO;
  return {
    ratio,
    met,
    text: `${what}: ${ratio.toFixed(2)}x (${b.toFixed(1)} ms vs ${c.toFixed(1)} ms) -> ${met ? "MET" : "NOT MET"}`,
  };
}

/** Left-aligned first column, right-aligned others, a rule under the header. */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) =>
    r
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(fmt)].join("\n");
}

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "n/a");
const ratio = (b: number, c: number | undefined) =>
  c === undefined || !Number.isFinite(c) || c === 0 ? "n/a" : `${(b / c).toFixed(2)}x`;

export function latencyTable(
  berth: Record<PodMetric, Dist>,
  containerd: Record<PodMetric, Dist> | undefined,
): string {
  const header = ["ms", "berth p50", "p95", "containerd p50", "p95", "ratio p50", "ratio p95"];
  const rows = METRICS.map((m) => [
    ...distRow(METRIC_LABELS[m], berth[m], containerd?.[m]),
    ratio(berth[m].p95, containerd?.[m].p95),
  ]);
  return formatTable(header, rows);
}

/** label, berth p50/p95, containerd p50/p95, ratio of the p50s. */
function distRow(label: string, b: Dist, c: Dist | undefined): string[] {
  return [label, ms(b.p50), ms(b.p95), c ? ms(c.p50) : "n/a", c ? ms(c.p95) : "n/a", ratio(b.p50, c?.p50)];
}

export function throughputMemoryTable(
  berth: PodSummary,
  containerd: PodSummary | undefined,
  pods: number,
): string {
  const header = ["metric", "berth", "containerd", "berth/containerd"];
  const rows: string[][] = [];
  const add = (label: string, f: (s: PodSummary) => number | undefined, fmt: (v: number) => string) => {
    const b = f(berth);
    const c = containerd ? f(containerd) : undefined;
    rows.push([
      label,
      b === undefined ? "n/a" : fmt(b),
      c === undefined ? "n/a" : fmt(c),
      b === undefined ? "n/a" : ratio(b, c),
    ]);
  };
  const mibFmt = (v: number) => `${v.toFixed(2)} MiB`;
  add(
    `${pods} x lifecycle in parallel, wall p50`,
    (s) => s.parallelRoundMs.p50,
    (v) => `${v.toFixed(0)} ms`,
  );
  add(
    `${pods} x lifecycle in parallel, wall p95`,
    (s) => s.parallelRoundMs.p95,
    (v) => `${v.toFixed(0)} ms`,
  );
  add(
    "parallel throughput",
    (s) => s.parallelLifecyclesPerSec,
    (v) => `${v.toFixed(1)} pods/s`,
  );
  add(
    "machine CPU per serial lifecycle",
    (s) => s.serialMachineCpuMsPerLifecycle,
    (v) => `${v.toFixed(0)} ms`,
  );
  add("daemon RSS idle (no pods)", (s) => s.memory?.daemonIdleRssMiB, mibFmt);
  add(`daemon RSS, ${pods} pods running`, (s) => s.memory?.daemonRssMiB, mibFmt);
  add("daemon RSS peak (parallel rounds)", (s) => s.memory?.daemonPeakRssMiB, mibFmt);
  add("monitor RSS per pod (conmon | shim)", (s) => s.memory?.monitorRssMiBPerPod, mibFmt);
  add("monitor PSS per pod", (s) => s.memory?.monitorPssMiBPerPod, mibFmt);
  add("sandbox process RSS per pod (- | pause)", (s) => s.memory?.sandboxRssMiBPerPod, mibFmt);
  add("per-pod runtime overhead RSS", (s) => s.memory?.perPodOverheadRssMiB, mibFmt);
  add(`daemon + ${pods} pods' overhead RSS`, (s) => s.memory?.totalRssMiB, mibFmt);
  return formatTable(header, rows);
}

/** "berthd server side p50 (client p50): RunPodSandbox 40.1 (42.0) ..." */
export function serverLine(berth: PodSummary, phase: "serial" | "parallel"): string | undefined {
  const s = berth.server?.[phase];
  if (!s) return undefined;
  const parts = POD_RPCS.map((r) => `${r} ${ms(s[r].p50)} (${ms(berth[phase][r].p50)})`);
  return `berthd server-side p50 from its log (client p50), ${phase}, ms: ${parts.join(", ")}`;
}

/** Exec latency (p50/p95, ms) and `cat` throughput (median MiB/s) per runtime. */
export function execTable(berth: ExecBenchResult, containerd: ExecBenchResult | undefined): string {
  const header = ["exec", "berth p50", "p95", "containerd p50", "p95", "ratio p50"];
  const rows = EXEC_KINDS.filter((k) => berth.ms[k]?.length).map((k) => {
    const cs = containerd?.ms[k];
    return distRow(EXEC_LABELS[k], dist(berth.ms[k] ?? []), cs?.length ? dist(cs) : undefined);
  });
  const bc = percentile(berth.catMiBps, 0.5);
  const cc = containerd?.catMiBps.length ? percentile(containerd.catMiBps, 0.5) : undefined;
  rows.push([
    "cat 32 MiB stdin→stdout (MiB/s, median)",
    ms(bc),
    "",
    cc === undefined ? "n/a" : ms(cc),
    "",
    ratio(bc, cc),
  ]);
  return formatTable(header, rows);
}

export function podTables(
  res: PodBenchResult,
  berth: PodSummary,
  containerd: PodSummary | undefined,
): string {
  const o = res.options;
  const lines = [
    `Pod lifecycle benchmark: image ${res.image.ref}; CNI ${res.network["bridge"]} ${res.network["subnet"]} ` +
      "(bridge + portmap); StopContainer timeout 0",
    `${res.berth.version}; ${res.containerd?.version ?? `containerd: ${res.containerdSkipped ?? "n/a"}`}`,
    "",
    `Serial: ${res.berth.serial.length} lifecycles per runtime (after ${o.warmup} warm-up), client-side latency`,
    latencyTable(berth.serial, containerd?.serial),
    "",
    `Parallel: ${o.rounds} rounds x ${o.parallel} concurrent lifecycles (${res.berth.parallel.length * o.parallel} per runtime)`,
    latencyTable(berth.parallel, containerd?.parallel),
    "",
    `Throughput and memory (memory with ${o.parallel} pods running: VmRSS; PSS splits shared pages)`,
    throughputMemoryTable(berth, containerd, o.parallel),
  ];
  if (res.berth.exec) {
    lines.push(
      "",
      `Exec on a running container (${o.execIterations} runs each; client-side, through the streaming server)`,
      execTable(res.berth.exec, res.containerd?.exec),
    );
  }
  const sl = serverLine(berth, "serial");
  if (sl) lines.push("", sl);
  const pl = serverLine(berth, "parallel");
  if (pl) lines.push(pl);
  return lines.join("\n");
}
