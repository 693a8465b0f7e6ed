/**
 * The Docker backend's pod sandboxes: a pause container per pod (network "none", shareable
 * IPC) whose network namespace gets the pod network through CNI, exactly as the native backend
 * (and cri-dockerd) do; host-network pods use the node's. The pod's config lives in the pause
 * container's labels, its network result in the CNI cache: nothing else to lose.
 */
import {
  NamespaceMode,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  PodSandboxState,
  type PodSandboxStats,
  type PodSandboxStatsFilter,
  type PodSandboxStatus,
} from "../../api/gen/runtime/v1/api.js";
import { failedPrecondition, isBerthError, notFound, unavailable } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { epochNowNs } from "../../common/time.js";
import type { DockerEngine } from "../../docker/engine.js";
import { BUILTIN_PAUSE_IMAGE, pauseImageArchive } from "../../docker/pause-image.js";
import type { CniClient } from "../../network/cni.js";
import { cniPortMappings } from "../../network/cni-args.js";
import { parseCniResult, podIPs } from "../../network/cni-result.js";
import { bandwidthFromAnnotations } from "../../pod/bandwidth.js";
import { validatePodConfig } from "../../pod/validate.js";
import { podStats } from "../../stats/collect.js";
import type { CpuRateCache } from "../../stats/cpu-rate.js";
import { forwardInNetns, forwardOnHost } from "../../streaming/portforward.js";
import type {
  ContainerBackend,
  NetworkStatus,
  PortForwardStream,
  SandboxBackend,
  WithInfo,
} from "../backend.js";
import { matchesId, matchesLabels } from "../filters.js";
import { verboseInfo } from "../verbose-info.js";
import { privilegeFields } from "./create-body.js";
import { createdNsOf, dockerName, encodePodConfig, L, podConfigOf } from "./labels.js";
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

export interface DockerSandboxOptions {
  engine: DockerEngine;
  cni: CniClient;
  logger: Logger;
  /** Image of the sandbox container; "" = Berth's own, built and loaded on first use. */
  pauseImage: string;
  rates: CpuRateCache;
  /** Stops and removes a pod's app containers (the container backend owns their logs). */
  containers: () => ContainerBackend & { inPod(podId: string): Promise<string[]> };
}

const isHostNetwork = (c: PodSandboxConfig) =>
  c.linux?.securityContext?.namespaceOptions?.network === NamespaceMode.NODE;

export class DockerSandboxBackend implements SandboxBackend {
  private pauseReady: Promise<string> | undefined;

  constructor(private readonly o: DockerSandboxOptions) {}

  /** The pause image's name, loaded into the engine if it is not there. */
  private pauseImage(): Promise<string> {
    this.pauseReady ??= (async () => {
      const name = this.o.pauseImage || BUILTIN_PAUSE_IMAGE;
      try {
        await this.o.engine.json("GET", `/images/${name}/json`);
        return name;
      } catch (err) {
        if (!isBerthError(err, "NotFound")) throw err;
      }
      if (this.o.pauseImage) {
        const res = await this.o.engine.call("POST", "/images/create", { query: { fromImage: name } });
        for await (const _ of res);
      } else {
        const res = await this.o.engine.call("POST", "/images/load", { raw: await pauseImageArchive(name) });
        for await (const _ of res);
      }
      await this.o.engine.json("GET", `/images/${name}/json`);
      return name;
    })().catch((err: unknown) => {
      this.pauseReady = undefined;
      throw err;
    });
    return this.pauseReady;
  }

