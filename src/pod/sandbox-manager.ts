/**
 * Pod sandboxes: pinned network/IPC/UTS namespaces (no pause process, as CRI-O's pinns),
 * the pod's resolv.conf/hosts/hostname and /dev/shm, and CNI networking.
 * A pod is recorded ("creating") before anything is made, so a crash midway is cleaned up
 * at the next start; it becomes READY only when every piece exists.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { hostname as nodeHostname } from "node:os";
import { join } from "node:path";
import { NamespaceMode, PodSandboxConfig } from "../api/gen/runtime/v1/api.js";
import { KeyedLock } from "../common/concurrency.js";
import { failedPrecondition, invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { epochNowNs } from "../common/time.js";
import { type PhaseObserver, type PhaseSpan, Timeline } from "../metrics/timeline.js";
import { cniPortMappings } from "../network/cni-args.js";
import type { PodNamespacePaths } from "../network/namespaces.js";
import type { HandlerLookup } from "../runtime/oci-runtime.js";
import { RecordStore } from "../store/record-store.js";
import { bandwidthFromAnnotations } from "./bandwidth.js";
import { hostsFile, resolvConf } from "./files.js";
import { nodeHost, type PodHost, type PodNetwork } from "./host.js";
import { type PodInits, sharesPidNamespace } from "./pod-init.js";
import { validatePodConfig } from "./validate.js";

export type PodState = "SANDBOX_READY" | "SANDBOX_NOTREADY";

export interface PodRecord {
  id: string;
  /** Reservation key: name_namespace_uid_attempt (kubelet's uniqueness rule). */
  name: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  state: PodState;
  /** "creating" until RunPodSandbox finished; recovery removes pods left in it. */
  phase: "creating" | "ready";
  createdAtNs: string;
  /** The PodSandboxConfig, protobuf-encoded (base64): it holds 64-bit fields JSON cannot. */
  config: string;
  runtimeHandler: string;
  namespaces: PodNamespacePaths;
  hostNetwork: boolean;
  hostIpc: boolean;
  hostPid: boolean;
  ips: string[];
  /** Volatile per-pod files (resolv.conf, hosts, hostname, shm). */
  dir: string;
  shm?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Start-up phases of RunPodSandbox. */
  timeline?: PhaseSpan[];
  /**
   * The pod has an init, a root container with the pod's id: PID 1 of its shared pid namespace,
   * or (sandbox runtimes) the container that starts the pod's sandbox. Set before the init is
   * started, so a teardown after any failure removes it.
   */
  init?: boolean;
  /**
   * Set by StopPodSandbox once the network, namespaces and shm are gone, so RemovePodSandbox
   * skips a second CNI DEL. Written after the teardown: a crash in between only repeats it.
   */
  released?: boolean;
}

export interface SandboxManagerOptions {
  root: string;
  state: string;
  logger: Logger;
  cni: PodNetwork;
  /** Namespaces and mounts on the host; default the real one. */
  host?: PodHost;
  handlers: HandlerLookup;
  inits: PodInits;
  /** Size of each pod's /dev/shm tmpfs. */
  shmSizeBytes?: number;
  observePhase?: PhaseObserver;
}

export function decodePodConfig(pod: PodRecord): PodSandboxConfig {
  return PodSandboxConfig.decode(Buffer.from(pod.config, "base64"));
}

export class SandboxManager {
  readonly store: RecordStore<PodRecord>;
  private readonly nsDir: string;

  private readonly host: PodHost;
  private readonly podLock = new KeyedLock();

  constructor(private readonly opts: SandboxManagerOptions) {
    this.store = new RecordStore<PodRecord>(join(opts.root, "pods"), "pod sandbox");
    this.nsDir = join(opts.state, "ns");
    this.host = opts.host ?? nodeHost;
  }

