/**
 * input_container_stdio: the stdout/stderr of the containers the filters select, read from
 * their CRI logs. A source per container; one that exits (or is removed) is read to its end,
 * then marked done in the checkpoints so a restart does not read it again; the checkpoint
 * goes once the runtime no longer lists the container.
 */
import type { MultilineOptions } from "./assembler.js";
import type { Schema } from "./config.js";
import { type ContainerInfo, containerTags } from "./container-info.js";
import type { ContainerSet } from "./discovery.js";
import { DEFAULT_TAIL_OPTIONS, type TailOptions } from "./file-tail.js";
import { ContainerFilter, type ContainerFiltersConfig } from "./filters.js";
import { onHost } from "./host-root.js";
import { lineDecoder } from "./line-format.js";
import type { Input, Pipeline } from "./pipeline.js";
import { MULTILINE_SCHEMA, multilineOptions } from "./processors.js";
import { Source } from "./source.js";

export const FILTERS_SCHEMA: Schema = {
  K8sNamespaceRegex: { type: "string" },
  K8sPodRegex: { type: "string" },
  K8sContainerRegex: { type: "string" },
  IncludeK8sLabel: { type: "map" },
  ExcludeK8sLabel: { type: "map" },
  IncludeEnv: { type: "map" },
  ExcludeEnv: { type: "map" },
  IncludeContainerLabel: { type: "map" },
  ExcludeContainerLabel: { type: "map" },
};

export const STDIO_SCHEMA: Schema = {
  IgnoringStdout: { type: "bool" },
  IgnoringStderr: { type: "bool" },
  ContainerFilters: { type: "object", schema: FILTERS_SCHEMA },
  ExternalK8sLabelTag: { type: "map" },
  ExternalEnvTag: { type: "map" },
  Multiline: { type: "object", schema: MULTILINE_SCHEMA },
  FlushTimeoutSecs: { type: "number" },
  /** "cri" (default) or "docker-json" (Docker's json-file logs). */
  LogFormat: { type: "string" },
};

type Params = Record<string, unknown>;

/** Tags for a container: iLogtail's, plus ExternalK8sLabelTag / ExternalEnvTag mappings. */
export function tagsFor(c: ContainerInfo, p: Params): Record<string, string> {
  const tags = containerTags(c);
  for (const [label, tag] of Object.entries((p["ExternalK8sLabelTag"] as Record<string, string>) ?? {})) {
    const v = c.k8sLabels[label];
    if (v !== undefined) tags[tag] = v;
  }
  for (const [env, tag] of Object.entries((p["ExternalEnvTag"] as Record<string, string>) ?? {})) {
    const v = c.env[env];
    if (v !== undefined) tags[tag] = v;
  }
  return tags;
}

/** Tail options from an input's params (multiline, flush timeout) over the pipeline's. */
export function tailOptions(
  p: Params,
  pipeline: Pipeline,
  multiline: MultilineOptions | undefined,
  format: "cri" | "docker-json" | "raw",
): TailOptions {
  const ml = multilineOptions(p["Multiline"] as Params | undefined) ?? multiline;
  const opts: TailOptions = {
    ...DEFAULT_TAIL_OPTIONS,
    ...pipeline.ctx.tail,
    decode: lineDecoder(format),
    multiline: ml,
  };
  if (typeof p["FlushTimeoutSecs"] === "number") opts.flushTimeoutMs = p["FlushTimeoutSecs"] * 1000;
  return opts;
}

export class ContainerStdioInput implements Input {
  private readonly filter: ContainerFilter;
  private readonly following = new Map<string, Source>();
  private readonly tail: TailOptions;
  private readonly prefix: string;
  /** The LogFormat parameter; unset: what discovery says (CRI, or json-file for Docker). */
  private readonly format: "cri" | "docker-json" | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly p: Params,
    private readonly pipeline: Pipeline,
    multiline: MultilineOptions | undefined,
  ) {
    this.filter = new ContainerFilter((p["ContainerFilters"] as ContainerFiltersConfig) ?? {});
    const format = p["LogFormat"] as string | undefined;
    if (format !== undefined && format !== "cri" && format !== "docker-json") {
      throw new Error(`LogFormat: want cri or docker-json, got ${JSON.stringify(format)}`);
    }
    this.format = format;
    this.tail = { ...tailOptions(p, pipeline, multiline, "cri"), fromOldestRotated: true };
    this.prefix = `${pipeline.name}/stdio/`;
  }

  start(): void {
    this.unsubscribe = this.pipeline.ctx.containers.subscribe((set) => this.sync(set));
  }

  sources(): Iterable<Source> {
    return this.following.values();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await Promise.all([...this.following.values()].map((s) => s.stop()));
    this.following.clear();
  }

  private sync(set: ContainerSet): void {
    const { checkpoints } = this.pipeline.ctx;
    for (const c of set.values()) {
      const key = this.prefix + c.id;
      const existing = this.following.get(key);
      if (existing) {
        if (c.state === "exited") existing.finish();
        continue;
      }
      if (c.state === "unknown") continue;
      if (!c.logPath || c.state === "created" || !this.filter.matches(c)) continue;
      if (checkpoints.get(key)?.done) continue;
      const src = this.source(key, c);
      this.pipeline.log.debug(
        { container: c.id, path: c.logPath, from: checkpoints.get(key)?.position?.offset ?? null },
        "following container log",
      );
      this.following.set(key, src);
      src.start();
      if (c.state === "exited") src.finish();
    }
    for (const [key, src] of this.following) {
      if (!set.has(key.slice(this.prefix.length))) src.finish();
    }
    for (const key of checkpoints.keys()) {
      if (
        key.startsWith(this.prefix) &&
        !set.has(key.slice(this.prefix.length)) &&
        !this.following.has(key)
      ) {
        checkpoints.delete(key);
      }
    }
  }

  private source(key: string, c: ContainerInfo): Source {
    const tags = Object.freeze(tagsFor(c, this.p)); // shared by all its records
    const src = new Source(
      {
        key,
        path: onHost(this.pipeline.ctx.hostRoot ?? "", c.logPath),
        tail: { ...this.tail, decode: lineDecoder(this.format ?? c.logFormat ?? "cri") },
        tags,
        ignoreStdout: this.p["IgnoringStdout"] === true,
        ignoreStderr: this.p["IgnoringStderr"] === true,
      },
      this.pipeline.sourceContext(),
    );
    void src.finished.then((how) => {
      if (how === "done" && this.following.get(key) === src) this.following.delete(key);
    });
    return src;
  }
}
