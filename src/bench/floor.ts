/**
 * The cold pull's floor on this machine: scripts/pull-floor.c does the work no pull can skip
 * (download, both digests, the stored blob, inflate, the files written) in C with nothing
 * around it, from the same registry, as many layers at a time as the runtimes download. Built
 * once with the system's C compiler, ISA-L and OpenSSL (skipped, with the reason, when they are
 * missing), then run once per round of the runtimes' cold pulls, under the same conditions.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchImage } from "./image.js";
import { median } from "./report.js";
import { errorText, log, run, syncDisks } from "./util.js";

/** Bounds for building pull-floor and for one run of it (a run takes about a second). */
const BUILD_TIMEOUT_MS = 120_000;
const RUN_TIMEOUT_MS = 120_000;
const SOURCE = fileURLToPath(new URL("../../scripts/pull-floor.c", import.meta.url));

export interface FloorResult {
  /** Layers fetched at a time (the runtimes' max_concurrent_downloads). */
  threads: number;
  /** Wall time of each run, ms. */
  runsMs: number[];
  medianMs: number;
}

export type Floor = FloorResult | { skipped: string };

export class PullFloor {
  private readonly runsMs: number[] = [];
  /** Why a run failed; no run is made after one has. */
  private failed: string | undefined;

  private constructor(
    private readonly dir: string,
    private readonly threads: number,
  ) {}

  /** Builds pull-floor with `compiler`; `{ skipped }` says why it could not. */
  static async build(threads: number, compiler = "cc"): Promise<PullFloor | { skipped: string }> {
    const dir = await mkdtemp(join(tmpdir(), "berth-bench-floor-"));
    try {
      const args = ["-O2", "-o", join(dir, "pull-floor"), SOURCE, "-lisal", "-lcrypto", "-lpthread"];
      await run(compiler, args, BUILD_TIMEOUT_MS);
      return new PullFloor(dir, threads);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      // The first line names the command; the compiler's first complaint (or the spawn error) follows.
      const [command, ...rest] = errorText(err).split("\n");
      const detail = rest.find((line) => line.trim() !== "") ?? command;
      return { skipped: `cannot build ${SOURCE} (needs cc, libisal-dev, libssl-dev): ${detail?.trim()}` };
    }
  }

  /**
   * One pull of `image` from `registryUrl` (pushed there as `repo`), after a sync and with the
   * last run's files deleted, as before each runtime's cold pull; fails unless every layer's
   * digest and diff id come out right.
   */
  async run(registryUrl: string, repo: string, image: BenchImage): Promise<number> {
    const out = join(this.dir, "out");
    await rm(out, { recursive: true, force: true });
    await syncDisks();
    const urls = image.layers.map((l) => `${registryUrl}/v2/${repo}/blobs/${l.digest}`);
    const stdout = await run(
      join(this.dir, "pull-floor"),
      [String(this.threads), out, ...urls],
      RUN_TIMEOUT_MS,
    );
    checkDigests(stdout, image);
    const wall = /^wall (\d+) ms$/m.exec(stdout)?.[1];
    if (wall === undefined) throw new Error(`pull-floor printed no wall time: ${stdout}`);
    this.runsMs.push(Number(wall));
    return Number(wall);
  }

  /**
   * {@link run} for the bench's rounds: a failure is logged and kept for {@link result} (the
   * floor is a measurement aid: it must not cost the runtimes' results), and ends the runs.
   */
  async runRound(registryUrl: string, repo: string, image: BenchImage): Promise<void> {
    if (this.failed !== undefined) return;
    try {
      const ms = await this.run(registryUrl, repo, image);
      log(`floor: ${(ms / 1000).toFixed(2)} s`);
    } catch (err) {
      this.failed = errorText(err);
      log(`floor: failed: ${this.failed}`);
    }
  }

  result(): Floor {
    if (this.failed !== undefined) return { skipped: `failed: ${this.failed}` };
    return { threads: this.threads, runsMs: [...this.runsMs], medianMs: median(this.runsMs) };
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

function checkDigests(stdout: string, image: BenchImage): void {
  const seen = new Set<number>();
  for (const [, index, digest, diffId] of stdout.matchAll(/^layer (\d+) (sha256:\w+) diff (sha256:\w+)$/gm)) {
    const layer = image.layers[Number(index)];
    if (!layer || layer.digest !== digest || layer.diffId !== diffId) {
      throw new Error(`pull-floor: layer ${index} came out as ${digest} / ${diffId}`);
    }
    seen.add(Number(index));
  }
  if (seen.size !== image.layers.length) {
    throw new Error(`pull-floor pulled ${seen.size} of ${image.layers.length} layers`);
  }
}

/** The line the bench prints under its tables. */
export function floorLine(floor: Floor, berthMs: number, containerdMs: number | undefined): string {
  if ("skipped" in floor) return `Floor: not measured: ${floor.skipped}`;
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return (
    `Floor (scripts/pull-floor.c: the same pull's work alone, in C, ${floor.threads} layers at a time): ` +
    `${s(floor.medianMs)}` +
    (containerdMs ? ` = ${(floor.medianMs / containerdMs).toFixed(2)}x containerd's` : "") +
    `; Berth's cold pull is ${(berthMs / floor.medianMs).toFixed(1)}x the floor`
  );
}