  async init(): Promise<void> {
    await this.store.init();
    for (const pod of this.store.list()) {
      // After a reboot the pinned namespaces are gone: such a pod is not ready any more.
      if (
        pod.phase === "ready" &&
        pod.state === "SANDBOX_READY" &&
        ((pod.namespaces.net && !(await this.host.isPinned(pod.namespaces.net))) ||
          (pod.init && !(await this.opts.inits.running(pod).catch(() => false))))
      ) {
        await this.store.update(pod.id, (p) => ({ ...p, state: "SANDBOX_NOTREADY" }));
      }
      if (pod.phase === "creating") {
        this.opts.logger.warn({ podSandboxId: pod.id }, "removing a pod whose creation was interrupted");
        await this.teardown(pod).catch((err: unknown) =>
          this.opts.logger.error({ err }, "pod cleanup failed"),
        );
        await this.store.delete(pod.id);
      }
    }
    await this.sweepOrphans();
  }

  /**
   * Removes pod files and pinned namespaces that no pod record owns: what a crash between
   * making them and recording them left (a record is written first, so this is rare).
   */
  private async sweepOrphans(): Promise<void> {
    const owned = (id: string) => this.store.get(id) !== undefined;
    const podsDir = join(this.opts.state, "pods");
    for (const id of await readdir(podsDir).catch(() => [] as string[])) {
      if (owned(id)) continue;
      this.opts.logger.warn({ podSandboxId: id }, "removing the files of a pod that has no record");
      await this.host.unmount(join(podsDir, id, "shm")).catch(() => {});
      await rm(join(podsDir, id), { recursive: true, force: true }).catch(() => {});
    }
    for (const kind of ["net", "ipc", "uts"]) {
      const dir = join(this.nsDir, kind);
      for (const id of await readdir(dir).catch(() => [] as string[])) {
        if (owned(id)) continue;
        this.opts.logger.warn({ podSandboxId: id, kind }, "removing a pinned namespace that no pod owns");
        await this.host
          .removeNamespaces([join(dir, id)])
          .catch((err: unknown) =>
            this.opts.logger.error({ err, podSandboxId: id }, "cannot remove an orphan namespace pin"),
          );
      }
    }
  }

