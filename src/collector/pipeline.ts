/**
 * One pipeline (one config file): its inputs feed sources, each batch runs through the
 * processors and goes to every flusher; a flusher that fails is retried with backoff (the
 * others are not sent the batch twice) until it takes the batch or the pipeline is stopped.
 * Stopping is graceful: sources finish the batch in hand within the grace period; after it,
 * deliveries still pending are abandoned *uncommitted* (the next start sends them again).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../common/logger.js";
import type { CheckpointStore } from "./checkpoint.js";
import { ConfigError, type PipelineConfig, type PluginKind, type Schema } from "./config.js";
import type { ContainerSource } from "./discovery.js";
import type { TailOptions } from "./file-tail.js";
import {
  ElasticsearchFlusher,
  ES_SCHEMA,
  LOKI_SCHEMA,
  LokiFlusher,
  OTLP_SCHEMA,
  OtlpLogFlusher,
} from "./flusher-backends.js";
import { SYSLOG_SCHEMA, SyslogFlusher } from "./flusher-syslog.js";
import { type Flusher, HTTP_SCHEMA, HttpFlusher, STDOUT_SCHEMA, StdoutFlusher } from "./flushers.js";
import { FILE_SCHEMA, FileInput } from "./input-file.js";
import { ContainerStdioInput, STDIO_SCHEMA } from "./input-stdio.js";
import type { NdjsonBatch } from "./ndjson.js";
import { createProcessor, multilineOptions, PROCESSOR_SCHEMAS, type Processor } from "./processors.js";
import type { LogRecord } from "./record.js";
import type { Source, SourceContext, SourceStatus } from "./source.js";

export interface Input {
  start(): void;
  stop(): Promise<void>;
  /** The logs it follows now. */
  sources(): Iterable<Source>;
}

export interface PipelineContext {
  containers: ContainerSource;
  checkpoints: CheckpointStore;
  log: Logger;
  readIntervalMs: number;
  /** Tail option overrides (tests: shorter grace and timeouts). */
  tail?: Partial<TailOptions>;
  /** Counters for self-metrics. */
  metrics?: PipelineMetrics;
  /** Host paths from the runtime are opened under this (host-root.ts); "" on the host. */
  hostRoot?: string;
}

export interface PipelineMetrics {
  /** Read from the logs: records (before the processors) and log bytes. */
  read(pipeline: string, n: number, bytes: number): void;
  /** Taken by every flusher: records and content bytes. */
  records(pipeline: string, n: number, bytes: number): void;
  sendFailure(pipeline: string, flusher: string): void;
}

export const SCHEMAS: Record<PluginKind, Record<string, Schema>> = {
  input: { input_container_stdio: STDIO_SCHEMA, input_file: FILE_SCHEMA },
  processor: PROCESSOR_SCHEMAS,
  flusher: {
    flusher_stdout: STDOUT_SCHEMA,
    flusher_http: HTTP_SCHEMA,
    flusher_syslog: SYSLOG_SCHEMA,
    flusher_loki: LOKI_SCHEMA,
    flusher_elasticsearch: ES_SCHEMA,
    flusher_otlp_log: OTLP_SCHEMA,
  },
};

const FLUSHERS: Record<string, new (p: Record<string, unknown>) => Flusher> = {
  flusher_stdout: StdoutFlusher,
  flusher_http: HttpFlusher,
  flusher_syslog: SyslogFlusher,
  flusher_loki: LokiFlusher,
  flusher_elasticsearch: ElasticsearchFlusher,
  flusher_otlp_log: OtlpLogFlusher,
};

/** Builds a plugin, turning its constructor's complaint into a ConfigError naming it. */
function build<T>(cfg: PipelineConfig, where: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(cfg.file, where, (err as Error).message);
  }
}

export class Pipeline {
  readonly name: string;
  private readonly processors: Processor[] = [];
  private readonly flushers: Array<{ type: string; flusher: Flusher }> = [];
  private readonly inputs: Input[] = [];
  private readonly abort = new AbortController();
  readonly log: Logger;
  /**
   * Delivery of batches already serialised as NDJSON: there when the records go unchanged (no
   * processors) to flushers that all send NDJSON; sources then read through the native path.
   */
  readonly deliverNdjson: ((batch: NdjsonBatch) => Promise<boolean>) | undefined;

