/**
 * Time as the CRI counts it. Wall-clock nanoseconds since the epoch with millisecond
 * resolution: it follows the system clock (unlike performance.timeOrigin + now(), which drifts
 * from it after a step), and nothing Berth times by the wall clock needs more.
 */
export function epochNowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function dateToNs(d: Date): bigint {
  return BigInt(d.getTime()) * 1_000_000n;
}

/** Milliseconds since `start`, a process.hrtime.bigint() reading (monotonic: for durations). */
export function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}
