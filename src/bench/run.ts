/**
 * `npm run bench`: pull one large image (6 layers, ~300 MB / ~220 MB gzip) from a local
 * docker-registry into Berth and, when installed, into containerd through their CRI sockets;
 * cold (fresh root) ×3 and warm ×3 each. Prints a table and writes bench-results/bench.json.
 *
 * Environment: BENCH_COLD_RUNS, BENCH_WARM_RUNS (default 3), BENCH_SKIP_CONTAINERD=1,
 * BENCH_CONTAINERD_DEBUG=1 (per-layer apply times from containerd's debug log),
 * BENCH_BERTH_TOML (extra berthd config, "\n" for newlines; e.g. "[image]\nmax_concurrent_downloads = 6").
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startRegistry } from "../test/harness/registry.js";
import { berthDriver } from "./berth.js";
import { containerdDriver, containerdMissing } from "./containerd.js";
import { ensureBenchImage, pushBenchImage } from "./image.js";
import { type RuntimeResult, runInterleaved } from "./measure.js";
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
import { Cleanup, log, pidsWithArg } from "./util.js";

const REPO_DIR = fileURLToPath(new URL("../../", import.meta.url));
const RESULTS_DIR = join(REPO_DIR, "bench-results");
const REPO = "bench/large";
const TAG = "v1";
/** The whole benchmark must finish within this, or it cleans up and fails. */
const WATCHDOG_MS = 45 * 60_000;

function runsFromEnv(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  return Number.isInteger(v) && v >= 1 && v <= 20 ? v : fallback;
}

async function main(cleanup: Cleanup): Promise<void> {
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
  const outcomes = await runInterleaved(drivers, {
    ref,
    imageId: image.configDigest,
    coldRuns,
    warmRuns,
    optional: (name) => name !== "berth",
    registryPid: (await pidsWithArg(join(registry.dir, "config.yml")))[0],
  });
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
  };
  const out = join(RESULTS_DIR, "bench.json");
  await writeReport(out, report);

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
  console.log(`raw samples: ${out}`);
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
