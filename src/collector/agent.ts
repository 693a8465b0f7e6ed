/**
 * The collector: checkpoints, container discovery, and one pipeline per config file. The
 * config path (a file, or a directory of *.yaml / *.yml) is looked at every few seconds and
 * on SIGHUP; a changed file replaces its pipeline (the old one stops gracefully, committing
 * what was delivered, and the new one resumes from those positions); a file that does not
 * load is reported and leaves its running pipeline, and every other one, as they were.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { CriClient } from "../api/client.js";
import type { Logger } from "../common/logger.js";
import { writeFileAtomic } from "../store/atomic.js";
import { CheckpointStore } from "./checkpoint.js";
import { parsePipeline } from "./config.js";
import { type ContainerSource, CriDiscovery } from "./discovery.js";
import { DockerDiscovery, MergedDiscovery } from "./discovery-docker.js";
import type { TailOptions } from "./file-tail.js";
import { Pipeline, type PipelineMetrics, SCHEMAS } from "./pipeline.js";
import type { SourceStatus } from "./source.js";

export interface AgentOptions {
  configPath: string;
  stateDir: string;
  /** The CRI runtime to find containers through; and/or a Docker Engine endpoint. */
  client?: CriClient;
  dockerEndpoint?: string;
  log: Logger;
  discoveryIntervalMs?: number;
  readIntervalMs?: number;
  configIntervalMs?: number;
  checkpointIntervalMs?: number;
  /** How often `state-dir/status.json` is rewritten with each source's lag (ms). */
  statusIntervalMs?: number;
  tail?: Partial<TailOptions>;
  metrics?: PipelineMetrics;
  /** Where the host's `/` is mounted (a DaemonSet's `/logtail_host`); "" on the host. */
  hostRoot?: string;
}

interface Loaded {
  hash: string;
  pipeline: Pipeline | undefined;
}

export interface AgentStatus {
  pid: number;
  updated: string;
  pipelines: Array<{ name: string; file: string; sources: SourceStatus[] }>;
  errors: Array<{ file: string; error: string }>;
}

export class Agent {
  readonly checkpoints: CheckpointStore;
  /** The containers of every runtime given (what the pipelines select from). */
  readonly containers: ContainerSource;
  private readonly discoveries: Array<{ start(): Promise<void>; stop(): void }> = [];
  private readonly loaded = new Map<string, Loaded>();
  private readonly errors = new Map<string, { hash: string; error: string }>();
  private timer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  private stopped = false;
  private started = false;

  constructor(private readonly opts: AgentOptions) {
    this.checkpoints = new CheckpointStore(opts.stateDir, opts.checkpointIntervalMs ?? 1000);
    const parts: Array<CriDiscovery | DockerDiscovery> = [];
    if (opts.client) {
      parts.push(
        new CriDiscovery(
          opts.client,
          opts.log.child({ component: "discovery" }),
          opts.discoveryIntervalMs,
          opts.hostRoot,
        ),
      );
    }
    if (opts.dockerEndpoint) {
      parts.push(
        new DockerDiscovery(
          opts.dockerEndpoint,
          opts.log.child({ component: "docker" }),
          opts.discoveryIntervalMs,
        ),
      );
    }
    if (parts.length === 0) throw new Error("no runtime to find containers through");
    this.discoveries = parts;
    this.containers = parts.length === 1 ? parts[0]! : new MergedDiscovery(parts);
  }

  async start(): Promise<void> {
    await this.checkpoints.load();
    this.checkpoints.start();
    await Promise.all(this.discoveries.map((d) => d.start()));
    this.started = true;
    await this.reload();
    this.timer = setInterval(() => void this.reload(), this.opts.configIntervalMs ?? 3000);
    this.statusTimer = setInterval(
      () => void this.writeStatus().catch(() => {}),
      this.opts.statusIntervalMs ?? 2000,
    );
  }

