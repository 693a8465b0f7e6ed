/**
 * The start-up timeline of a pod or container: when each phase began and how long it took,
 * kept with the record (shown in verbose status) and observed into a histogram, so a slow
 * start can be explained without guessing.
 */
import { elapsedMs } from "../common/time.js";
export interface PhaseSpan {
  phase: string;
  /** Milliseconds since the epoch. */
  startMs: number;
  durationMs: number;
}

export type PhaseObserver = (object: "pod" | "container", phase: string, seconds: number) => void;

export class Timeline {
  readonly spans: PhaseSpan[] = [];

  constructor(
    private readonly object: "pod" | "container",
    private readonly observe?: PhaseObserver,
  ) {}

  /** Runs `fn` as phase `phase`; the span is recorded whether it succeeds or fails. */
  async phase<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const startMs = Date.now();
    const t0 = process.hrtime.bigint();
    try {
      return await fn();
    } finally {
      const durationMs = elapsedMs(t0);
      this.spans.push({ phase, startMs, durationMs: Math.round(durationMs * 1000) / 1000 });
      this.observe?.(this.object, phase, durationMs / 1000);
    }
  }
}