  constructor(
    readonly config: PipelineConfig,
    readonly ctx: PipelineContext,
  ) {
    this.name = config.name;
    this.log = ctx.log.child({ pipeline: config.name });
    let multiline = undefined as ReturnType<typeof multilineOptions>;
    config.processors.forEach((p, i) => {
      if (p.type === "processor_merge_multiline_log_native") {
        if (i !== 0) throw new ConfigError(config.file, p.where, "must be the first processor");
        multiline = build(config, p.where, () => multilineOptions(p.params));
      } else this.processors.push(build(config, p.where, () => createProcessor(p.type, p.params)));
    });
    for (const f of config.flushers) {
      const make = FLUSHERS[f.type]!;
      this.flushers.push({ type: f.type, flusher: build(config, f.where, () => new make(f.params)) });
    }
    this.deliverNdjson =
      this.processors.length === 0 && this.flushers.every((f) => f.flusher.sendNdjson)
        ? (batch) => this.deliverSerialised(batch)
        : undefined;
    for (const inp of config.inputs) {
      this.inputs.push(
        build(config, inp.where, () =>
          inp.type === "input_file"
            ? new FileInput(inp.params, this, multiline)
            : new ContainerStdioInput(inp.params, this, multiline),
        ),
      );
    }
  }

  start(): void {
    for (const i of this.inputs) i.start();
  }

  /** How a source of this pipeline reads, delivers and counts. */
  sourceContext(): SourceContext {
    return {
      checkpoints: this.ctx.checkpoints,
      log: this.log,
      readIntervalMs: this.ctx.readIntervalMs,
      deliver: (records) => this.deliver(records),
      deliverNdjson: this.deliverNdjson,
      onRead: (n, bytes) => this.ctx.metrics?.read(this.name, n, bytes),
    };
  }

  sources(): Promise<SourceStatus[]> {
    return Promise.all(this.inputs.flatMap((i) => [...i.sources()].map((s) => s.status())));
  }

  /** Stops reading; deliveries pending after `graceMs` are abandoned uncommitted. */
  async stop(graceMs = 5000): Promise<void> {
    const timer = setTimeout(() => this.abort.abort(), graceMs);
    await Promise.all(this.inputs.map((i) => i.stop()));
    clearTimeout(timer);
    this.abort.abort();
    await Promise.all(this.flushers.map((f) => f.flusher.close().catch(() => {})));
  }

  /** Processors, then every flusher; resolves false if abandoned by stop(). */
  async deliver(input: LogRecord[]): Promise<boolean> {
    let records = input;
    for (const p of this.processors) records = p.process(records);
    if (records.length === 0) return true;
    const results = await Promise.all(
      this.flushers.map((f) => {
        let pending = records;
        return this.sendUntilTaken(f.type, async (signal) => {
          const rest = await f.flusher.send(pending, signal);
          if (rest && rest.length > 0) {
            pending = rest;
            throw new Error(`${rest.length} of ${records.length} records refused`);
          }
        });
      }),
    );
    if (results.every(Boolean)) {
      this.ctx.metrics?.records(
        this.name,
        records.length,
        records.reduce((n, r) => n + (r.fields["content"]?.length ?? 0), 0),
      );
      return true;
    }
    return false;
  }

  private async deliverSerialised(batch: NdjsonBatch): Promise<boolean> {
    const results = await Promise.all(
      this.flushers.map((f) =>
        this.sendUntilTaken(f.type, (signal) => f.flusher.sendNdjson!(batch.ndjson, signal)),
      ),
    );
    if (!results.every(Boolean)) return false;
    this.ctx.metrics?.records(this.name, batch.count, batch.contentUnits);
    return true;
  }

  /** Sends until taken (retries with backoff); false when abandoned by stop(). */
  private async sendUntilTaken(type: string, send: (signal: AbortSignal) => Promise<void>): Promise<boolean> {
    let backoff = 100;
    let failures = 0;
    for (;;) {
      if (this.abort.signal.aborted) return false;
      try {
        await send(this.abort.signal);
        if (failures > 0) this.log.info({ flusher: type, failures }, "sink takes records again");
        return true;
      } catch (err) {
        failures++;
        this.ctx.metrics?.sendFailure(this.name, type);
        if (failures === 1 || failures % 20 === 0) {
          this.log.warn({ flusher: type, failures, err: (err as Error).message }, "send failed, retrying");
        }
        try {
          await sleep(backoff, undefined, { signal: this.abort.signal });
        } catch {
          return false;
        }
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }
}
