/**
 * berthd's memory around bursts of streaming (a pull): dead Buffers freed while it streams
 * (noteStreamed), and memory given back once it is over (releaseMemory: V8's memory-reducing
 * full collection, then glibc's malloc_trim). Without them a pull peaked ~16 MiB higher, and a
 * daemon that pulled once kept the pull's garbage, its spare heap pages and freed malloc arenas
 * resident until the next burst.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { native } from "./native.js";

type Gc = (opts: { type: "minor" | "major" }) => void;
let gc: Gc | undefined;

/** V8's gc(), exposed once (the documented setFlagsFromString route; no --expose-gc needed). */
function v8Gc(): Gc {
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as Gc;
  }
  return gc;
}

/**
 * Large enough that a Buffer in flight (a pull holds ~1.5 MiB in its streams) rarely lives
 * through two scavenges, which would move it to the old generation, where only a full
 * collection frees it; measured on the bench image: 2 MiB and 8 MiB both left the peak ~12 MiB
 * higher than 4 MiB.
 */
const SCAVENGE_EVERY = 4 << 20;
let streamed = 0;

/**
 * Counts the bytes of a layer's uncompressed stream (a pull makes ~3 bytes of Buffers per such
 * byte: socket reads, HTTP body copies, inflated output) and scavenges V8's young generation every
 * SCAVENGE_EVERY bytes (~0.3 ms). Those Buffers die within milliseconds, but their memory is
 * outside the V8 heap: V8 scavenges when its young generation fills (with small objects only,
 * rarely) or once 32 MiB of young Buffers wait, so that much stayed resident at a pull's peak.
 */
export function noteStreamed(bytes: number): void {
  streamed += bytes;
  if (streamed < SCAVENGE_EVERY) return;
  streamed = 0;
  v8Gc()({ type: "minor" });
}

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
