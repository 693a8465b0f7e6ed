/**
 * One timed PullImage through any CRI endpoint, with the runtime's memory and CPU time around
 * it, and the loop that runs every runtime's cold pulls interleaved (the machine may be shared:
 * alternating keeps a load change from favouring one runtime), then the warm pulls.
 */
import type { CriClient } from "../api/client.js";
import { RssSampler, readCpuMs, readMem } from "./rss.js";
import { errorText, log, sleep, syncDisks } from "./util.js";

export const PULL_TIMEOUT_MS = 10 * 60_000;

export type PullKind = "cold" | "warm";

export interface PullSample {
  kind: PullKind;
  run: number;
  /** Wall time around client.pullImage(), ms. */
  ms: number;
  /** VmRSS right before the pull, KiB. */
  idleRssKiB: number;
  /** Largest VmRSS polled every 50 ms during the pull, KiB. */
  polledMaxRssKiB: number;
  rssSamples: number;
  /** VmHWM right after the pull (peak over the process's whole life), KiB. */
  hwmKiB: number;
  /** VmRSS 5 s after a cold pull (the daemon idle again, the pull's garbage collectable), KiB. */
  afterIdleRssKiB?: number;
  /** Peak used in the report: max(polled, VmHWM) for cold runs on a fresh process, polled for warm. */
  peakRssKiB: number;
  /** CPU time the runtime process used during the pull (all threads), ms. */
  cpuUserMs: number;
  cpuSystemMs: number;
  /** CPU time the registry process used during the pull (same machine, same cores), ms. */
  registryCpuMs?: number;
  /** Runtime-specific extras (e.g. per-layer times from logs). */
  details?: Record<string, unknown>;
}