  async run(config: PodSandboxConfig, runtimeHandler: string): Promise<PodRecord> {
    validatePodConfig(config); // everything that can be refused is refused before anything is made
    const md = config.metadata!;
    const handler = runtimeHandler || this.opts.handlers.defaultHandler;
    const bandwidth = bandwidthFromAnnotations(config.annotations); // bad quantities fail up front
    const runtime = this.opts.handlers.get(handler); // unknown handler: a clear error before anything is made
    if (runtime.sandboxed && config.linux?.securityContext?.namespaceOptions?.pid === NamespaceMode.NODE) {
      throw invalidArgument(
        `runtime handler "${handler}" (a sandbox runtime, gVisor) cannot run a pod in the host's PID namespace`,
      );
    }
    const id = randomBytes(32).toString("hex");
    const name = `${md.name}_${md.namespace}_${md.uid}_${md.attempt}`;
    this.store.reserveName(name, id);
    const nsOpts = config.linux?.securityContext?.namespaceOptions;
    const hostNetwork = nsOpts?.network === NamespaceMode.NODE;
    const hostIpc = nsOpts?.ipc === NamespaceMode.NODE;
    const hostPid = nsOpts?.pid === NamespaceMode.NODE;
    let pod: PodRecord = {
      id,
      name,
      metadata: { name: md.name, uid: md.uid, namespace: md.namespace, attempt: md.attempt },
      state: "SANDBOX_NOTREADY",
      phase: "creating",
      createdAtNs: epochNowNs().toString(),
      config: Buffer.from(PodSandboxConfig.encode(config).finish()).toString("base64"),
      runtimeHandler: handler,
      namespaces: {},
      hostNetwork,
      hostIpc,
      hostPid,
      ips: [],
      dir: join(this.opts.state, "pods", id),
      labels: config.labels,
      annotations: config.annotations,
    };
    const tl = new Timeline("pod", this.opts.observePhase);
    try {
      pod = await this.store.put(pod);
      // As containerd and CRI-O: a pod that names no hostname gets the node's (kubelet always sends one).
      const hostname = config.hostname || nodeHostname();
      await tl.phase("files", async () => {
        await mkdir(pod.dir, { recursive: true, mode: 0o755 });
        await writeFile(join(pod.dir, "resolv.conf"), await resolvConf(config.dnsConfig), { mode: 0o644 });
        await writeFile(join(pod.dir, "hostname"), `${hostname}\n`, { mode: 0o644 });
        if (!hostIpc) pod = await this.store.update(id, (p) => ({ ...p, shm: join(p.dir, "shm") }));
        if (pod.shm) {
          await mkdir(pod.shm, { mode: 0o1777 });
          const size = this.opts.shmSizeBytes ?? 64 * 1024 * 1024;
          await this.host.mountShm(pod.shm, size);
        }
      });
      const namespaces = await tl.phase("namespaces", () =>
        this.host.createNamespaces({
          dir: this.nsDir,
          id,
          net: !hostNetwork,
          ipc: !hostIpc,
          uts: !hostNetwork,
          hostname,
          sysctls: config.linux?.sysctls ?? {},
        }),
      );
      // A sandbox runtime's pods always have one: it starts the sandbox the containers join.
      const init = (sharesPidNamespace(config) && !hostPid) || runtime.sandboxed === true;
      pod = await this.store.update(id, (p) => ({ ...p, namespaces, ...(init && { init }) }));
      // The init and the network are independent: both start at once, and both are waited for
      // before a failure of either is reported (the teardown must not race a running step).
      // A sandbox runtime's init comes after the network: runsc's own network stack
      // (--network=sandbox) takes the interfaces the netns has when the sandbox starts.
      const startInit = () =>
        init ? tl.phase("init", () => this.opts.inits.start(pod, config, hostname)) : Promise.resolve();
      let ips: string[] = [];
      const network = async () => {
        if (hostNetwork || !namespaces.net) return;
        const net = namespaces.net;
        const res = await tl.phase("cni_add", () =>
          this.opts.cni.setUpPod({
            ...this.identity(pod),
            netns: net,
            portMappings: cniPortMappings(config.portMappings),
            ...(bandwidth ? { bandwidth } : {}),
          }),
        );
        ips = res.ips;
      };
      if (runtime.sandboxed) {
        await network();
        await startInit();
      } else {
        const [initDone, networkDone] = await Promise.allSettled([startInit(), network()]);
        if (initDone.status === "rejected") throw initDone.reason;
        if (networkDone.status === "rejected") throw networkDone.reason;
      }
      await writeFile(join(pod.dir, "hosts"), hostsFile(hostname, ips), { mode: 0o644 });
      pod = await this.store.update(id, (p) => ({
        ...p,
        ips,
        state: "SANDBOX_READY",
        phase: "ready",
        timeline: tl.spans,
      }));
      return pod;
    } catch (err) {
      await this.teardown(pod).catch((e: unknown) =>
        this.opts.logger.error({ err: e, podSandboxId: id }, "pod cleanup failed"),
      );
      await rm(pod.dir, { recursive: true, force: true }).catch(() => {});
      await this.store.delete(id).catch(() => {});
      this.store.releaseName(name, id);
      throw err;
    }
  }

  private identity(pod: PodRecord) {
    return {
      podId: pod.id,
      name: pod.metadata.name,
      namespace: pod.metadata.namespace,
      uid: pod.metadata.uid,
    };
  }

