/**
 * Giving memory back after a burst of work (a pull): a full V8 collection, then glibc's
 * malloc_trim. Without it a daemon that pulled once keeps the pull's garbage and freed malloc
 * arenas resident until the next burst.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { native } from "./native.js";

let gc: (() => void) | undefined;

/** V8's gc(), exposed once (the documented setFlagsFromString route; no --expose-gc needed). */
function fullGc(): void {
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
}

/** A full collection and malloc_trim; synchronous (tens of ms), so only when the daemon is idle. */
export function releaseMemory(): void {
  fullGc();
  native().trimMemory();
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
