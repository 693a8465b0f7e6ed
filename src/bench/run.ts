/**
 * `npm run bench`: two parts, both printed and written to bench-results/bench.json.
 *
 * pull: pull one large image (6 layers, ~300 MB / ~220 MB gzip) from a local docker-registry
 * into Berth and, when installed, into containerd through their CRI sockets; cold (fresh root)
 * ×3 and warm ×3 each, and the same pull's floor once a round (src/bench/floor.ts). (Top-level
 * fields of bench.json.)
 *
 * pods: pod + container lifecycle latency (serial and 8 in parallel), throughput and memory of
 * berthd vs containerd with the same busybox image and CNI bridge network (src/bench/pods.ts).
 * (`pods` in bench.json.)
 *
 * Environment: BENCH_ONLY=pull|pods (one part; the other part's earlier results in bench.json
 * are kept), BENCH_COLD_RUNS, BENCH_WARM_RUNS (default 3), BENCH_SKIP_CONTAINERD=1,
 * BENCH_CONTAINERD_DEBUG=1 (per-layer apply times from containerd's debug log),
 * BENCH_BERTH_TOML (extra berthd config, "\n" for newlines; e.g. "[image]\nmax_concurrent_downloads = 6"),
 * BENCH_POD_ITERATIONS (serial lifecycles, default 60), BENCH_POD_PARALLEL (default 8),
 * BENCH_POD_ROUNDS (parallel rounds, default 8), BENCH_POD_WARMUP (default 3),
 * BENCH_EXEC_ITERATIONS (timed runs of each exec kind, default 20),
 * BENCH_EXEC_CAT_RUNS (32 MiB `cat` throughput runs, default 3),
 * BENCH_STARTUP_PODS (pods, each with a running container, on disk while the daemon restarts;
 * default 100, 0: no start-up measurement), BENCH_STARTUP_RESTARTS (timed restarts, default 5),
 * BENCH_BERTH_CPU_PROF=<dir> (pods: V8 CPU profile of berthd, written when it exits).
 */
import { readFile } from "node:fs/promises";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startRegistry } from "../tools/registry-server.js";
import { berthDriver } from "./berth.js";
import { containerdDriver, containerdMissing } from "./containerd.js";
import { type Floor, floorLine, PullFloor } from "./floor.js";
import { ensureBenchImage, pushBenchImage } from "./image.js";
import { type RuntimeResult, runInterleaved } from "./measure.js";
import { type PodSummary, podGoal, podTables, summarizePods } from "./pod-report.js";
import { runPodBench } from "./pods.js";
import {
  type BenchReport,
  cpuLine,
  environment,
  goal,
  imageInfo,
  type Summary,
  summarize,
  table,
  writeReport,
} from "./report.js";
import { partsOf, summaryRows, summaryTable } from "./summary.js";
import { Cleanup, log, pidsWithArg } from "./util.js";

const REPO_DIR = fileURLToPath(new URL("../../", import.meta.url));
const RESULTS_DIR = join(REPO_DIR, "bench-results");
const REPO = "bench/large";
const TAG = "v1";
/** Layers the floor fetches at a time: both runtimes' default max_concurrent_downloads. */
const FLOOR_THREADS = 3;
/** The whole benchmark must finish within this, or it cleans up and fails. */
const WATCHDOG_MS = 60 * 60_000;

function runsFromEnv(name: string, fallback: number, max = 20): number {
  const v = Number(process.env[name] ?? fallback);
  return Number.isInteger(v) && v >= 1 && v <= max ? v : fallback;
}

type Part = "pull" | "pods";

function partsFromEnv(): Part[] {
  const only = process.env["BENCH_ONLY"]?.trim();
  if (only === undefined || only === "") return ["pull", "pods"];
  if (only === "pull" || only === "pods") return [only];
  throw new Error(`BENCH_ONLY must be "pull" or "pods", not "${only}"`);
}

