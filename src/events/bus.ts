/**
 * Container lifecycle events for GetContainerEvents (kubelet's evented PLEG). Publishing never
 * waits on a subscriber: each has a bounded queue, and one that falls too far behind (or went
 * away without saying so) is dropped; kubelet then relists, as it does after any stream error.
 */
import { epochNowNs } from "../common/time.js";
export type ContainerEventKind = "created" | "started" | "stopped" | "deleted";

export interface ContainerEvent<T> {
  kind: ContainerEventKind;
  containerId: string;
  podId: string;
  /** Nanoseconds since the epoch. */
  atNs: bigint;
  /** The container's record as it was when the event happened (deleted ones are gone later). */
  record: T;
}

export interface Subscription<T> {
  /** Next event; resolves undefined once the subscription is closed. */
  next(): Promise<ContainerEvent<T> | undefined>;
  close(reason?: string): void;
  readonly closedReason: string | undefined;
}

export class EventBus<T> {
  private readonly subs = new Set<Sub<T>>();

  constructor(private readonly maxQueued = 1000) {}

  publish(kind: ContainerEventKind, containerId: string, podId: string, record: T): void {
    const event: ContainerEvent<T> = {
      kind,
      containerId,
      podId,
      atNs: epochNowNs(),
      record,
    };
    for (const s of this.subs) s.push(event, this.maxQueued);
  }

  subscribe(): Subscription<T> {
    const s = new Sub<T>(() => this.subs.delete(s));
    this.subs.add(s);
    return s;
  }

  get subscribers(): number {
    return this.subs.size;
  }
}

class Sub<T> implements Subscription<T> {
  private queue: ContainerEvent<T>[] = [];
  private waiter: ((e: ContainerEvent<T> | undefined) => void) | undefined;
  closedReason: string | undefined;

  constructor(private readonly onClose: () => void) {}

  push(e: ContainerEvent<T>, max: number): void {
    if (this.closedReason !== undefined) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(e);
      return;
    }
    if (this.queue.length >= max) {
      this.close(`subscriber fell more than ${max} events behind`);
      return;
    }
    this.queue.push(e);
  }

  next(): Promise<ContainerEvent<T> | undefined> {
    const e = this.queue.shift();
    if (e) return Promise.resolve(e);
    if (this.closedReason !== undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  close(reason = "closed"): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.queue = [];
    this.onClose();
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
  }
}
