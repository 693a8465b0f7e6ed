/**
 * Finds containers through the CRI: ListContainers and ListPodSandbox on every poll, plus a
 * verbose ContainerStatus for each container first seen or whose state changed (labels, log
 * path, env from the verbose `config`/`runtimeSpec`, mounts, rootfs). GetContainerEvents,
 * where the runtime has it, makes the next poll happen at once. Subscribers get the whole set
 * after each poll; a container missing from it has been removed from the runtime.
 */
import { stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import type { ClientReadableStream } from "@grpc/grpc-js";
import type { CriClient } from "../api/client.js";
import {
  type Container,
  ContainerState,
  GetEventsRequest,
  type PodSandbox,
} from "../api/gen/runtime/v1/api.js";
import type { Logger } from "../common/logger.js";
import type { ContainerInfo } from "./container-info.js";
import { onHost, upperDirOfPid } from "./host-root.js";
import { type ContainerSet, type ContainerSource, PollingSource } from "./polling-source.js";

export type { ContainerSet, ContainerSource };

/** Where the containers come from (CRI here; a Docker source would give the same). */

const STATES: Record<number, ContainerInfo["state"]> = {
  [ContainerState.CONTAINER_CREATED]: "created",
  [ContainerState.CONTAINER_RUNNING]: "running",
  [ContainerState.CONTAINER_EXITED]: "exited",
};

interface VerboseInfo {
  config?: { envs?: Array<{ key?: string; value?: string }> };
  runtimeSpec?: { process?: { env?: string[] }; root?: { path?: string } };
  rootfs?: string;
  bundle?: string;
  pid?: number;
}

function placeholder(c: Container): ContainerInfo {
  return {
    id: c.id,
    name: c.metadata?.name ?? "",
    podName: "",
    namespace: "",
    podUid: "",
    podSandboxId: c.podSandboxId,
    image: c.image?.image ?? "",
    labels: c.labels,
    k8sLabels: {},
    env: {},
    logPath: "",
    state: "unknown",
    rootfs: "",
    mounts: [],
  };
}

export class CriDiscovery extends PollingSource {
  private events: ClientReadableStream<unknown> | undefined;

  constructor(
    private readonly client: CriClient,
    log: Logger,
    pollMs = 1000,
    /** The host's root as mounted in the collector (see host-root.ts); "" on the host. */
    private readonly hostRoot = "",
  ) {
    super(log, pollMs, "listing containers failed");
  }

  override async start(): Promise<void> {
    await super.start();
    this.watchEvents();
  }

  override stop(): void {
    super.stop();
    this.events?.cancel();
  }

  private watchEvents(): void {
    if (this.stopped) return;
    let stream: ClientReadableStream<unknown>;
    try {
      stream = this.client.runtime.getContainerEvents(GetEventsRequest.fromPartial({}));
    } catch {
      return;
    }
    this.events = stream;
    stream.on("data", () => void this.poll());
    stream.on("error", () => {});
    stream.on("close", () => {
      if (!this.stopped) setTimeout(() => this.watchEvents(), 5000).unref();
    });
  }

  protected async list(): Promise<Map<string, ContainerInfo>> {
    const [list, pods] = await Promise.all([
      this.client.call("listContainers", {}, 30_000),
      this.client.call("listPodSandbox", {}, 30_000),
    ]);
    const podById = new Map(pods.items.map((p) => [p.id, p]));
    const next = new Map<string, ContainerInfo>();
    for (const c of list.containers) {
      const state = STATES[c.state] ?? "unknown";
      const known = this.containers.get(c.id);
      if (known && known.state === state) {
        next.set(c.id, known);
        continue;
      }
      const info = await this.inspect(c, state, podById.get(c.podSandboxId)).catch((err: Error) => {
        this.log.debug({ container: c.id, err: err.message }, "ContainerStatus failed; retried next poll");
        // Still listed, so not removed: keep what we knew, or a placeholder ("unknown" is
        // collected by nobody), and ask again on the next poll.
        return known ? { ...known, state: "unknown" as const } : placeholder(c);
      });
      next.set(c.id, info);
    }
    return next;
  }

  /**
   * The container's writable layer as a host path: Berth's bundle `upper`, else the upper dir
   * of the overlay at `/` in its init process's mountinfo (containerd, CRI-O), else the
   * rootfs the runtime names (an absolute path only: containerd's spec says `rootfs`).
   */
  private async writableLayer(verbose: VerboseInfo): Promise<string> {
    const upper = verbose.bundle ? join(verbose.bundle, "upper") : "";
    if (upper && (await stat(onHost(this.hostRoot, upper)).catch(() => undefined))?.isDirectory())
      return upper;
    const fromProc = await upperDirOfPid(this.hostRoot, verbose.pid ?? 0);
    if (fromProc) return fromProc;
    const named = verbose.rootfs ?? verbose.runtimeSpec?.root?.path ?? "";
    return isAbsolute(named) ? named : "";
  }

  private async inspect(
    c: Container,
    state: ContainerInfo["state"],
    pod: PodSandbox | undefined,
  ): Promise<ContainerInfo> {
    const st = await this.client.call("containerStatus", { containerId: c.id, verbose: true }, 30_000);
    let verbose: VerboseInfo = {};
    try {
      verbose = JSON.parse(st.info["info"] ?? "{}") as VerboseInfo;
    } catch {}
    const env: Record<string, string> = {};
    for (const e of verbose.runtimeSpec?.process?.env ?? []) {
      const i = e.indexOf("=");
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
    }
    for (const e of verbose.config?.envs ?? []) if (e.key) env[e.key] = e.value ?? "";
    const labels = { ...c.labels, ...st.status?.labels };
    return {
      id: c.id,
      name: labels["io.kubernetes.container.name"] ?? c.metadata?.name ?? "",
      podName: labels["io.kubernetes.pod.name"] ?? pod?.metadata?.name ?? "",
      namespace: labels["io.kubernetes.pod.namespace"] ?? pod?.metadata?.namespace ?? "",
      podUid: labels["io.kubernetes.pod.uid"] ?? pod?.metadata?.uid ?? "",
      podSandboxId: c.podSandboxId,
      image: st.status?.image?.image || c.image?.image || c.imageRef,
      labels,
      k8sLabels: pod?.labels ?? {},
      env,
      logPath: st.status?.logPath ?? "",
      state,
      rootfs: await this.writableLayer(verbose),
      mounts: (st.status?.mounts ?? []).map((m) => ({ destination: m.containerPath, source: m.hostPath })),
    };
  }
}