  async run(config: PodSandboxConfig, runtimeHandler: string): Promise<string> {
    validatePodConfig(config);
    const bandwidth = bandwidthFromAnnotations(config.annotations);
    if (runtimeHandler !== "" && runtimeHandler !== "runc")
      throw notFound(
        `runtime handler "${runtimeHandler}" is not known to the Docker backend (it has "runc" only)`,
      );
    const image = await this.pauseImage();
    const md = config.metadata;
    const hostNetwork = isHostNetwork(config);
    const ns = config.linux?.securityContext?.namespaceOptions;
    const dns = config.dnsConfig;
    const priv = await privilegeFields(config.linux?.securityContext?.privileged === true, undefined);
    const { engine } = this.o;
    const id = await createContainer(engine, dockerName("POD", md, md?.attempt ?? 0), {
      Image: image,
      Hostname: hostNetwork ? "" : config.hostname,
      Labels: {
        ...config.labels,
        [L.kind]: "sandbox",
        [L.config]: encodePodConfig(config),
        [L.createdNs]: epochNowNs().toString(),
        [L.runtimeHandler]: runtimeHandler,
      },
      HostConfig: {
        NetworkMode: hostNetwork ? "host" : "none",
        IpcMode: ns?.ipc === NamespaceMode.NODE ? "host" : "shareable",
        PidMode: ns?.pid === NamespaceMode.NODE ? "host" : "",
        ...(hostNetwork && { UTSMode: "host" }),
        ...(dns && {
          Dns: dns.servers,
          DnsSearch: dns.searches,
          DnsOptions: dns.options,
        }),
        Sysctls: config.linux?.sysctls ?? {},
        CgroupParent: config.linux?.cgroupParent ?? "",
        ...priv.hostConfig,
        SecurityOpt: [...priv.securityOpt, "no-new-privileges"],
        RestartPolicy: { Name: "no" },
      },
    });
    try {
      await engine.json("POST", `/containers/${id}/start`);
      if (!hostNetwork) {
        const c = await inspectKind(engine, "sandbox", id);
        await this.o.cni.setUpPod({
          ...identity(id, config),
          netns: `/proc/${c.State.Pid}/ns/net`,
          portMappings: cniPortMappings(config.portMappings),
          ...(bandwidth ? { bandwidth } : {}),
        });
      }
    } catch (err) {
      await removeContainer(engine, id).catch(() => {});
      throw err;
    }
    return id;
  }

  async stop(id: string): Promise<void> {
    const c = await findKind(this.o.engine, "sandbox", id);
    if (!c) return;
    const containers = this.o.containers();
    for (const cid of await containers.inPod(c.Id)) await containers.stop(cid, 0);
    const config = podConfigOf(c.Config.Labels, c.Id);
    if (!isHostNetwork(config)) {
      // A stopped sandbox has no netns left: the plugins then only release what they hold.
      const netns = `/proc/${c.State.Running ? c.State.Pid : 0}/ns/net`;
      await this.o.cni.tearDownPod({ ...identity(c.Id, config), netns });
    }
    await stopContainer(this.o.engine, c.Id, 10);
  }

  async remove(id: string): Promise<void> {
    const c = await findKind(this.o.engine, "sandbox", id);
    if (!c) return;
    await this.stop(c.Id);
    const containers = this.o.containers();
    for (const cid of await containers.inPod(c.Id)) await containers.remove(cid);
    await removeContainer(this.o.engine, c.Id);
  }

  private async ips(c: DockerContainer, config: PodSandboxConfig): Promise<string[]> {
    if (isHostNetwork(config) || !c.State.Running) return [];
    const cached = await this.o.cni.cachedAttachment(c.Id).catch(() => null);
    return cached ? podIPs(parseCniResult(cached.result, "cached CNI result"), cached.ifName) : [];
  }

  async status(id: string, verbose: boolean): Promise<WithInfo<PodSandboxStatus>> {
    const c = await inspectKind(this.o.engine, "sandbox", id);
    const config = podConfigOf(c.Config.Labels, c.Id);
    const ips = await this.ips(c, config);
    const ns = config.linux?.securityContext?.namespaceOptions;
    const status: PodSandboxStatus = {
      id: c.Id,
      metadata: config.metadata,
      state: c.State.Running ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY,
      createdAt: createdNsOf(c.Config.Labels),
      network: { ip: ips[0] ?? "", additionalIps: ips.slice(1).map((ip) => ({ ip })) },
      linux: {
        namespaces: {
          options: {
            network: isHostNetwork(config) ? NamespaceMode.NODE : NamespaceMode.POD,
            pid: ns?.pid ?? NamespaceMode.CONTAINER,
            ipc: ns?.ipc === NamespaceMode.NODE ? NamespaceMode.NODE : NamespaceMode.POD,
            targetId: "",
          },
        },
      },
      labels: config.labels,
      annotations: config.annotations,
      runtimeHandler: c.Config.Labels?.[L.runtimeHandler] ?? "",
    } as PodSandboxStatus;
    const info = verbose ? verboseInfo({ pid: c.State.Pid, image: c.Image, dockerName: c.Name, config }) : {};
    return { status, info };
  }