/** The earlier bench.json, so a one-part run keeps the other part's results. */
async function previousReport(path: string): Promise<Record<string, unknown>> {
  try {
    const v = JSON.parse(await readFile(path, "utf8")) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Runs one part with its own cleanup stack, unwound as soon as the part ends (or on exit). */
async function withPartCleanup<T>(cleanup: Cleanup, what: string, f: (c: Cleanup) => Promise<T>): Promise<T> {
  const part = new Cleanup();
  const unwind = cleanup.add(what, () => part.runAll());
  try {
    return await f(part);
  } finally {
    await unwind();
  }
}

async function main(cleanup: Cleanup): Promise<void> {
  const parts = partsFromEnv();
  const out = join(RESULTS_DIR, "bench.json");
  const previous = await previousReport(out);
  let report: Record<string, unknown> = {};
  if (parts.includes("pull")) {
    report = { ...(await withPartCleanup(cleanup, "pull benchmark", pullBench)) };
    // Saved now, so a failing pod part does not lose it (the earlier pod results stay meanwhile).
    await writeReport(out, {
      ...report,
      ...(previous["pods"] !== undefined ? { pods: previous["pods"] } : {}),
    });
  } else {
    const { pods: _old, ...rest } = previous;
    report = rest;
  }
  if (parts.includes("pods")) {
    report["pods"] = await withPartCleanup(cleanup, "pod benchmark", podBench);
  } else if (previous["pods"] !== undefined) {
    report["pods"] = previous["pods"];
  }
  const summaryParts = partsOf(report);
  const rows = summaryRows(summaryParts);
  report["summary"] = rows;
  await writeReport(out, report);
  console.log("");
  console.log(summaryTable(rows));
  const floor = report["floor"] as Floor | undefined;
  if (floor && summaryParts.pull) {
    const { berth, containerd } = summaryParts.pull;
    console.log(floorLine(floor, berth.coldMedianMs, containerd?.coldMedianMs));
  }
  console.log(`raw samples: ${out}`);
}

async function podBench(cleanup: Cleanup): Promise<Record<string, unknown>> {
  const skip = process.env["BENCH_SKIP_CONTAINERD"] === "1" ? "BENCH_SKIP_CONTAINERD=1" : containerdMissing();
  const prof = process.env["BENCH_BERTH_CPU_PROF"];
  // The machine may be shared: record how busy it was around the run.
  const loadBefore = loadavg();
  const res = await runPodBench(cleanup, {
    serialIterations: runsFromEnv("BENCH_POD_ITERATIONS", 60, 1000),
    parallel: runsFromEnv("BENCH_POD_PARALLEL", 8, 64),
    rounds: runsFromEnv("BENCH_POD_ROUNDS", 8, 200),
    warmup: runsFromEnv("BENCH_POD_WARMUP", 3, 50),
    chunk: 10,
    execIterations: runsFromEnv("BENCH_EXEC_ITERATIONS", 20, 1000),
    execCatRuns: runsFromEnv("BENCH_EXEC_CAT_RUNS", 3, 50),
    startupPods: process.env["BENCH_STARTUP_PODS"] === "0" ? 0 : runsFromEnv("BENCH_STARTUP_PODS", 100, 500),
    startupRestarts: runsFromEnv("BENCH_STARTUP_RESTARTS", 5, 20),
    ...(skip !== undefined ? { skipContainerd: skip } : {}),
    berthToml: process.env["BENCH_BERTH_TOML"]?.replace(/\\n/g, "\n") ?? "",
    ...(prof ? { cpuProfDir: resolve(prof) } : {}),
  });
  const berth = summarizePods(res.berth);
  const containerd: PodSummary | undefined = res.containerd ? summarizePods(res.containerd) : undefined;
  const g = podGoal(berth, containerd);
  console.log("");
  console.log(podTables(res, berth, containerd));
  console.log("");
  console.log(g.text);
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  console.log(
    `load average before ${la(loadBefore)}, after ${la(loadavg())} (${availableParallelism()} CPUs)`,
  );
  if (prof) console.log(`berthd CPU profile: ${resolve(prof)}/berthd-<pid>.cpuprofile`);
  return {
    generatedAt: new Date().toISOString(),
    environment: {
      ...environment(),
      berth: res.berth.version,
      containerd: res.containerd?.version ?? null,
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg(),
    },
    options: res.options,
    network: res.network,
    image: res.image,
    goal: g,
    summary: { berth, containerd: containerd ?? { skipped: res.containerdSkipped ?? "" } },
    berth: res.berth,
    containerd: res.containerd ?? { skipped: res.containerdSkipped ?? "" },
  };
}

async function pullBench(cleanup: Cleanup): Promise<BenchReport> {
  const coldRuns = runsFromEnv("BENCH_COLD_RUNS", 3);
  const warmRuns = runsFromEnv("BENCH_WARM_RUNS", 3);
  const image = await ensureBenchImage(join(RESULTS_DIR, "cache"), log);
  log(
    `image: ${image.stats.layers} layers, ${image.stats.files} files, ` +
      `${(image.stats.uncompressedBytes / 1e6).toFixed(1)} MB uncompressed, ` +
      `${(image.stats.compressedBytes / 1e6).toFixed(1)} MB gzip (${image.stats.compressionRatio.toFixed(2)})`,
  );

  const registry = await startRegistry();
  cleanup.add("registry", () => registry.stop());
  const pushStarted = Date.now();
  await pushBenchImage(registry.url, REPO, TAG, image);
  const ref = `${registry.host}/${REPO}:${TAG}`;
  log(`pushed ${ref} in ${((Date.now() - pushStarted) / 1000).toFixed(1)} s`);

  const drivers = [berthDriver(cleanup, process.env["BENCH_BERTH_TOML"]?.replace(/\\n/g, "\n") ?? "")];
  let skipped =
    process.env["BENCH_SKIP_CONTAINERD"] === "1" ? "BENCH_SKIP_CONTAINERD=1" : containerdMissing();
  if (skipped === undefined) drivers.push(containerdDriver(cleanup, registry.host));
  const pullFloor = await PullFloor.build(FLOOR_THREADS);
  if (pullFloor instanceof PullFloor) cleanup.add("pull floor", () => pullFloor.dispose());
  else log(`floor: not measured: ${pullFloor.skipped}`);
  const outcomes = await runInterleaved(drivers, {
    ref,
    imageId: image.configDigest,
    coldRuns,
    warmRuns,
    optional: (name) => name !== "berth",
    registryPid: (await pidsWithArg(join(registry.dir, "config.yml")))[0],
    ...(pullFloor instanceof PullFloor
      ? { afterRound: () => pullFloor.runRound(registry.url, REPO, image) }
      : {}),
  });
  const floor: Floor = pullFloor instanceof PullFloor ? pullFloor.result() : pullFloor;
  const berth = outcomes.get("berth")?.result;
  if (!berth) throw new Error("berth produced no result");
  const c = outcomes.get("containerd");
  const containerd: RuntimeResult | undefined = c?.result;
  if (c?.failed !== undefined) skipped = `containerd failed: ${c.failed}`;
  if (skipped !== undefined) log(`containerd: not compared, reporting Berth alone: ${skipped}`);

  const berthSummary = summarize(berth, image);
  const containerdSummary: Summary | undefined = containerd ? summarize(containerd, image) : undefined;
  const g = goal(berthSummary, containerdSummary);
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    environment: { ...environment(), berth: berth.version, containerd: containerd?.version ?? null },
    reference: ref,
    image: imageInfo(image),
    berth: { ...berth, summary: berthSummary },
    containerd:
      containerd && containerdSummary
        ? { ...containerd, summary: containerdSummary }
        : { skipped: skipped ?? "" },
    goal: g,
    floor,
  };
  const env = report.environment;
  console.log("");
  console.log(
    `Pull benchmark: ${ref} — ${image.stats.layers} layers, ${(image.stats.uncompressedBytes / 1e6).toFixed(0)} MB ` +
      `uncompressed / ${(image.stats.compressedBytes / 1e6).toFixed(0)} MB gzip; cold ×${coldRuns} (fresh root), warm ×${warmRuns}`,
  );
  console.log(
    `node ${String(env["node"])}, ${String(env["nproc"])} CPUs (${String(env["cpu"])}), kernel ${String(env["kernel"])}; ` +
      `${berth.version}; ${containerd?.version ?? `containerd: ${(skipped ?? "").split("\n")[0]}`}`,
  );
  console.log("");
  console.log(table(berthSummary, containerdSummary));
  console.log("");
  const cores = Number(env["nproc"]);
  console.log(
    `CPU (medians): ${cpuLine("berth", berthSummary, cores)}` +
      (containerdSummary ? `; ${cpuLine("containerd", containerdSummary, cores)}` : ""),
  );
  console.log(g.text);
  console.log(floorLine(floor, berthSummary.coldMedianMs, containerdSummary?.coldMedianMs));
  return report;
}

const cleanup = new Cleanup();
let exiting = false;
/** Cleans up; `now` (signals, watchdog) exits at once so main() cannot start anything new. */
async function finish(code: number, now = false): Promise<void> {
  if (exiting) return;
  exiting = true;
  await cleanup.runAll();
  if (now) process.exit(code);
  process.exitCode = code;
  // Nothing should be left, but never hang on a stray handle.
  setTimeout(() => process.exit(code), 2000).unref();
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void finish(130, true);
  });
}
const watchdog = setTimeout(() => {
  log(`watchdog: benchmark still running after ${WATCHDOG_MS / 60_000} min; cleaning up`);
  void finish(1, true);
}, WATCHDOG_MS);

main(cleanup).then(
  () => {
    clearTimeout(watchdog);
    return finish(0);
  },
  (err: unknown) => {
    clearTimeout(watchdog);
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return finish(1);
  },
);
