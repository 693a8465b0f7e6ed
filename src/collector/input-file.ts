/**
 * input_file: text files on the host, or inside the containers the filters select
 * (EnableContainerDiscovery: FilePaths are paths in the container, found through its bind
 * mounts or else its writable overlay layer). The paths are looked up again every few
 * seconds; each file is a source followed across rotations. Where reading starts, as in
 * iLogtail: at its checkpoint; else a file that appears after the pipeline started is read
 * from its start, and one that was already there from its last TailSizeKB (default 1024),
 * or from its start with TailingAllMatchedFiles.
 */
import { stat } from "node:fs/promises";
import { relative } from "node:path";
import type { MultilineOptions } from "./assembler.js";
import type { Schema } from "./config.js";
import type { ContainerInfo } from "./container-info.js";
import type { TailOptions } from "./file-tail.js";
import { ContainerFilter, type ContainerFiltersConfig } from "./filters.js";
import { expandGlob, nameRegex } from "./glob.js";
import { hostView } from "./host-root.js";
import { FILTERS_SCHEMA, tagsFor, tailOptions } from "./input-stdio.js";
import type { Input, Pipeline } from "./pipeline.js";
import { MULTILINE_SCHEMA } from "./processors.js";
import { Source } from "./source.js";

export const FILE_SCHEMA: Schema = {
  FilePaths: { type: "strings", required: true },
  MaxDirSearchDepth: { type: "int" },
  ExcludeFilePaths: { type: "strings" },
  ExcludeFiles: { type: "strings" },
  ExcludeDirs: { type: "strings" },
  FileEncoding: { type: "string" },
  Multiline: { type: "object", schema: MULTILINE_SCHEMA },
  FlushTimeoutSecs: { type: "number" },
  EnableContainerDiscovery: { type: "bool" },
  ContainerFilters: { type: "object", schema: FILTERS_SCHEMA },
  ExternalK8sLabelTag: { type: "map" },
  ExternalEnvTag: { type: "map" },
  AppendingLogPositionMeta: { type: "bool" },
  TailingAllMatchedFiles: { type: "bool" },
  TailSizeKB: { type: "int" },
};

type Params = Record<string, unknown>;

/** A container path → the host path it can be read at (longest bind mount, else rootfs). */
export function hostPathIn(c: ContainerInfo, path: string): string | undefined {
  let best: { destination: string; source: string } | undefined;
  for (const m of c.mounts) {
    const rel = relative(m.destination, path);
    if (rel.startsWith("..") || (best && best.destination.length >= m.destination.length)) continue;
    best = m;
  }
  if (best)
    return `${best.source.replace(/\/+$/, "")}/${relative(best.destination, path)}`.replace(/\/$/, "");
  return c.rootfs ? `${c.rootfs.replace(/\/+$/, "")}${path}` : undefined;
}

/** A host path found for a container → the path the container sees it at. */
function containerPathOf(c: ContainerInfo, root: string, host: string): string {
  for (const m of c.mounts) {
    const src = m.source.replace(/\/+$/, "");
    if (host.startsWith(`${src}/`)) return `${m.destination.replace(/\/+$/, "")}${host.slice(src.length)}`;
  }
  return host.startsWith(root) ? `/${relative(root, host)}` : host;
}

export class FileInput implements Input {
  private readonly following = new Map<string, Source>();
  private readonly tail: TailOptions;
  private readonly filter: ContainerFilter | undefined;
  private readonly excludePaths: RegExp[];
  private readonly excludeFiles: RegExp[];
  private readonly excludeDirs: RegExp[];
  private timer: NodeJS.Timeout | undefined;
  private scanning = false;
  /** Files found by the first scan were there before us: read from their tail (see above). */
  private firstScan = true;
  private readonly tailBytes: number | undefined;

  constructor(
    private readonly p: Params,
    private readonly pipeline: Pipeline,
    multiline: MultilineOptions | undefined,
  ) {
    const enc = (p["FileEncoding"] as string | undefined) ?? "utf8";
    if (!/^utf-?8$/i.test(enc))
      throw new Error(`FileEncoding: only utf8 is supported, got ${JSON.stringify(enc)}`);
    for (const fp of p["FilePaths"] as string[]) {
      if (!fp.startsWith("/")) throw new Error(`FilePaths: want absolute paths, got ${JSON.stringify(fp)}`);
    }
    this.tail = { ...tailOptions(p, pipeline, multiline, "raw") };
    this.filter = p["EnableContainerDiscovery"]
      ? new ContainerFilter((p["ContainerFilters"] as ContainerFiltersConfig) ?? {})
      : undefined;
    const res = (k: string) => ((p[k] as string[] | undefined) ?? []).map(nameRegex);
    this.excludePaths = res("ExcludeFilePaths");
    this.excludeFiles = res("ExcludeFiles");
    this.excludeDirs = res("ExcludeDirs");
    const tailKB = (p["TailSizeKB"] as number | undefined) ?? 1024;
    if (tailKB < 0) throw new Error(`TailSizeKB: want 0 or more, got ${tailKB}`);
    this.tailBytes = p["TailingAllMatchedFiles"] === true ? undefined : tailKB * 1024;
  }

