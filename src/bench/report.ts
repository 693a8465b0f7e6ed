/** Summaries, the printed table and bench-results/bench.json. */
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, release, totalmem } from "node:os";
import { dirname } from "node:path";
import type { Floor } from "./floor.js";
import type { BenchImage } from "./image.js";
import type { PullSample, RuntimeResult } from "./measure.js";

/** Goal: Berth's cold pull at most this fraction of containerd's (issue 14), and its first bar. */
export const GOAL_RATIO = 0.35;
export const GOAL_FIRST_BAR = 0.4;
const MB = 1_000_000;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Summary {
  coldMedianMs: number;
  warmMedianMs: number;
  /** Uncompressed bytes / cold median, MB/s (10^6). */
  throughputMBps: number;
  compressedMBps: number;
  idleRssMiB: number;
  peakRssMiB: number;
  /** VmRSS 5 s after a cold pull, median. */
  afterPullIdleRssMiB: number;
  /** CPU seconds (user + system) the runtime used per cold pull, median. */
  coldCpuS: number;
  /** CPU seconds the registry used per cold pull, median (undefined when not measured). */
  registryCpuS?: number;
}

export function summarize(r: RuntimeResult, image: BenchImage): Summary {
  const cold = median(r.cold.map((s) => s.ms));
  const pick = (xs: PullSample[], f: (s: PullSample) => number) => median(xs.map(f));
  return {
    coldMedianMs: cold,
    warmMedianMs: pick(r.warm, (s) => s.ms),
    throughputMBps: image.stats.uncompressedBytes / MB / (cold / 1000),
    compressedMBps: image.stats.compressedBytes / MB / (cold / 1000),
    idleRssMiB: pick(r.cold, (s) => s.idleRssKiB) / 1024,
    peakRssMiB: pick(r.cold, (s) => s.peakRssKiB) / 1024,
    afterPullIdleRssMiB: pick(r.cold, (s) => s.afterIdleRssKiB ?? Number.NaN) / 1024,
    coldCpuS: pick(r.cold, (s) => s.cpuUserMs + s.cpuSystemMs) / 1000,
    ...(r.cold.every((s) => s.registryCpuMs !== undefined) && r.cold.length > 0
      ? { registryCpuS: pick(r.cold, (s) => s.registryCpuMs ?? 0) / 1000 }
      : {}),
  };
}

interface Row {
  label: string;
  value: (s: Summary) => number;
  format: (v: number) => string;
}

const ROWS: Row[] = [
  { label: "cold pull, median", value: (s) => s.coldMedianMs / 1000, format: (v) => `${v.toFixed(2)} s` },
  { label: "warm pull, median", value: (s) => s.warmMedianMs, format: (v) => `${v.toFixed(1)} ms` },
  {
    label: "throughput (uncompressed)",
    value: (s) => s.throughputMBps,
    format: (v) => `${v.toFixed(1)} MB/s`,
  },
  {
    label: "throughput (compressed)",
    value: (s) => s.compressedMBps,
    format: (v) => `${v.toFixed(1)} MB/s`,
  },
  { label: "CPU time (cold pull)", value: (s) => s.coldCpuS, format: (v) => `${v.toFixed(2)} s` },
  { label: "idle RSS (before pull)", value: (s) => s.idleRssMiB, format: (v) => `${v.toFixed(1)} MiB` },
  { label: "peak RSS (cold pull)", value: (s) => s.peakRssMiB, format: (v) => `${v.toFixed(1)} MiB` },
  {
    label: "idle RSS 5 s after the pull",
    value: (s) => s.afterPullIdleRssMiB,
    format: (v) => `${v.toFixed(1)} MiB`,
  },
];

export interface GoalResult {
  ratio: number | undefined;
  met: boolean | undefined;
  text: string;
}

export function goal(berth: Summary, containerd: Summary | undefined): GoalResult {
  if (!containerd) {
    return {
      ratio: undefined,
      met: undefined,
      text: `Goal: Berth cold pull <= ${GOAL_RATIO}x containerd's (first bar ${GOAL_FIRST_BAR}x): not measured (no containerd)`,
    };
  }
  const ratio = berth.coldMedianMs / containerd.coldMedianMs;
  const met = ratio <= GOAL_RATIO;
  return {
    ratio,
    met,
    text:
      `Goal: Berth cold pull <= ${GOAL_RATIO}x containerd's (first bar ${GOAL_FIRST_BAR}x): ${ratio.toFixed(2)}x ` +
      `(${(berth.coldMedianMs / 1000).toFixed(2)} s vs ${(containerd.coldMedianMs / 1000).toFixed(2)} s) -> ` +
      (met ? "MET" : ratio <= GOAL_FIRST_BAR ? "first bar met" : "NOT MET"),
  };
}

export function table(berth: Summary, containerd: Summary | undefined): string {
  const header = ["metric", "berth", "containerd", "berth/containerd"];
  const lines = ROWS.map((row) => {
    const b = row.value(berth);
    const c = containerd ? row.value(containerd) : undefined;
    return [
      row.label,
      row.format(b),
      c === undefined ? "n/a" : row.format(c),
      c === undefined || c === 0 ? "n/a" : `${(b / c).toFixed(2)}x`,
    ];
  });
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [fmt(header), rule, ...lines.map(fmt)].join("\n");
}

/** "berth: 3.28 s CPU in 2.43 s (1.35 of 2 cores busy), registry +0.35 s": how CPU-bound a pull was. */
export function cpuLine(name: string, s: Summary, cores: number): string {
  const wall = s.coldMedianMs / 1000;
  const reg = s.registryCpuS === undefined ? "" : `, registry +${s.registryCpuS.toFixed(2)} s`;
  return (
    `${name}: ${s.coldCpuS.toFixed(2)} s CPU in ${wall.toFixed(2)} s cold pull ` +
    `(${(s.coldCpuS / wall).toFixed(2)} of ${cores} cores${reg})`
  );
}

export function environment(): Record<string, unknown> {
  return {
    node: process.version,
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? "unknown",
    kernel: release(),
    platform: `${process.platform}/${process.arch}`,
    memTotalMiB: Math.round(totalmem() / 1024 / 1024),
  };
}

export interface BenchReport {
  generatedAt: string;
  environment: Record<string, unknown>;
  reference: string;
  image: Record<string, unknown>;
  berth: RuntimeResult & { summary: Summary };
  containerd: (RuntimeResult & { summary: Summary }) | { skipped: string };
  goal: GoalResult;
  floor: Floor;
}

export function imageInfo(image: BenchImage): Record<string, unknown> {
  return {
    ...image.stats,
    manifestDigest: image.manifestDigest,
    configDigest: image.configDigest,
    layerList: image.layers.map((l) => ({
      digest: l.digest,
      diffId: l.diffId,
      compressedBytes: l.size,
      uncompressedBytes: l.tarSize,
      files: l.files,
      directories: l.directories,
    })),
  };
}

/** Writes bench.json: the pull benchmark's fields at the top (as before) and/or `pods`. */
export async function writeReport(
  path: string,
  report: Partial<BenchReport> & { pods?: unknown },
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}
