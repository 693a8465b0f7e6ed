/**
 * The Docker backend's containers: created from the CRI config (create-body.ts) in the pod's
 * sandbox namespaces; state, exit code and OOM kill read from the engine; CRI-format logs
 * written by Berth (logs.ts); lifecycle events from the engine's own event stream, so that
 * exits nobody asked for are reported too.
 */
import {
  type Container,
  type ContainerConfig,
  type ContainerEventResponse,
  ContainerEventType,
  type ContainerFilter,
  ContainerState,
  type ContainerStats,
  type ContainerStatsFilter,
  type ContainerStatus,
  type LinuxContainerResources,
} from "../../api/gen/runtime/v1/api.js";
import {
  failedPrecondition,
  invalidArgument,
  isBerthError,
  notFound,
  unimplemented,
} from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { epochNowNs } from "../../common/time.js";
import { checkArgv, confineLogPath, validateContainerConfig } from "../../container/validate.js";
import type { DockerEngine } from "../../docker/engine.js";
import { progressMessages } from "../../docker/frames.js";
import { EventBus } from "../../events/bus.js";
import { containerStats } from "../../stats/collect.js";
import type { CpuRateCache } from "../../stats/cpu-rate.js";
import { DirUsageCache } from "../../stats/fs-usage.js";
import type { ExecIO } from "../../streaming/remotecommand.js";
import type {
  ContainerBackend,
  EventStream,
  ExecSyncResult,
  SandboxBackend,
  StdioConfig,
  WithInfo,
} from "../backend.js";
import { matchesId, matchesLabels } from "../filters.js";
import { verboseInfo } from "../verbose-info.js";
import { containerCreateBody, dockerResources } from "./create-body.js";
import {
  containerConfigOf,
  createdNsOf,
  dockerName,
  dockerTimeNs,
  encodeContainerConfig,
  L,
  podConfigOf,
} from "./labels.js";
import { LogFollower } from "./logs.js";
import {
  createContainer,
  type DockerContainer,
  type DockerListEntry,
  findKind,
  inspectKind,
  listKind,
  removeContainer,
  stopContainer,
} from "./objects.js";
import * as stdio from "./stdio.js";

export interface DockerContainerOptions {
  engine: DockerEngine;
  logger: Logger;
  rates: CpuRateCache;
  sandboxes: () => SandboxBackend;
  seccompUseDefaultWhenEmpty: boolean;
  oomScoreAdjMin: number;
}

interface Event {
  status: ContainerStatus;
  podId: string;
}

function stateOf(s: string): ContainerState {
  if (s === "created") return ContainerState.CONTAINER_CREATED;
  if (s === "running" || s === "paused" || s === "restarting") return ContainerState.CONTAINER_RUNNING;
  if (s === "exited" || s === "dead") return ContainerState.CONTAINER_EXITED;
  return ContainerState.CONTAINER_UNKNOWN;
}

const EVENT_TYPES: Record<string, ContainerEventType> = {
  create: ContainerEventType.CONTAINER_CREATED_EVENT,
  start: ContainerEventType.CONTAINER_STARTED_EVENT,
  die: ContainerEventType.CONTAINER_STOPPED_EVENT,
  destroy: ContainerEventType.CONTAINER_DELETED_EVENT,
};

const CRI_EVENT = {
  created: ContainerEventType.CONTAINER_CREATED_EVENT,
  started: ContainerEventType.CONTAINER_STARTED_EVENT,
  stopped: ContainerEventType.CONTAINER_STOPPED_EVENT,
  deleted: ContainerEventType.CONTAINER_DELETED_EVENT,
} as const;

export class DockerContainerBackend implements ContainerBackend {
  private readonly followers = new Map<string, LogFollower>();
  private readonly bus = new EventBus<Event>();
  private readonly fsUsage = new DirUsageCache();
  private readonly lastStatus = new Map<string, Event>();
  private readonly closing = new AbortController();

  constructor(private readonly o: DockerContainerOptions) {}

  /** Picks up where a previous berthd left: log followers for every container, and the event stream. */
  async init(): Promise<void> {
    void this.watchEvents();
  }

  private async resumeFollowers(): Promise<void> {
    for (const e of await listKind(this.o.engine, "container")) void this.follow(e.Id, e.Labels, undefined);
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.all([...this.followers.values()].map((f) => f.close()));
  }