  /** Stops every pipeline (graceful), then writes the checkpoints a last time. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    await this.reloading;
    for (const d of this.discoveries) d.stop();
    await Promise.all([...this.loaded.values()].map((l) => l.pipeline?.stop(graceMs)));
    this.loaded.clear();
    await this.checkpoints.stop();
    await this.writeStatus().catch(() => {});
  }

  pipelines(): string[] {
    return [...this.loaded.values()].flatMap((l) => (l.pipeline ? [l.pipeline.name] : []));
  }

  configErrors(): Map<string, string> {
    return new Map([...this.errors].map(([f, e]) => [f, e.error]));
  }

  /** Re-reads the config path; one reload at a time (one asked for meanwhile runs after). */
  reload(): Promise<void> {
    if (!this.started) return Promise.resolve(); // start() loads them, after the checkpoints
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        await this.reloadOnce().catch((err: Error) =>
          this.opts.log.error({ err: err.message }, "reload failed"),
        );
      } while (this.reloadAgain && !this.stopped);
      this.reloading = undefined;
    })();
    return this.reloading;
  }

  private async configFiles(): Promise<string[]> {
    const st = await stat(this.opts.configPath);
    if (!st.isDirectory()) return [this.opts.configPath];
    const names = await readdir(this.opts.configPath);
    return names
      .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith("."))
      .sort()
      .map((n) => join(this.opts.configPath, n));
  }

  private async reloadOnce(): Promise<void> {
    if (this.stopped) return;
    const log = this.opts.log;
    const files = await this.configFiles();
    let changed = false;
    for (const file of files) {
      const text = await readFile(file, "utf8").catch(() => undefined);
      if (text === undefined) continue;
      const hash = createHash("sha256").update(text).digest("hex");
      const old = this.loaded.get(file);
      if (old?.hash === hash || this.errors.get(file)?.hash === hash) continue;
      changed = true;
      let next: Pipeline | undefined;
      try {
        const cfg = parsePipeline(file, text, SCHEMAS);
        next = cfg
          ? new Pipeline(cfg, {
              containers: this.containers,
              checkpoints: this.checkpoints,
              log,
              readIntervalMs: this.opts.readIntervalMs ?? 100,
              tail: this.opts.tail,
              metrics: this.opts.metrics,
              hostRoot: this.opts.hostRoot ?? "",
            })
          : undefined;
      } catch (err) {
        const msg = (err as Error).message;
        log.error(
          { file, err: msg },
          old ? "config not loaded; the running pipeline stays" : "config not loaded",
        );
        this.errors.set(file, { hash, error: msg });
        continue;
      }
      this.errors.delete(file);
      if (old?.pipeline) await old.pipeline.stop();
      if (this.stopped) return;
      this.loaded.set(file, { hash, pipeline: next });
      next?.start();
      log.info(
        { file, pipeline: next?.name },
        next ? (old ? "pipeline reloaded" : "pipeline started") : "pipeline disabled",
      );
    }
    for (const [file, l] of this.loaded) {
      if (files.includes(file)) continue;
      changed = true;
      this.loaded.delete(file);
      await l.pipeline?.stop();
      log.info({ file }, "pipeline removed");
    }
    for (const file of [...this.errors.keys()]) if (!files.includes(file)) this.errors.delete(file);
    if (changed) await this.writeStatus().catch(() => {});
  }

  async status(): Promise<AgentStatus> {
    const pipelines = await Promise.all(
      [...this.loaded.entries()].flatMap(([file, l]) => {
        const p = l.pipeline;
        return p ? [p.sources().then((sources) => ({ name: p.name, file, sources }))] : [];
      }),
    );
    return {
      pid: process.pid,
      updated: new Date().toISOString(),
      pipelines,
      errors: [...this.errors.entries()].map(([file, e]) => ({ file, error: e.error })),
    };
  }

  private async writeStatus(): Promise<void> {
    await writeFileAtomic(
      join(this.opts.stateDir, "status.json"),
      `${JSON.stringify(await this.status(), null, 2)}\n`,
      0o644,
    );
  }
}
