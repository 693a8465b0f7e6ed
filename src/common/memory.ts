/**
 * Giving memory back after a burst of work (a pull): V8's memory-reducing full collection, then
 * glibc's malloc_trim (native releaseMemory). Without it a daemon that pulled once keeps the
 * pull's garbage, its spare heap pages and freed malloc arenas resident until the next burst.
 */
import { native } from "./native.js";

/** Synchronous (tens of ms), so only when the daemon is idle. */
export function releaseMemory(): void {
  native().releaseMemory();
}

/**
 * Runs releaseMemory `delayMs` after the last call to the returned function (a debounce), so a
 * burst of pulls is followed by one release once it is over.
 */
export function releaseWhenQuiet(delayMs: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  return () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(releaseMemory, delayMs);
    timer.unref();
  };
}