  private toPodSandbox(e: DockerListEntry): PodSandbox {
    const config = podConfigOf(e.Labels, e.Id);
    return {
      id: e.Id,
      metadata: config.metadata,
      state: e.State === "running" ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY,
      createdAt: createdNsOf(e.Labels),
      labels: config.labels,
      annotations: config.annotations,
      runtimeHandler: e.Labels?.[L.runtimeHandler] ?? "",
    };
  }

  async list(f: PodSandboxFilter | undefined): Promise<PodSandbox[]> {
    return (await listKind(this.o.engine, "sandbox"))
      .map((e) => this.toPodSandbox(e))
      .filter(
        (p) =>
          matchesId(f?.id, p.id) &&
          matchesLabels(f?.labelSelector, p.labels) &&
          (f?.state === undefined || f.state.state === p.state),
      );
  }

  async stats(id: string): Promise<PodSandboxStats> {
    const c = await inspectKind(this.o.engine, "sandbox", id);
    if (!c.State.Running) throw unavailable(`pod sandbox ${c.Id} is not ready`);
    const config = podConfigOf(c.Config.Labels, c.Id);
    const containers = this.o.containers();
    const ids = await containers.inPod(c.Id);
    const stats = await Promise.all(ids.map((cid) => containers.stats(cid).catch(() => undefined)));
    const body = await podStats({
      podId: c.Id,
      pids: [c.State.Pid],
      ...(config.linux?.cgroupParent ? { cgroupParent: config.linux.cgroupParent } : {}),
      netnsPath: `/proc/${c.State.Pid}/ns/net`,
      hostNetwork: isHostNetwork(config),
      rates: this.o.rates,
    });
    return {
      attributes: {
        id: c.Id,
        metadata: config.metadata,
        labels: config.labels,
        annotations: config.annotations,
      },
      linux: { ...body, containers: stats.filter((s) => s !== undefined) },
    };
  }

  async listStats(f: PodSandboxStatsFilter | undefined): Promise<PodSandboxStats[]> {
    const pods = await this.list({ id: f?.id ?? "", labelSelector: f?.labelSelector ?? {} });
    const ready = pods.filter((p) => p.state === PodSandboxState.SANDBOX_READY);
    return (await Promise.all(ready.map((p) => this.stats(p.id).catch(() => undefined)))).filter(
      (s) => s !== undefined,
    );
  }

  async portForwardTarget(id: string): Promise<string> {
    const c = await inspectKind(this.o.engine, "sandbox", id);
    if (!c.State.Running) throw failedPrecondition(`pod sandbox ${c.Id} is not ready`);
    return c.Id;
  }

  async portForward(podId: string, conn: PortForwardStream): Promise<void> {
    const c = await inspectKind(this.o.engine, "sandbox", podId);
    if (isHostNetwork(podConfigOf(c.Config.Labels, c.Id))) return forwardOnHost(conn);
    return forwardInNetns({ ...conn, netnsPath: `/proc/${c.State.Pid}/ns/net` });
  }

  async networkStatus(): Promise<NetworkStatus> {
    const net = await this.o.cni.networkStatus();
    return {
      ready: net.ready,
      ...(net.reason !== undefined && { reason: net.reason }),
      ...(net.message !== undefined && { message: net.message }),
      info: { network: net.networkName ?? null, source: net.source ?? null },
    };
  }
}

function identity(podId: string, config: PodSandboxConfig) {
  return {
    podId,
    name: config.metadata?.name ?? "",
    namespace: config.metadata?.namespace ?? "",
    uid: config.metadata?.uid ?? "",
  };
}
