/**
 * The one table of a run: Berth and containerd side by side with ratios and the goals of
 * issue 14 (lifecycle per call, serial and parallel; throughput; memory; pull; start-up),
 * built from bench.json's pull and pod parts (a one-part run keeps the other part's results).
 */
import type { Dist, PodSummary } from "./pod-report.js";
import { formatTable } from "./pod-report.js";
import { POD_RPCS } from "./pods.js";
import { GOAL_FIRST_BAR, GOAL_RATIO, type Summary } from "./report.js";

export interface SummaryRow {
  metric: string;
  berth: number | null;
  containerd: number | null;
  unit: string;
  /** berth / containerd. */
  ratio: number | null;
  goal?: string;
  /** "met", "first bar" (met the first bar only) or "not met". */
  met?: "met" | "first bar" | "not met";
}

type Verdict = NonNullable<SummaryRow["met"]>;
const atMost =
  (target: number, firstBar?: number) =>
  (r: number): Verdict =>
    r <= target ? "met" : firstBar !== undefined && r <= firstBar ? "first bar" : "not met";

interface Parts {
  pull?: { berth: Summary; containerd?: Summary };
  pods?: { berth: PodSummary; containerd?: PodSummary };
}

/** Pulls the summaries out of a bench.json-shaped report (either part may be missing). */
export function partsOf(report: Record<string, unknown>): Parts {
  const get = (o: unknown, ...path: string[]): unknown =>
    path.reduce<unknown>(
      (v, k) => (typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k] : undefined),
      o,
    );
  const parts: Parts = {};
  const pb = get(report, "berth", "summary") as Summary | undefined;
  if (pb) {
    const pc = get(report, "containerd", "summary") as Summary | undefined;
    parts.pull = { berth: pb, ...(pc ? { containerd: pc } : {}) };
  }
  const sb = get(report, "pods", "summary", "berth") as PodSummary | undefined;
  if (sb?.serial) {
    const sc = get(report, "pods", "summary", "containerd") as PodSummary | undefined;
    parts.pods = { berth: sb, ...(sc?.serial ? { containerd: sc } : {}) };
  }
  return parts;
}

export function summaryRows(parts: Parts): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const add = (
    metric: string,
    unit: string,
    b: number | undefined,
    c: number | undefined,
    goal?: { text: string; test: (ratio: number, berth: number) => Verdict },
  ) => {
    const ok = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
    const ratio = ok(b) && ok(c) && c !== 0 ? b / c : null;
    rows.push({
      metric,
      berth: ok(b) ? b : null,
      containerd: ok(c) ? c : null,
      unit,
      ratio,
      ...(goal ? { goal: goal.text } : {}),
      // A ratio goal needs both runtimes; the start-up goal is absolute (ms).
      ...(goal && ok(b) && (ratio !== null || goal.text.endsWith(" ms"))
        ? { met: goal.test(ratio ?? 0, b) }
        : {}),
    });
  };
  const pods = parts.pods;
  if (pods) {
    for (const phase of ["serial", "parallel"] as const) {
      const label = phase === "serial" ? "serial" : "8-parallel";
      for (const rpc of POD_RPCS) {
        for (const q of ["p50", "p95"] as const) {
          add(`${rpc} ${label} ${q}`, "ms", pods.berth[phase][rpc][q], pods.containerd?.[phase][rpc][q]);
        }
      }
      for (const q of ["p50", "p95"] as const) {
        add(
          `sum of the seven, ${label} ${q}`,
          "ms",
          pods.berth[phase].lifecycle[q],
          pods.containerd?.[phase].lifecycle[q],
          phase === "serial" && q === "p50"
            ? { text: "<= x0.6 (first bar x0.8)", test: atMost(0.6, 0.8) }
            : undefined,
        );
      }
    }
    add(
      "8-parallel throughput",
      "lifecycles/s",
      pods.berth.parallelLifecyclesPerSec,
      pods.containerd?.parallelLifecyclesPerSec,
      {
        text: ">= x1.5",
        test: (r) => (r >= 1.5 ? "met" : "not met"),
      },
    );
    const m = (s: PodSummary | undefined) => s?.memory;
    add(
      "daemon RSS idle (pod part, after warm-up)",
      "MiB",
      m(pods.berth)?.daemonIdleRssMiB,
      m(pods.containerd)?.daemonIdleRssMiB,
    );
    add(
      "daemon RSS peak (8-parallel rounds)",
      "MiB",
      m(pods.berth)?.daemonPeakRssMiB,
      m(pods.containerd)?.daemonPeakRssMiB,
    );
    const up = (s: PodSummary | undefined): Dist | undefined => s?.startup?.readyMs;
    const n = pods.berth.startup?.pods;
    add(
      `start-up to first Version, ${n ?? "?"} pods on disk (median)`,
      "ms",
      up(pods.berth)?.p50,
      up(pods.containerd)?.p50,
      {
        text: "<= 300 ms",
        test: (_r, b) => (b <= 300 ? "met" : "not met"),
      },
    );
  }
  const pull = parts.pull;
  if (pull) {
    add("idle RSS before a pull", "MiB", pull.berth.idleRssMiB, pull.containerd?.idleRssMiB);
    add(
      "idle RSS 5 s after a cold pull",
      "MiB",
      pull.berth.afterPullIdleRssMiB,
      pull.containerd?.afterPullIdleRssMiB,
      {
        text: "<= x1.3",
        test: atMost(1.3),
      },
    );
    add("peak RSS during a cold pull", "MiB", pull.berth.peakRssMiB, pull.containerd?.peakRssMiB, {
      text: "<= x2",
      test: atMost(2),
    });
    add("cold pull (median)", "ms", pull.berth.coldMedianMs, pull.containerd?.coldMedianMs, {
      text: `<= x${GOAL_RATIO} (first bar x${GOAL_FIRST_BAR})`,
      test: atMost(GOAL_RATIO, GOAL_FIRST_BAR),
    });
  }
  return rows;
}

export function summaryTable(rows: readonly SummaryRow[]): string {
  const v = (x: number | null, unit: string) =>
    x === null ? "n/a" : `${unit === "ms" && x >= 100 ? x.toFixed(0) : x.toFixed(1)} ${unit}`;
  return formatTable(
    ["berth vs containerd (same run)", "berth", "containerd", "ratio", "goal"],
    rows.map((r) => [
      r.metric,
      v(r.berth, r.unit),
      v(r.containerd, r.unit),
      r.ratio === null ? "n/a" : `${r.ratio.toFixed(2)}x`,
      r.goal === undefined ? "" : `${r.goal}${r.met === undefined ? "" : `: ${r.met}`}`,
    ]),
  );
}
