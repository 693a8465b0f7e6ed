/**
 * A container source that lists its runtime on a timer (and when asked): one listing at a
 * time, subscribers told after each one that succeeds, a failing runtime logged once until it
 * answers again. The CRI and Docker discoveries differ only in how they list.
 */
import type { Logger } from "../common/logger.js";
import type { ContainerInfo } from "./container-info.js";

export type ContainerSet = ReadonlyMap<string, ContainerInfo>;

export interface ContainerSource {
  subscribe(fn: (set: ContainerSet) => void): () => void;
  current(): ContainerSet;
}

export abstract class PollingSource implements ContainerSource {
  protected containers = new Map<string, ContainerInfo>();
  protected stopped = false;
  private readonly subscribers = new Set<(set: ContainerSet) => void>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private again = false;
  private lastError = "";
  private listed = false;

  constructor(
    protected readonly log: Logger,
    private readonly pollMs: number,
    /** What a failed listing is logged as, e.g. "listing containers failed". */
    private readonly failure: string,
  ) {}

  /** The next set of containers (reusing what is known of unchanged ones). */
  protected abstract list(): Promise<Map<string, ContainerInfo>>;

  isListed(): boolean {
    return this.listed;
  }

  current(): ContainerSet {
    return this.containers;
  }

  /** `fn` gets the set after every successful listing (at once if there was one already). */
  subscribe(fn: (set: ContainerSet) => void): () => void {
    this.subscribers.add(fn);
    if (this.listed) fn(this.containers);
    return () => this.subscribers.delete(fn);
  }

  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.pollMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One poll at a time; a poll asked for during one runs right after it. */
  poll(): Promise<void> {
    if (this.polling) {
      this.again = true;
      return this.polling;
    }
    this.polling = (async () => {
      do {
        this.again = false;
        try {
          const next = await this.list();
          this.containers = next;
          this.listed = true;
          for (const fn of this.subscribers) fn(next);
          if (this.lastError) this.log.info("runtime reachable again");
          this.lastError = "";
        } catch (err) {
          const msg = (err as Error).message;
          if (msg !== this.lastError) this.log.warn({ err: msg }, this.failure);
          this.lastError = msg;
        }
      } while (this.again && !this.stopped);
      this.polling = undefined;
    })();
    return this.polling;
  }
}
