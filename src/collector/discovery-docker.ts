/**
 * Finds containers through the Docker Engine API (`--docker-endpoint unix:///var/run/docker.sock`):
 * /containers/json?all=1 on every poll, /containers/{id}/json for each new or changed one.
 * Kubernetes names come from the labels cri-dockerd (and dockershim before it) set; a pod's
 * labels are its sandbox container's. Logs are Docker's json-file format at `LogPath`.
 */
import { Client } from "undici";
import type { Logger } from "../common/logger.js";
import type { ContainerInfo } from "./container-info.js";
import { type ContainerSet, type ContainerSource, PollingSource } from "./polling-source.js";

interface DockerSummary {
  Id: string;
  State?: string;
  Labels?: Record<string, string> | null;
}

interface DockerInspect {
  Id: string;
  Name?: string;
  LogPath?: string;
  Config?: { Env?: string[] | null; Labels?: Record<string, string> | null; Image?: string };
  State?: { Status?: string };
  HostConfig?: { LogConfig?: { Type?: string } };
  Mounts?: Array<{ Source?: string; Destination?: string }> | null;
  GraphDriver?: { Data?: Record<string, string> | null };
}

const STATES: Record<string, ContainerInfo["state"]> = {
  created: "created",
  running: "running",
  paused: "running",
  restarting: "running",
  exited: "exited",
  dead: "exited",
  removing: "exited",
};

