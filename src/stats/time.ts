/**
 * Wall-clock time in ns since the epoch (CRI timestamps). Millisecond resolution: it follows
 * the system clock (unlike performance.timeOrigin + now(), which drifts from it after a step),
 * and stats windows are seconds long.
 */
export function epochNowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
