/**
 * One followed log (a container's CRI log, a host file): read a batch, tag it, run the
 * processors, hand it to the pipeline's delivery, and only then commit its position, one
 * batch at a time. A sink that does not take a batch therefore stops this reader where it is:
 * memory stays bounded by one batch per source, nothing is dropped. A source marked `final`
 * (its container exited or was removed) is read to its end and then reports itself done.
 */
import type { Logger } from "../common/logger.js";
import type { CheckpointStore } from "./checkpoint.js";
import { FileTail, type TailOptions } from "./file-tail.js";
import type { NdjsonBatch } from "./ndjson.js";
import { ndjsonAssembler } from "./ndjson-assembler.js";
import type { LogRecord } from "./record.js";

export interface SourceContext {
  checkpoints: CheckpointStore;
  log: Logger;
  /** How often an idle source looks for new data (ms). */
  readIntervalMs: number;
  /** Processors and delivery; resolves false when the pipeline stopped before the sinks took it. */
  deliver(records: LogRecord[]): Promise<boolean>;
  /**
   * Delivery of records serialised as NDJSON, where the pipeline takes them so (no processors,
   * flushers that send NDJSON): the source then reads through the native path.
   */
  deliverNdjson?(batch: NdjsonBatch): Promise<boolean>;
  /** Counts what was read (records before the processors, log bytes), for self-metrics. */
  onRead?(records: number, bytes: number): void;
}

/** What status and metrics show of a source. */
export interface SourceStatus {
  key: string;
  path: string;
  container?: string;
  pod?: string;
  namespace?: string;
  /** Bytes in its log not yet delivered (committed). */
  lagBytes: number;
  /** Bytes read and held until the sinks take them. */
  bufferedBytes: number;
}

export interface SourceOptions {
  key: string;
  path: string;
  tail: TailOptions;
  /** With no checkpoint, start this many bytes before the end (at a line start), not at 0. */
  tailBytes?: number;
  /** Every record's tags: one object for the source (serialised once). */
  tags: Record<string, string>;
  /** Streams not collected (IgnoringStdout / IgnoringStderr). */
  ignoreStdout?: boolean;
  ignoreStderr?: boolean;
}

export class Source {
  private final = false;
  private stopping = false;
  private wake: (() => void) | undefined;
  private tail: FileTail;
  /** Resolves when the loop has ended (done, or stopped). */
  readonly finished: Promise<"done" | "stopped">;
  private begin!: () => void;
  private buffered = 0;
  private ended = false;

  constructor(
    private readonly opts: SourceOptions,
    private readonly ctx: SourceContext,
  ) {
    this.tail = this.newTail();
    const started = new Promise<void>((r) => (this.begin = r));
    this.finished = started.then(() => this.run());
  }

  get key(): string {
    return this.opts.key;
  }

  start(): void {
    this.begin();
  }

  async status(): Promise<SourceStatus> {
    const t = this.opts.tags;
    return {
      key: this.opts.key,
      path: this.opts.path,
      container: t["_container_name_"],
      pod: t["_pod_name_"],
      namespace: t["_namespace_"],
      lagBytes: this.ended ? 0 : await this.tail.lag(),
      bufferedBytes: this.buffered,
    };
  }

  /** Nothing more will be written: read to the end, then finish. */
  finish(): void {
    this.final = true;
    this.wake?.();
  }

  /** Stops after the batch in hand (delivered and committed, or abandoned uncommitted). */
  stop(): Promise<"done" | "stopped"> {
    this.stopping = true;
    this.wake?.();
    this.begin();
    return this.finished;
  }

  private async run(): Promise<"done" | "stopped"> {
    while (!this.stopping) {
      try {
        return await this.follow();
      } catch (err) {
        // An I/O error: start over from the last committed position after a pause.
        this.ctx.log.error(
          { source: this.opts.key, err: (err as Error).message },
          "reading failed, retrying",
        );
        await this.tail.close();
        this.tail = this.newTail();
        await this.sleep(1000);
      }
    }
    return "stopped";
  }

  private async follow(): Promise<"done" | "stopped"> {
    const { checkpoints } = this.ctx;
    const key = this.opts.key;
    try {
      if (this.stopping) return "stopped";
      await this.tail.open(checkpoints.get(key)?.position, this.opts.tailBytes);
      while (!this.stopping) {
        const final = this.final;
        const batch = await this.tail.next(final);
        if (!batch) {
          if (final) {
            checkpoints.set(key, { position: this.tail.position(), done: true });
            this.ended = true;
            return "done";
          }
          await this.sleep(this.ctx.readIntervalMs);
          continue;
        }
        this.buffered = batch.bytes;
        if (batch.ndjson) {
          this.ctx.onRead?.(batch.ndjson.count, batch.bytes);
          if (batch.ndjson.count > 0 && !(await this.ctx.deliverNdjson!(batch.ndjson))) return "stopped";
        } else {
          const records = this.prepare(batch.records);
          this.ctx.onRead?.(records.length, batch.bytes);
          if (records.length > 0 && !(await this.ctx.deliver(records))) return "stopped";
        }
        this.buffered = 0;
        await this.tail.ack(batch);
        checkpoints.set(key, { position: this.tail.position() });
      }
      return "stopped";
    } finally {
      await this.tail.close();
    }
  }

  /** A follower reading through the native NDJSON path where the pipeline and the log allow it. */
  private newTail(): FileTail {
    const { tail, tags, ignoreStdout = false, ignoreStderr = false } = this.opts;
    const assembler = this.ctx.deliverNdjson
      ? ndjsonAssembler({ ...tail, tags, ignoreStdout, ignoreStderr })
      : undefined;
    return new FileTail(this.opts.path, assembler ? { ...tail, assembler } : tail);
  }

  /** Tags, and ignored streams dropped: before the processors. */
  private prepare(records: LogRecord[]): LogRecord[] {
    const { tags, ignoreStdout, ignoreStderr } = this.opts;
    const out: LogRecord[] = [];
    for (const r of records) {
      if ((ignoreStdout && r.source === "stdout") || (ignoreStderr && r.source === "stderr")) continue;
      r.tags = tags;
      out.push(r);
    }
    return out;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