/** unix:///var/run/docker.sock (or a bare path) → the socket path. */
export function dockerSocket(endpoint: string): string {
  const path = endpoint.replace(/^unix:\/\//, "").replace(/^unix:/, "");
  if (!path.startsWith("/"))
    throw new Error(`--docker-endpoint: want unix:///path, got ${JSON.stringify(endpoint)}`);
  return path;
}

export class DockerDiscovery extends PollingSource {
  private readonly http: Client;
  /** The events stream holds its connection for good: a client of its own. */
  private readonly eventsHttp: Client;
  private events: AbortController | undefined;
  /** Containers whose log driver is not json-file, warned about once each. */
  private readonly unreadable = new Set<string>();

  constructor(endpoint: string, log: Logger, pollMs = 1000) {
    super(log, pollMs, "listing Docker containers failed");
    this.http = new Client("http://docker", { socketPath: dockerSocket(endpoint) });
    this.eventsHttp = new Client("http://docker", { socketPath: dockerSocket(endpoint) });
  }

  override async start(): Promise<void> {
    await super.start();
    this.watchEvents();
  }

  override stop(): void {
    super.stop();
    this.events?.abort();
    void this.http.close().catch(() => {});
    void this.eventsHttp.destroy().catch(() => {});
  }

  /**
   * Container events (create, start, die, destroy) list again at once, so a container that
   * writes and exits between two polls is still seen before it can be removed; polling stays
   * as the fallback while the stream is down.
   */
  private watchEvents(): void {
    if (this.stopped) return;
    const ac = new AbortController();
    this.events = ac;
    const filters = encodeURIComponent(JSON.stringify({ type: ["container"] }));
    const retry = () => {
      if (!this.stopped) setTimeout(() => this.watchEvents(), 5000).unref();
    };
    this.eventsHttp
      .request({ path: `/events?filters=${filters}`, method: "GET", signal: ac.signal, bodyTimeout: 0 })
      .then(async (res) => {
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new Error(`GET /events: HTTP ${res.statusCode}`);
        }
        for await (const _ of res.body) void this.poll();
      })
      .then(retry, (err: Error) => {
        if (ac.signal.aborted) return;
        this.log.debug({ err: err.message }, "Docker events stream ended");
        retry();
      });
  }

  private async get<T>(path: string): Promise<T> {
    const res = await this.http.request({ path, method: "GET", headersTimeout: 30_000, bodyTimeout: 30_000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET ${path}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  protected async list(): Promise<Map<string, ContainerInfo>> {
    const list = await this.get<DockerSummary[]>("/containers/json?all=1");
    const sandboxes = new Map<string, Record<string, string>>();
    for (const c of list) {
      if (c.Labels?.["io.kubernetes.docker.type"] === "podsandbox") sandboxes.set(c.Id, c.Labels ?? {});
    }
    const next = new Map<string, ContainerInfo>();
    for (const c of list) {
      if (sandboxes.has(c.Id)) continue;
      const state = STATES[c.State ?? ""] ?? "unknown";
      const known = this.containers.get(c.Id);
      if (known && known.state === state) {
        next.set(c.Id, known);
        continue;
      }
      const info = await this.get<DockerInspect>(`/containers/${encodeURIComponent(c.Id)}/json`).then(
        (d) => {
          this.warnUnreadable(d);
          return toInfo(d, sandboxes);
        },
        () => (known ? { ...known, state: "unknown" as const } : undefined),
      );
      if (info) next.set(c.Id, info);
    }
    for (const id of this.unreadable) if (!next.has(id)) this.unreadable.delete(id);
    return next;
  }

  private warnUnreadable(d: DockerInspect): void {
    const driver = logDriver(d);
    if (driver === "json-file" || this.unreadable.has(d.Id)) return;
    this.unreadable.add(d.Id);
    this.log.warn(
      { container: d.Id, name: (d.Name ?? "").replace(/^\//, "") },
      `log driver "${driver}" is not readable as a file (only json-file is): its stdout/stderr is not collected`,
    );
  }
}

/** The container's log driver; json-file when the engine does not say. */
function logDriver(d: DockerInspect): string {
  return d.HostConfig?.LogConfig?.Type || "json-file";
}

export function toInfo(d: DockerInspect, sandboxes: Map<string, Record<string, string>>): ContainerInfo {
  const labels = d.Config?.Labels ?? {};
  const env: Record<string, string> = {};
  for (const e of d.Config?.Env ?? []) {
    const i = e.indexOf("=");
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
  }
  const sandbox = sandboxes.get(labels["io.kubernetes.sandbox.id"] ?? "") ?? {};
  const k8sLabels = Object.fromEntries(
    Object.entries(sandbox).filter(([k]) => !k.startsWith("io.kubernetes.")),
  );
  return {
    id: d.Id,
    name: labels["io.kubernetes.container.name"] ?? (d.Name ?? "").replace(/^\//, ""),
    podName: labels["io.kubernetes.pod.name"] ?? "",
    namespace: labels["io.kubernetes.pod.namespace"] ?? "",
    podUid: labels["io.kubernetes.pod.uid"] ?? "",
    podSandboxId: labels["io.kubernetes.sandbox.id"] ?? "",
    image: d.Config?.Image ?? "",
    labels,
    k8sLabels,
    env,
    // Only json-file logs can be read: `local` is a protobuf-framed, possibly compressed file.
    logPath: logDriver(d) === "json-file" ? (d.LogPath ?? "") : "",
    logFormat: "docker-json",
    state: STATES[d.State?.Status ?? ""] ?? "unknown",
    rootfs: d.GraphDriver?.Data?.["UpperDir"] ?? d.GraphDriver?.Data?.["MergedDir"] ?? "",
    mounts: (d.Mounts ?? []).flatMap((m) =>
      m.Source && m.Destination ? [{ destination: m.Destination, source: m.Source }] : [],
    ),
  };
}

/** Several container sources as one; subscribers hear once every part has listed. */
export class MergedDiscovery implements ContainerSource {
  private readonly subscribers = new Set<(set: ContainerSet) => void>();
  private merged = new Map<string, ContainerInfo>();

  constructor(private readonly parts: Array<ContainerSource & { isListed(): boolean }>) {
    for (const p of parts) p.subscribe(() => this.update());
  }

  private ready(): boolean {
    return this.parts.every((p) => p.isListed());
  }

  private update(): void {
    if (!this.ready()) return;
    this.merged = new Map(this.parts.flatMap((p) => [...p.current()]));
    for (const fn of this.subscribers) fn(this.merged);
  }

  current(): ContainerSet {
    return this.merged;
  }

  subscribe(fn: (set: ContainerSet) => void): () => void {
    this.subscribers.add(fn);
    if (this.ready()) fn(this.merged);
    return () => this.subscribers.delete(fn);
  }
}