  private follow(id: string, labels: Record<string, string> | null, tty: boolean | undefined): Promise<void> {
    const path = labels?.[L.logPath] ?? "";
    const running = this.followers.get(id);
    if (path === "" || running) return running?.opened ?? Promise.resolve();
    const config = containerConfigOf(labels, id);
    const f = new LogFollower(this.o.engine, id, path, tty ?? config.tty, this.o.logger);
    this.followers.set(id, f);
    void f.done.then(() => {
      if (this.followers.get(id) === f) this.followers.delete(id);
    });
    return f.opened;
  }

  async create(podId: string, config: ContainerConfig): Promise<string> {
    validateContainerConfig(config);
    const pod = await inspectKind(this.o.engine, "sandbox", podId);
    if (!pod.State.Running) throw failedPrecondition(`pod sandbox ${pod.Id} is not ready`);
    const podConfig = podConfigOf(pod.Config.Labels, pod.Id);
    const imageRef = config.image?.image ?? "";
    if (imageRef === "") throw invalidArgument("container image is empty");
    let imageId: string;
    try {
      imageId = (await this.o.engine.json<{ Id: string }>("GET", `/images/${imageRef}/json`)).Id;
    } catch (err) {
      if (isBerthError(err, "NotFound") || isBerthError(err, "InvalidArgument"))
        throw notFound(`image "${imageRef}" not found`);
      throw err;
    }
    const logPath = await confineLogPath(podConfig.logDirectory, config.logPath);
    const md = config.metadata;
    const labels = {
      ...config.labels,
      [L.kind]: "container",
      [L.sandboxId]: pod.Id,
      [L.config]: encodeContainerConfig(config),
      [L.createdNs]: epochNowNs().toString(),
      [L.logPath]: logPath,
      [L.image]: imageRef,
    };
    const body = await containerCreateBody(config, {
      sandboxId: pod.Id,
      pod: podConfig,
      imageId,
      labels,
      cgroupParent: podConfig.linux?.cgroupParent ?? "",
      seccompUseDefaultWhenEmpty: this.o.seccompUseDefaultWhenEmpty,
      oomScoreAdjMin: this.o.oomScoreAdjMin,
    });
    return createContainer(
      this.o.engine,
      dockerName(md?.name ?? "", podConfig.metadata, md?.attempt ?? 0),
      body,
    );
  }

  async start(id: string): Promise<void> {
    const c = await inspectKind(this.o.engine, "container", id);
    if (c.State.Status !== "created")
      throw failedPrecondition(`container ${c.Id} is ${c.State.Status}, not created`);
    await this.o.engine.json("POST", `/containers/${c.Id}/start`);
    await this.follow(c.Id, c.Config.Labels, c.Config.Tty);
  }

  async stop(id: string, timeoutSec: number): Promise<void> {
    const c = await findKind(this.o.engine, "container", id);
    if (!c) return;
    await stopContainer(this.o.engine, c.Id, timeoutSec);
    await this.drained(c.Id);
  }