  start(): void {
    void this.scan();
    this.timer = setInterval(() => void this.scan(), 2000);
  }

  sources(): Iterable<Source> {
    return this.following.values();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.following.values()].map((s) => s.stop()));
    this.following.clear();
  }

  private excluded(path: string): boolean {
    const dir = path.slice(0, path.lastIndexOf("/")) || "/";
    const name = path.slice(path.lastIndexOf("/") + 1);
    return (
      this.excludePaths.some((r) => r.test(path)) ||
      this.excludeFiles.some((r) => r.test(name)) ||
      this.excludeDirs.some((r) => r.test(dir))
    );
  }

  /**
   * (key, path opened, path as the user sees it, container) for every matching file now. Host
   * files (no container discovery) are opened as FilePaths name them, as iLogtail does: run in
   * a pod, FilePaths name them under the host-root mount (`/logtail_host/var/log/x.log`). Files
   * in containers are found through host paths from the runtime, opened under the host root.
   */
  private async matches(): Promise<Array<{ key: string; opened: string; shown: string; c?: ContainerInfo }>> {
    const depth = (this.p["MaxDirSearchDepth"] as number | undefined) ?? 0;
    const hostRoot = this.pipeline.ctx.hostRoot ?? "";
    const out: Array<{ key: string; opened: string; shown: string; c?: ContainerInfo }> = [];
    const prefix = `${this.pipeline.name}/file/`;
    for (const pattern of this.p["FilePaths"] as string[]) {
      if (!this.filter) {
        for (const host of await expandGlob(pattern, depth)) {
          if (!this.excluded(host)) out.push({ key: prefix + host, opened: host, shown: host });
        }
        continue;
      }
      for (const c of this.pipeline.ctx.containers.current().values()) {
        if (c.state !== "running" || !this.filter.matches(c)) continue;
        const root = hostPathIn(c, "/");
        const hostPattern = hostPathIn(c, pattern);
        if (!hostPattern || root === undefined) continue;
        for (const opened of await expandGlob(hostPattern, depth, hostRoot)) {
          const shown = containerPathOf(c, root, hostView(hostRoot, opened));
          if (!this.excluded(shown)) out.push({ key: `${prefix}${c.id}${shown}`, opened, shown, c });
        }
      }
    }
    return out;
  }

  private async scan(): Promise<void> {
    if (this.scanning) return;
    this.scanning = true;
    try {
      const found = await this.matches();
      const seen = new Set<string>();
      for (const f of found) {
        seen.add(f.key);
        if (this.following.has(f.key)) continue;
        const src = this.source(f.key, f.opened, f.shown, f.c, this.firstScan ? this.tailBytes : undefined);
        this.following.set(f.key, src);
        src.start();
      }
      for (const [key, src] of this.following) if (!seen.has(key)) src.finish();
      this.firstScan = false;
    } catch (err) {
      this.pipeline.log.warn({ err: (err as Error).message }, "input_file: scanning failed");
    } finally {
      this.scanning = false;
    }
  }

  private source(
    key: string,
    opened: string,
    shown: string,
    c: ContainerInfo | undefined,
    tailBytes: number | undefined,
  ): Source {
    // One tags object for all the records of a source (flushers serialise it once).
    const tags: Record<string, string> = Object.freeze({ ...(c ? tagsFor(c, this.p) : {}), __path__: shown });
    const src = new Source(
      {
        key,
        path: opened,
        tail: this.tail,
        tailBytes,
        tags,
      },
      this.pipeline.sourceContext(),
    );
    void src.finished.then(async (how) => {
      if (this.following.get(key) === src) this.following.delete(key);
      // Read to the end of a file that went away: its position is of no more use.
      if (how === "done" && !(await stat(opened).catch(() => undefined)))
        this.pipeline.ctx.checkpoints.delete(key);
    });
    return src;
  }
}