export async function measurePull(
  client: CriClient,
  ref: string,
  pid: number,
  kind: PullKind,
  run: number,
  registryPid?: number,
): Promise<PullSample> {
  const before = await readMem(pid);
  if (!before) throw new Error(`process ${pid} is gone before the pull`);
  const cpuBefore = await readCpuMs(pid);
  const regBefore = registryPid === undefined ? undefined : await readCpuMs(registryPid);
  const sampler = new RssSampler(pid, 50).start();
  const t0 = process.hrtime.bigint();
  let polled: { maxRssKiB: number; samples: number };
  try {
    await client.pullImage(ref, undefined, PULL_TIMEOUT_MS);
  } finally {
    polled = await sampler.stop();
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const after = await readMem(pid);
  const cpuAfter = await readCpuMs(pid);
  const regAfter = registryPid === undefined ? undefined : await readCpuMs(registryPid);
  const hwmKiB = after?.hwmKiB ?? 0;
  let afterIdleRssKiB: number | undefined;
  if (kind === "cold") {
    await sleep(5000);
    afterIdleRssKiB = (await readMem(pid))?.rssKiB;
  }
  return {
    ...(afterIdleRssKiB !== undefined ? { afterIdleRssKiB } : {}),
    kind,
    run,
    ms,
    idleRssKiB: before.rssKiB,
    polledMaxRssKiB: polled.maxRssKiB,
    rssSamples: polled.samples,
    hwmKiB,
    peakRssKiB: kind === "cold" ? Math.max(polled.maxRssKiB, hwmKiB) : polled.maxRssKiB,
    cpuUserMs: (cpuAfter?.userMs ?? 0) - (cpuBefore?.userMs ?? 0),
    cpuSystemMs: (cpuAfter?.systemMs ?? 0) - (cpuBefore?.systemMs ?? 0),
    ...(regBefore && regAfter
      ? { registryCpuMs: regAfter.userMs + regAfter.systemMs - regBefore.userMs - regBefore.systemMs }
      : {}),
  };
}

/** Throws unless the runtime lists no images at all (a cold start). */
export async function assertNoImages(client: CriClient, what: string): Promise<void> {
  const res = await client.listImages();
  if (res.images.length > 0) {
    throw new Error(`${what}: expected no images before a cold pull, found ${res.images.length}`);
  }
}

/** Throws unless `ref` resolves to the image whose id (config digest) is `id`. */
export async function assertImage(client: CriClient, ref: string, id: string, what: string): Promise<void> {
  const res = await client.imageStatus(ref);
  if (res.image?.id !== id) {
    throw new Error(`${what}: after the pull ${ref} has id ${res.image?.id ?? "(none)"}, want ${id}`);
  }
}

export interface RuntimeResult {
  name: string;
  version: string;
  cold: PullSample[];
  warm: PullSample[];
  notes: string[];
}

/** A running runtime instance (one fresh root). */
export interface RuntimeInstance {
  client: CriClient;
  pid: number;
  /** Its log output so far. */
  output(): string;
  /** Stops it and removes its directories (bounded, idempotent). */
  stop(): Promise<void>;
  /**
   * SIGTERM, then (after `beforeStart`) the same daemon again on the same directories; resolves
   * the ms from its exec to its first answered Version (polled every 5 ms). `client` and `pid`
   * are the new one's after.
   */
  restart?(beforeStart?: () => Promise<void>): Promise<number>;
}

export interface RuntimeDriver {
  name: string;
  notes: string[];
  /** Starts a fresh instance (new root). */
  start(): Promise<RuntimeInstance>;
  version(instance: RuntimeInstance): Promise<string>;
  /** Extras from the instance's log after a cold pull (e.g. per-layer times). */
  details(output: string): Record<string, unknown> | undefined;
}

export interface DriverOutcome {
  result?: RuntimeResult;
  /** Why the runtime has no result (it failed); the other runtimes still report. */
  failed?: string;
}

interface Track {
  driver: RuntimeDriver;
  result: RuntimeResult;
  last?: RuntimeInstance;
  failed?: string;
}

const mib = (kib: number) => (kib / 1024).toFixed(0);

/**
 * Cold runs: round r starts a fresh instance of every runtime in turn (order alternating each
 * round), pulls, and stops it, except in the last round, whose instances then serve the warm
 * pulls. A runtime that fails is dropped (with its reason) when `optional` says so, else the
 * error propagates.
 */
export async function runInterleaved(
  drivers: RuntimeDriver[],
  opts: {
    ref: string;
    imageId: string;
    coldRuns: number;
    warmRuns: number;
    optional: (name: string) => boolean;
    /** The registry's pid, to record its CPU time too. */
    registryPid?: number;
    /** Runs after each round of cold pulls (the pull floor is measured there). */
    afterRound?: () => Promise<void>;
  },
): Promise<Map<string, DriverOutcome>> {
  const tracks: Track[] = drivers.map((driver) => ({
    driver,
    result: { name: driver.name, version: "", cold: [], warm: [], notes: driver.notes },
  }));
  const fail = async (t: Track, err: unknown, instance?: RuntimeInstance) => {
    if (instance) {
      log(`${t.driver.name} output (tail):\n${instance.output().slice(-4000)}`);
      await instance.stop().catch((e: unknown) => log(`stopping ${t.driver.name}: ${errorText(e)}`));
    }
    if (!opts.optional(t.driver.name)) throw err;
    t.failed = errorText(err);
    log(`${t.driver.name}: dropped: ${t.failed}`);
  };
  for (let run = 1; run <= opts.coldRuns; run++) {
    const order = run % 2 === 1 ? tracks : [...tracks].reverse();
    for (const t of order) {
      if (t.failed) continue;
      const what = `${t.driver.name} cold run ${run}`;
      await syncDisks();
      let instance: RuntimeInstance | undefined;
      try {
        instance = await t.driver.start();
        t.result.version ||= await t.driver.version(instance);
        await sleep(1000); // let start-up work settle before "idle" RSS
        await assertNoImages(instance.client, what);
        const sample = await measurePull(
          instance.client,
          opts.ref,
          instance.pid,
          "cold",
          run,
          opts.registryPid,
        );
        await assertImage(instance.client, opts.ref, opts.imageId, what);
        const details = t.driver.details(instance.output());
        if (details) sample.details = details;
        t.result.cold.push(sample);
        log(
          `${what}/${opts.coldRuns}: ${(sample.ms / 1000).toFixed(2)} s, CPU ${((sample.cpuUserMs + sample.cpuSystemMs) / 1000).toFixed(2)} s, ` +
            `RSS idle ${mib(sample.idleRssKiB)} MiB, peak ${mib(sample.peakRssKiB)} MiB`,
        );
      } catch (err) {
        await fail(t, err, instance);
        continue;
      }
      if (run < opts.coldRuns) await instance.stop();
      else t.last = instance;
    }
    await opts.afterRound?.();
  }
  for (const t of tracks) {
    const instance = t.last;
    if (t.failed || !instance) continue;
    try {
      for (let run = 1; run <= opts.warmRuns; run++) {
        const sample = await measurePull(
          instance.client,
          opts.ref,
          instance.pid,
          "warm",
          run,
          opts.registryPid,
        );
        await assertImage(instance.client, opts.ref, opts.imageId, `${t.driver.name} warm run ${run}`);
        t.result.warm.push(sample);
        log(`${t.driver.name} warm run ${run}/${opts.warmRuns}: ${sample.ms.toFixed(1)} ms`);
      }
      await instance.stop();
    } catch (err) {
      await fail(t, err, instance);
    }
  }
  return new Map(
    tracks.map((t) => [t.driver.name, t.failed !== undefined ? { failed: t.failed } : { result: t.result }]),
  );
}