  /** Waits (a bounded time) for the log follower of an exited container to write its last lines. */
  private async drained(id: string): Promise<void> {
    const f = this.followers.get(id);
    if (!f) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([f.done, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
  }

  async remove(id: string): Promise<void> {
    const c = await findKind(this.o.engine, "container", id);
    if (!c) return;
    await this.followers.get(c.Id)?.close();
    this.followers.delete(c.Id);
    await removeContainer(this.o.engine, c.Id);
  }

  /** Ids of the pod's containers. */
  async inPod(podId: string): Promise<string[]> {
    return (await listKind(this.o.engine, "container", [`${L.sandboxId}=${podId}`])).map((e) => e.Id);
  }

  private toStatus(c: DockerContainer): ContainerStatus {
    const config = containerConfigOf(c.Config.Labels, c.Id);
    const state = stateOf(c.State.Status);
    const exited = state === ContainerState.CONTAINER_EXITED;
    const reason = !exited
      ? ""
      : c.State.OOMKilled
        ? "OOMKilled"
        : c.State.ExitCode === 0
          ? "Completed"
          : "Error";
    return {
      id: c.Id,
      metadata: config.metadata,
      state,
      createdAt: createdNsOf(c.Config.Labels),
      startedAt: dockerTimeNs(c.State.StartedAt),
      finishedAt: exited ? dockerTimeNs(c.State.FinishedAt) : 0n,
      exitCode: exited ? c.State.ExitCode : 0,
      image: {
        image: c.Config.Labels?.[L.image] ?? "",
        annotations: {},
        userSpecifiedImage: "",
        runtimeHandler: "",
      },
      imageRef: c.Image,
      reason,
      message: c.State.Error,
      labels: config.labels,
      annotations: config.annotations,
      mounts: config.mounts,
      logPath: c.Config.Labels?.[L.logPath] ?? "",
      ...(config.linux?.resources && { resources: { linux: config.linux.resources } }),
    } as ContainerStatus;
  }

  async status(id: string, verbose: boolean): Promise<WithInfo<ContainerStatus>> {
    let c = await inspectKind(this.o.engine, "container", id);
    if (stateOf(c.State.Status) === ContainerState.CONTAINER_EXITED && this.followers.has(c.Id)) {
      await this.drained(c.Id);
      c = await inspectKind(this.o.engine, "container", c.Id);
    }
    const status = this.toStatus(c);
    const info = verbose
      ? verboseInfo({
          sandboxID: c.Config.Labels?.[L.sandboxId],
          pid: c.State.Pid,
          dockerName: c.Name,
          config: containerConfigOf(c.Config.Labels, c.Id),
        })
      : {};
    return { status, info };
  }

  private toContainer(e: DockerListEntry): Container {
    const config = containerConfigOf(e.Labels, e.Id);
    return {
      id: e.Id,
      podSandboxId: e.Labels?.[L.sandboxId] ?? "",
      metadata: config.metadata,
      image: {
        image: e.Labels?.[L.image] ?? "",
        annotations: {},
        userSpecifiedImage: "",
        runtimeHandler: "",
      },
      imageRef: e.ImageID,
      state: stateOf(e.State),
      createdAt: createdNsOf(e.Labels),
      labels: config.labels,
      annotations: config.annotations,
    };
  }

  async list(f: ContainerFilter | undefined): Promise<Container[]> {
    return (await listKind(this.o.engine, "container"))
      .map((e) => this.toContainer(e))
      .filter(
        (c) =>
          matchesId(f?.id, c.id) &&
          matchesId(f?.podSandboxId, c.podSandboxId) &&
          matchesLabels(f?.labelSelector, c.labels) &&
          (f?.state === undefined || f.state.state === c.state),
      );
  }

  async updateResources(id: string, resources: LinuxContainerResources | undefined): Promise<void> {
    const c = await inspectKind(this.o.engine, "container", id);
    if (!resources) return;
    await this.o.engine.json("POST", `/containers/${c.Id}/update`, { body: dockerResources(resources) });
  }

  async checkpoint(id: string): Promise<void> {
    const c = await inspectKind(this.o.engine, "container", id);
    throw unimplemented(
      `CheckpointContainer of ${c.Id}: not supported by the Docker Engine backend (Docker's checkpoints are experimental and not in CRIU's archive layout); use the native backend`,
    );
  }

  async reopenLog(id: string): Promise<void> {
    const c = await inspectKind(this.o.engine, "container", id);
    if (!c.State.Running) throw failedPrecondition(`container ${c.Id} is not running`);
    const f = this.followers.get(c.Id);
    if (!f) throw failedPrecondition(`container ${c.Id} has no log file`);
    await f.reopen();
  }

  private async running(id: string): Promise<DockerContainer> {
    const c = await inspectKind(this.o.engine, "container", id);
    if (!c.State.Running) throw failedPrecondition(`container ${c.Id} is not running`);
    return c;
  }

  async execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecSyncResult> {
    if (cmd.length === 0) throw invalidArgument("exec command is empty");
    checkArgv("exec command", cmd);
    const c = await this.running(id);
    return stdio.execSync(this.o.engine, c.Id, cmd, timeoutSec);
  }

  async streamTarget(id: string): Promise<{ id: string; stdio: StdioConfig }> {
    const c = await this.running(id);
    return {
      id: c.Id,
      stdio: { tty: c.Config.Tty, stdin: c.Config.OpenStdin, stdinOnce: c.Config.StdinOnce },
    };
  }

  async exec(id: string, cmd: string[], tty: boolean, io: ExecIO): Promise<number> {
    if (cmd.length === 0) throw invalidArgument("exec command is empty");
    checkArgv("exec command", cmd);
    const c = await this.running(id);
    return stdio.exec(this.o.engine, c.Id, cmd, tty, io);
  }

  async attach(id: string, io: ExecIO): Promise<number> {
    const c = await this.running(id);
    return stdio.attach(this.o.engine, c.Id, c.Config.Tty, io);
  }

  async stats(id: string): Promise<ContainerStats> {
    const c = await inspectKind(this.o.engine, "container", id);
    const config = containerConfigOf(c.Config.Labels, c.Id);
    const full = await this.o.engine.json<{ GraphDriver?: { Data?: { UpperDir?: string } } }>(
      "GET",
      `/containers/${c.Id}/json`,
    );
    const upperDir = full.GraphDriver?.Data?.UpperDir ?? "";
    const body = await containerStats({
      id: c.Id,
      pid: c.State.Running ? c.State.Pid : 0,
      upperDir,
      mountpoint: upperDir.replace(/\/[^/]+\/diff$/, ""),
      rates: this.o.rates,
      fsUsage: this.fsUsage,
    });
    return {
      attributes: {
        id: c.Id,
        metadata: config.metadata,
        labels: config.labels,
        annotations: config.annotations,
      },
      ...body,
    };
  }

  async listStats(f: ContainerStatsFilter | undefined): Promise<ContainerStats[]> {
    const list = await this.list({
      id: f?.id ?? "",
      podSandboxId: f?.podSandboxId ?? "",
      labelSelector: f?.labelSelector ?? {},
    });
    return (await Promise.all(list.map((c) => this.stats(c.id).catch(() => undefined)))).filter(
      (s) => s !== undefined,
    );
  }

  /** The engine's container events (create, start, die, destroy) of Berth's containers, for the CRI stream. */
  private async watchEvents(): Promise<void> {
    const filters = JSON.stringify({
      type: ["container"],
      label: [`${L.kind}=container`],
      event: Object.keys(EVENT_TYPES),
    });
    let since = Math.floor(Date.now() / 1000);
    while (!this.closing.signal.aborted) {
      try {
        const res = await this.o.engine.call("GET", "/events", {
          query: { filters, since },
          signal: this.closing.signal,
        });
        // (Re)connected: every container's log catches up with what the engine kept meanwhile.
        await this.resumeFollowers();
        for await (const m of progressMessages(res)) {
          const e = m as unknown as { Action: string; id: string; time: number };
          since = e.time;
          await this.onEngineEvent(e.Action, e.id);
        }
      } catch (err) {
        if (this.closing.signal.aborted) return;
        this.o.logger.debug({ err: (err as Error).message }, "docker event stream broke; reconnecting");
      }
      await new Promise((r) => setTimeout(r, 1000).unref());
    }
  }

  private async onEngineEvent(action: string, id: string): Promise<void> {
    const type = EVENT_TYPES[action];
    if (type === undefined) return;
    let event = this.lastStatus.get(id);
    if (action !== "destroy") {
      const c = await findKind(this.o.engine, "container", id).catch(() => undefined);
      if (c) event = { status: this.toStatus(c), podId: c.Config.Labels?.[L.sandboxId] ?? "" };
    }
    if (!event) return;
    if (action === "destroy") this.lastStatus.delete(id);
    else this.lastStatus.set(id, event);
    const kind =
      action === "create"
        ? "created"
        : action === "start"
          ? "started"
          : action === "die"
            ? "stopped"
            : "deleted";
    this.bus.publish(kind, id, event.podId, event);
  }

  events(): EventStream {
    const sub = this.bus.subscribe();
    return {
      next: async (): Promise<ContainerEventResponse | undefined> => {
        const e = await sub.next();
        if (!e) return undefined;
        const pod = e.podId
          ? await this.o
              .sandboxes()
              .status(e.podId, false)
              .then((s) => s.status)
              .catch(() => undefined)
          : undefined;
        return {
          containerId: e.containerId,
          containerEventType: CRI_EVENT[e.kind],
          createdAt: e.atNs,
          podSandboxStatus: pod,
          containersStatuses: [e.record.status],
        };
      },
      close: (reason) => sub.close(reason),
      get closedReason() {
        return sub.closedReason;
      },
    };
  }
}
