/**
 * usage_nano_cores: the CPU rate between two samples of the cumulative usage_core_nano_seconds,
 * Δusage / Δtime × 1e9 (1e9 = one core fully busy).
 *
 * Policy (as containerd's CRI plugin, `getUsageNanoCores`, and cAdvisor's CpuInst): the rate is
 * computed against the previous sample the runtime kept for the same container/pod from an
 * earlier stats call. The first call for a key only records a baseline and returns undefined:
 * the field is left unset, which kubelet tolerates (it reports no instantaneous CPU until the
 * next scrape). We do not block a stats RPC for an extra 100 ms sampling window.
 *
 * Differences from containerd, both defensive: a counter that went backwards (a pod-level sum
 * after a container exited) resets the baseline instead of pinning it to the old high value;
 * samples closer together than `minWindowNs` (default 0: no minimum, as containerd) return the
 * last rate computed without moving the baseline, so a burst of callers does not shrink the
 * window to noise. Entries idle for `maxAgeNs` (default 10 min, kubelet's cache period) are
 * dropped by `prune`.
 */

export interface CpuSample {
  /** Cumulative CPU time, ns. */
  usageNs: bigint;
  /** When it was read, ns since the epoch. */
  timestampNs: bigint;
}

const NS_PER_S = 1_000_000_000n;

/** Δusage / Δt × 1e9, or undefined when Δt ≤ 0 or the counter went backwards. */
export function nanoCores(prev: CpuSample, cur: CpuSample): bigint | undefined {
  const dt = cur.timestampNs - prev.timestampNs;
  if (dt <= 0n) return undefined;
  const du = cur.usageNs - prev.usageNs;
  if (du < 0n) return undefined;
  return (du * NS_PER_S) / dt;
}

interface Entry {
  sample: CpuSample;
  /** The rate computed when `sample` became the baseline; reused inside minWindow. */
  rate?: bigint;
}

export interface CpuRateCacheOptions {
  /** Minimum Δt for a new rate; closer samples get the previous rate. Default 0. */
  minWindowNs?: bigint;
  /** `prune` drops entries whose last sample is older than this. Default 10 minutes. */
  maxAgeNs?: bigint;
}

export class CpuRateCache {
  private readonly entries = new Map<string, Entry>();
  private readonly minWindowNs: bigint;
  private readonly maxAgeNs: bigint;

  constructor(opts: CpuRateCacheOptions = {}) {
    this.minWindowNs = opts.minWindowNs ?? 0n;
    this.maxAgeNs = opts.maxAgeNs ?? 600n * NS_PER_S;
  }

  /**
   * Records `usageNs` read at `timestampNs` for `key` and returns the rate since the previous
   * sample, or undefined on the first sample (or after a counter reset / clock step back).
   */
  update(key: string, usageNs: bigint, timestampNs: bigint): bigint | undefined {
    const cur: CpuSample = { usageNs, timestampNs };
    const prev = this.entries.get(key);
    if (prev === undefined) {
      this.entries.set(key, { sample: cur });
      return undefined;
    }
    const dt = timestampNs - prev.sample.timestampNs;
    if (dt <= 0n) return undefined; // same instant or clock stepped back: keep the baseline
    if (usageNs < prev.sample.usageNs) {
      this.entries.set(key, { sample: cur }); // counter reset
      return undefined;
    }
    if (dt < this.minWindowNs) return prev.rate;
    const rate = nanoCores(prev.sample, cur);
    this.entries.set(key, rate === undefined ? { sample: cur } : { sample: cur, rate });
    return rate;
  }

  /** Forgets a container or pod (call on removal). */
  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Drops entries not updated within maxAge of `nowNs`. */
  prune(nowNs: bigint): void {
    for (const [k, e] of this.entries)
      if (nowNs - e.sample.timestampNs > this.maxAgeNs) this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Cache key of a pod's own (sandbox-level) rate, distinct from its containers' keys. */
export function podRateKey(podId: string): string {
  return `pod/${podId}`;
}