  /**
   * Releases the pod's init, network, namespaces and shm. Idempotent; the record stays. Each
   * step runs whatever the others did (a failed CNI DEL must not leave the pins mounted); the
   * first failure is reported once all have run.
   */
  async teardown(pod: PodRecord): Promise<void> {
    const steps: Array<() => Promise<unknown>> = [];
    if (pod.init) steps.push(() => this.opts.inits.remove(pod));
    const net = pod.namespaces.net;
    if (!pod.hostNetwork && net) {
      steps.push(() => this.opts.cni.tearDownPod({ ...this.identity(pod), netns: net }));
    }
    steps.push(() => this.host.removeNamespaces(pod.namespaces));
    const shm = pod.shm;
    if (shm) steps.push(() => this.host.unmount(shm));
    const failures: unknown[] = [];
    for (const step of steps) await step().catch((err: unknown) => failures.push(err));
    if (failures.length > 0) throw failures[0];
  }

  /** StopPodSandbox after the containers are stopped: network and namespaces go; idempotent. */
  async stop(id: string): Promise<void> {
    const pod = this.store.get(id);
    if (!pod) return;
    if (!pod.released) await this.teardown(pod);
    if (pod.state !== "SANDBOX_NOTREADY" || !pod.released)
      await this.store.update(id, (p) => ({ ...p, state: "SANDBOX_NOTREADY", released: true }));
  }

  async remove(id: string): Promise<void> {
    const pod = this.store.get(id);
    if (!pod) return;
    if (!pod.released) await this.teardown(pod);
    await rm(pod.dir, { recursive: true, force: true });
    await this.store.delete(id);
  }

  /**
   * The verbose PodSandboxStatus info, shaped as containerd's (pid and processStatus of the
   * pod's init, netNamespaceClosed, runtimeType/Options, config, runtimeSpec of the init, CNI
   * result) plus Berth's pinned namespace paths, pod directory and start-up timeline.
   */
  async verboseInfo(pod: PodRecord): Promise<Record<string, unknown>> {
    const rt = this.opts.handlers.get(pod.runtimeHandler);
    const init = pod.init ? await rt.state(pod.id).catch(() => undefined) : undefined;
    const initSpec = pod.init ? await this.opts.inits.runtimeSpec(pod) : undefined;
    const cni = await this.opts.cni.cachedAttachment(pod.id).catch(() => null);
    return {
      pid: init?.pid ?? 0,
      processStatus: pod.init ? (init?.status ?? "deleted") : "",
      netNamespaceClosed: pod.hostNetwork
        ? false
        : !(pod.namespaces.net && (await this.host.isPinned(pod.namespaces.net))),
      runtimeHandler: pod.runtimeHandler,
      ...rt.description,
      config: decodePodConfig(pod),
      ...(initSpec !== undefined && { runtimeSpec: initSpec }),
      cniResult: cni?.result ?? null,
      namespaces: pod.namespaces,
      ips: pod.ips,
      dir: pod.dir,
      shm: pod.shm,
      timeline: pod.timeline ?? [],
    };
  }

  /**
   * Runs `task` with the pod to itself: CreateContainer in the pod and StopPodSandbox /
   * RemovePodSandbox of it take turns, so a pod is never torn down under a container that is
   * being made in it (which would leave the container half-made, or the pod's removal failing).
   */
  exclusive<T>(podId: string, task: () => Promise<T>): Promise<T> {
    return this.podLock.run(podId, task);
  }

  /** The pod's shared pid namespace (its init's), or undefined when the pod has none. */
  async pidNamespace(pod: PodRecord): Promise<string | undefined> {
    const shared = pod.init && !pod.hostPid && sharesPidNamespace(decodePodConfig(pod));
    return shared ? this.opts.inits.pidNamespace(pod) : undefined;
  }

  /** Whether the pod runs under a sandbox runtime (gVisor): its containers share one sandbox. */
  sandboxed(pod: Pick<PodRecord, "runtimeHandler">): boolean {
    return this.opts.handlers.get(pod.runtimeHandler).sandboxed === true;
  }

  requireReady(id: string): PodRecord {
    const pod = this.store.resolve(id);
    if (pod.state !== "SANDBOX_READY") {
      throw failedPrecondition(`pod sandbox ${pod.id} is not ready`);
    }
    return pod;
  }
}
