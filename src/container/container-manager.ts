/**
 * Containers: a bundle (overlay rootfs over the image's snapshots + config.json built from the
 * CRI request and the image config) run by the pod's OCI runtime under conmon. Records are
 * persisted at each step; a container left "creating" by a crash is removed at start-up, and
 * state of the others is re-read from the runtime and conmon's exit files.
 */
import { randomBytes } from "node:crypto";
import { access, copyFile, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ContainerConfig, type LinuxContainerResources, NamespaceMode } from "../api/gen/runtime/v1/api.js";
import { SingleFlight } from "../common/concurrency.js";
import { errnoCode, failedPrecondition, invalidArgument, notFound } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { dateToNs, epochNowNs } from "../common/time.js";
import type { EventBus } from "../events/bus.js";
import type { ImageManager } from "../image/image-manager.js";
import type { ImageConfig } from "../image/registry/oci.js";
import { type PhaseObserver, type PhaseSpan, Timeline } from "../metrics/timeline.js";
import { decodePodConfig, type PodRecord, type SandboxManager } from "../pod/sandbox-manager.js";
import { type HandlerLookup, type OciRuntime, observeExit } from "../runtime/oci-runtime.js";
import type { ExecSyncResult, OciProcess } from "../runtime/runc-exec.js";
import { readBundleSpec, writeBundleSpec } from "../runtime-spec/bundle.js";
import { buildResources } from "../runtime-spec/resources.js";
import { buildContainerSpec } from "../runtime-spec/spec.js";
import { RecordStore } from "../store/record-store.js";
import type { ExecIO } from "../streaming/remotecommand.js";
import {
  applyRootfsDiff,
  CHECKPOINT_DIR,
  CONTAINER_LOG,
  checkLocation,
  isCheckpointArchive,
  type OpenedCheckpoint,
  openArchive,
  writeArchive,
  writeFrozenParts,
} from "./checkpoint-archive.js";
import {
  allHostDevices,
  boundingCapabilities,
  ensureMountSources,
  resolveDevices,
} from "./host-resources.js";
import { restoreConfig } from "./restore-config.js";
import { mountRootfs, removeRootfs, rootfsPaths } from "./rootfs.js";
import { rootfsReader } from "./rootfs-reader.js";
import { checkArgv, confineLogPath, validateContainerConfig } from "./validate.js";

export type ContainerState =
  | "CONTAINER_CREATED"
  | "CONTAINER_RUNNING"
  | "CONTAINER_EXITED"
  | "CONTAINER_UNKNOWN";

export interface ContainerRecord {
  id: string;
  /** Reservation key: name_podName_podNamespace_podUid_attempt (kubelet's uniqueness rule). */
  name: string;
  podId: string;
  metadata: { name: string; attempt: number };
  /** The image as asked for, and the image id it resolved to. */
  image: string;
  imageId: string;
  imageRepoTag: string;
  /** ContainerConfig, protobuf-encoded (base64). */
  config: string;
  state: ContainerState;
  phase: "creating" | "created";
  createdAtNs: string;
  startedAtNs: string;
  finishedAtNs: string;
  exitCode: number;
  reason: string;
  message: string;
  logPath: string;
  /** Bundle: config.json, rootfs (overlay mount), upper, work. */
  dir: string;
  runtimeHandler: string;
  stopSignal: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Start-up phases of CreateContainer and StartContainer. */
  timeline?: PhaseSpan[];
  /** CRIU images StartContainer restores the processes from (a container created from a checkpoint). */
  restoreFrom?: string;
}

export interface ContainerManagerOptions {
  root: string;
  /** RuntimeDefault seccomp when a request names no profile (config runtime.seccomp_use_default_when_empty). */
  seccompUseDefaultWhenEmpty?: boolean;
  logger: Logger;
  images: ContainerImages;
  pods: SandboxManager;
  handlers: HandlerLookup;
  /** Mounts and removes container root filesystems; default overlayfs (root). */
  rootfs?: RootfsMounter;
  /** berthd's own oom_score_adj (requests below it are clamped). */
  oomScoreAdjMin: number;
  /** Where lifecycle events go (GetContainerEvents). */
  events?: EventBus<ContainerRecord>;
  observePhase?: PhaseObserver;
}

/** What the container manager uses of the image store. */
export type ContainerImages = Pick<ImageManager, "find" | "readConfig"> & {
  snapshots: Pick<ImageManager["snapshots"], "fsPath">;
};

export interface RootfsMounter {
  mount(lowers: string[], dir: string): Promise<{ rootfs: string }>;
  remove(dir: string): Promise<void>;
}

/** Capabilities newer than gVisor 20221219's kernel (Linux 5.8+): runsc refuses them. */
const SANDBOX_UNKNOWN_CAPABILITIES = new Set(["CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]);

const overlayRootfs: RootfsMounter = { mount: mountRootfs, remove: removeRootfs };

export function decodeContainerConfig(c: ContainerRecord): ContainerConfig {
  return ContainerConfig.decode(Buffer.from(c.config, "base64"));
}

/**
 * An exit time never before the start: the exit file's mtime has millisecond (or coarser)
 * precision, the start time is taken after `runc start` returns, so a short-lived container
 * could otherwise finish a few ms before it started.
 */
const finishedNs = (finished: bigint, startedNs: string) =>
  finished < BigInt(startedNs) ? startedNs : finished.toString();
const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** conmon drops an `oom` file in its working directory (the bundle) when the cgroup OOM-killed. */
async function exitReason(c: ContainerRecord, exitCode: number, killedByUs = false): Promise<string> {
  // conmon may write the exit file a moment before it handles the cgroup's OOM event: for a
  // SIGKILL exit we did not send, give the oom file a little time to appear.
  const tries = exitCode === 137 && !killedByUs ? 25 : 1;
  for (let i = 0; i < tries; i++) {
    if (await exists(join(c.dir, "oom"))) return "OOMKilled";
    if (i + 1 < tries) await new Promise((r) => setTimeout(r, 20));
  }
  return exitCode === 0 ? "Completed" : "Error";
}

export class ContainerManager {
  readonly store: RecordStore<ContainerRecord>;

  private readonly rootfs: RootfsMounter;

  constructor(private readonly opts: ContainerManagerOptions) {
    this.store = new RecordStore<ContainerRecord>(join(opts.root, "containers-meta"), "container");
    this.rootfs = opts.rootfs ?? overlayRootfs;
  }

  /** Updates a record and publishes the lifecycle event its new state stands for. */
  private async transition(
    id: string,
    kind: "created" | "started" | "stopped",
    change: (c: ContainerRecord) => ContainerRecord,
  ): Promise<ContainerRecord> {
    const next = await this.store.update(id, change);
    this.opts.events?.publish(kind, next.id, next.podId, next);
    return next;
  }

  private runtime(c: Pick<ContainerRecord, "runtimeHandler">): OciRuntime {
    return this.opts.handlers.get(c.runtimeHandler);
  }

  async init(): Promise<void> {
    await this.store.init();
    for (const c of this.store.list()) {
      if (c.phase === "creating") {
        this.opts.logger.warn({ containerId: c.id }, "removing a container whose creation was interrupted");
        await this.destroy(c).catch((err: unknown) =>
          this.opts.logger.error({ err }, "container cleanup failed"),
        );
        continue;
      }
      await this.refresh(c.id);
    }
    await this.watchExits();
  }

  private readonly watchers: Array<() => void> = [];

  /**
   * conmon writes `<exit dir>/<id>` when a container exits: watching those directories turns
   * exits into STOPPED events as they happen, not only when someone asks for the status.
   */
  private async watchExits(): Promise<void> {
    for (const name of this.opts.handlers.names()) {
      const stop = await this.opts.handlers.get(name).watchExits((id) => {
        if (this.store.get(id)) this.refreshInBackground(id);
      });
      this.watchers.push(stop);
    }
  }

  close(): void {
    for (const stop of this.watchers) stop();
  }

  /**
   * CreateContainer. The pod's own stored config decides (log directory, privileges, namespaces,
   * cgroup parent), as containerd does, not the copy a request carries.
   */
  async create(podId: string, config: ContainerConfig): Promise<ContainerRecord> {
    const id = this.opts.pods.store.resolve(podId).id;
    const archive = config.image?.image ?? "";
    if (!isCheckpointArchive(archive)) {
      validateContainerConfig(config);
      return this.opts.pods.exclusive(id, () => this.createInPod(id, config));
    }
    // A checkpoint archive as the image (as CRI-O and containerd take it): a restore.
    const problem = await this.runtime(this.opts.pods.requireReady(id)).checkpointProblem();
    if (problem) throw failedPrecondition(`cannot restore ${archive}: ${problem}`);
    const staging = await this.checkpointStaging();
    try {
      const opened = await openArchive(archive, join(staging, "archive"));
      const restored = restoreConfig(opened, config);
      validateContainerConfig(restored);
      return await this.opts.pods.exclusive(id, () => this.createInPod(id, restored, opened));
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** A fresh directory for a checkpoint's or a restore's files, under Berth's root. */
  private async checkpointStaging(): Promise<string> {
    const parent = join(this.opts.root, "checkpoints");
    await mkdir(parent, { recursive: true, mode: 0o700 });
    return mkdtemp(join(parent, "work-"));
  }

  private async createInPod(
    podId: string,
    config: ContainerConfig,
    restore?: OpenedCheckpoint,
  ): Promise<ContainerRecord> {
    const pod = this.opts.pods.requireReady(podId);
    const md = config.metadata!;
    const imageRef = config.image?.image ?? "";
    if (imageRef === "") throw invalidArgument("container image is required");
    const img = this.opts.images.find(imageRef);
    if (!img) {
      const of = restore ? " (the checkpoint's base image)" : "";
      throw notFound(`image "${imageRef}"${of} not found: pull it first`);
    }
    const podConfig = decodePodConfig(pod);
    const confinedLogPath = await confineLogPath(podConfig.logDirectory, config.logPath);
    const id = randomBytes(32).toString("hex");
    const name = `${md.name}_${pod.metadata.name}_${pod.metadata.namespace}_${pod.metadata.uid}_${md.attempt}`;
    this.store.reserveName(name, id);
    const tl = new Timeline("container", this.opts.observePhase);
    const imageConfig = (await tl.phase("image_config", () =>
      this.opts.images.readConfig(img),
    )) as ImageConfig;
    let rec: ContainerRecord = {
      id,
      name,
      podId: pod.id,
      metadata: { name: md.name, attempt: md.attempt },
      image: imageRef,
      imageId: img.id,
      imageRepoTag: img.repoTags[0] ?? img.id,
      config: Buffer.from(ContainerConfig.encode(config).finish()).toString("base64"),
      state: "CONTAINER_CREATED",
      phase: "creating",
      createdAtNs: epochNowNs().toString(),
      startedAtNs: "0",
      finishedAtNs: "0",
      exitCode: 0,
      reason: "",
      message: "",
      logPath: confinedLogPath,
      dir: join(this.opts.root, "containers", id),
      runtimeHandler: pod.runtimeHandler,
      stopSignal: imageConfig.config?.StopSignal ?? "SIGTERM",
      labels: config.labels,
      annotations: config.annotations,
    };
    try {
      rec = await this.store.put(rec);
      await tl.phase("mount_sources", () => ensureMountSources(config.mounts));
      const privileged = config.linux?.securityContext?.privileged ?? false;
      const devices = privileged ? await allHostDevices() : await resolveDevices(config.devices);
      const lowers = img.layers.map((l) => this.opts.images.snapshots.fsPath(l.chainId));
      const { rootfs } = await tl.phase("rootfs", () => this.rootfs.mount(lowers, rec.dir));
      if (restore) await tl.phase("rootfs_diff", () => applyRootfsDiff(restore, rootfs));
      const spec = await tl.phase("spec", async () =>
        buildContainerSpec({
          id,
          sandboxId: pod.id,
          config,
          sandboxConfig: podConfig,
          image: imageConfig,
          imageName: rec.imageRepoTag,
          rootfs,
          readRootfsFile: rootfsReader(rootfs),
          namespaces: { ...pod.namespaces, ...(await this.pidNamespaces(pod, config)) },
          podFiles: {
            resolvConf: join(pod.dir, "resolv.conf"),
            hosts: join(pod.dir, "hosts"),
            hostname: join(pod.dir, "hostname"),
            ...(pod.shm ? { shm: pod.shm } : {}),
          },
          oomScoreAdjMin: this.opts.oomScoreAdjMin,
          devices,
          allCapabilities: await this.capabilitiesFor(pod),
          // The CRI: no profile named means unconfined, unless the node opts in to RuntimeDefault.
          unsetSeccompProfile: this.opts.seccompUseDefaultWhenEmpty ? "runtime/default" : "unconfined",
        }),
      );
      await writeBundleSpec(rec.dir, spec);
      const logPath = rec.logPath || join(rec.dir, "container.log");
      await mkdir(dirname(logPath), { recursive: true });
      if (restore) {
        // The runtime container is made by StartContainer's restore (runc restore runs it at once).
        const restoreFrom = join(rec.dir, CHECKPOINT_DIR);
        await rename(join(restore.dir, CHECKPOINT_DIR), restoreFrom);
        await copyFile(join(restore.dir, CONTAINER_LOG), logPath).catch((err: unknown) => {
          if (errnoCode(err) !== "ENOENT") throw err;
        });
        return await this.transition(id, "created", (c) => ({
          ...c,
          phase: "created",
          logPath,
          restoreFrom,
          timeline: tl.spans,
        }));
      }
      await tl.phase("runtime_create", () =>
        this.runtime(rec).create({
          id,
          name: md.name,
          bundle: rec.dir,
          logPath,
          terminal: config.tty,
          stdin: config.stdin,
          stdinOnce: config.stdinOnce,
        }),
      );
      return await this.transition(id, "created", (c) => ({
        ...c,
        phase: "created",
        logPath,
        timeline: tl.spans,
      }));
    } catch (err) {
      await this.destroy(rec).catch((e: unknown) =>
        this.opts.logger.error({ err: e }, "container cleanup failed"),
      );
      throw err;
    }
  }

  /**
   * What "ALL" and privileged grant: berthd's bounding set; in a gVisor sandbox only the
   * capabilities its kernel knows (runsc refuses to start a container naming a newer one).
   */
  private async capabilitiesFor(pod: PodRecord): Promise<string[]> {
    const all = await boundingCapabilities();
    return this.opts.pods.sandboxed(pod) ? all.filter((c) => !SANDBOX_UNKNOWN_CAPABILITIES.has(c)) : all;
  }

  /**
   * Pid namespaces to join: TARGET joins the named container's; every other mode but CONTAINER
   * joins the pod's shared one (its init's) when the pod has one (spec.ts applies the modes).
   */
  private async pidNamespaces(
    pod: PodRecord,
    config: ContainerConfig,
  ): Promise<{ pid?: string; targetPid?: string }> {
    const nsOpts = config.linux?.securityContext?.namespaceOptions;
    if (nsOpts && nsOpts.pid === NamespaceMode.TARGET) {
      const target = this.store.resolve(nsOpts.targetId);
      const pid = (await this.runtime(target).state(target.id))?.pid ?? 0;
      if (target.podId !== pod.id || pid <= 0) {
        throw failedPrecondition(`target container ${nsOpts.targetId} is not running in pod ${pod.id}`);
      }
      return { targetPid: `/proc/${pid}/ns/pid` };
    }
    if (nsOpts?.pid === NamespaceMode.CONTAINER) return {};
    const pid = await this.opts.pods.pidNamespace(pod);
    return pid ? { pid } : {};
  }

  async start(id: string): Promise<void> {
    const c = this.store.resolve(id);
    if (c.state !== "CONTAINER_CREATED") {
      throw failedPrecondition(
        `container ${c.id} is ${c.state.replace("CONTAINER_", "").toLowerCase()}, not created`,
      );
    }
    if (this.starting.has(c.id)) throw failedPrecondition(`container ${c.id} is being started`);
    this.starting.add(c.id);
    try {
      await this.startProcesses(c);
    } finally {
      this.starting.delete(c.id);
    }
    if (this.refreshAfterStart.delete(c.id)) this.refreshInBackground(c.id);
  }

  /** Starts (or restores) the container's processes and records RUNNING, or the StartError. */
  private async startProcesses(c: ContainerRecord): Promise<void> {
    const t0 = Date.now();
    try {
      if (c.restoreFrom) await this.restoreProcesses(c, c.restoreFrom);
      else await this.runtime(c).start(c.id);
    } catch (err) {
      await this.transition(c.id, "stopped", (r) => ({
        ...r,
        state: "CONTAINER_EXITED",
        finishedAtNs: epochNowNs().toString(),
        exitCode: 128,
        reason: "StartError",
        message: (err as Error).message,
      }));
      throw err;
    }
    const durationMs = Date.now() - t0;
    this.opts.observePhase?.("container", "runtime_start", durationMs / 1000);
    await this.transition(c.id, "started", (r) => ({
      ...r,
      state: "CONTAINER_RUNNING",
      startedAtNs: epochNowNs().toString(),
      timeline: [...(r.timeline ?? []), { phase: "runtime_start", startMs: t0, durationMs }],
    }));
  }

  /** StartContainer of a container created from a checkpoint: conmon runs `runc restore`. */
  private async restoreProcesses(c: ContainerRecord, images: string): Promise<void> {
    const config = decodeContainerConfig(c);
    await this.runtime(c).create({
      id: c.id,
      name: c.metadata.name,
      bundle: c.dir,
      logPath: c.logPath,
      terminal: config.tty,
      stdin: config.stdin,
      stdinOnce: config.stdinOnce,
      restoreFrom: images,
    });
    await rm(images, { recursive: true, force: true });
    await this.store.update(c.id, (r) => {
      const { restoreFrom: _done, ...rest } = r;
      return rest;
    });
  }

  /**
   * CheckpointContainer: CRIU dumps the running container (it keeps running), and the archive
   * (checkpoint-archive.ts) goes to `location`. `status` is the CRI status for status.dump.
   */
  async checkpoint(id: string, location: string, timeoutSec: number, status: unknown): Promise<void> {
    await checkLocation(location);
    const c = await this.refresh(this.store.resolve(id).id);
    if (c?.state !== "CONTAINER_RUNNING") throw failedPrecondition(`container ${id} is not running`);
    const rt = this.runtime(c);
    const problem = await rt.checkpointProblem();
    if (problem) throw failedPrecondition(`cannot checkpoint container ${c.id}: ${problem}`);
    const staging = await this.checkpointStaging();
    try {
      const timeoutMs = timeoutSec > 0 ? timeoutSec * 1000 : 10 * 60_000;
      await rt.checkpoint(
        c.id,
        { imagePath: join(staging, CHECKPOINT_DIR), workPath: staging, timeoutMs },
        () => writeFrozenParts(staging, rootfsPaths(c.dir).upper, c.logPath),
      );
      const now = new Date().toISOString();
      await writeArchive(
        staging,
        {
          config: {
            id: c.id,
            name: c.metadata.name,
            rootfsImage: c.image,
            rootfsImageRef: c.imageId,
            rootfsImageName: c.imageRepoTag,
            runtime: c.runtimeHandler || this.opts.handlers.defaultHandler,
            createdTime: new Date(Number(BigInt(c.createdAtNs) / 1_000_000n)).toISOString(),
            checkpointedTime: now,
            restored: false,
          },
          specPath: join(c.dir, "config.json"),
          status,
          berth: { containerConfig: c.config, podId: c.podId },
        },
        location,
      );
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  private readonly refreshing = new SingleFlight<ContainerRecord | undefined>();
  /**
   * Containers berthd is killing (StopContainer, removal): an exit refresh (e.g. from the exit
   * watch) must not wait for an OOM file for their SIGKILL, or every call on the container
   * would queue behind that wait.
   */
  private readonly killing = new Set<string>();
  /** Containers in StartContainer, and those a refresh asked about meanwhile. */
  private readonly starting = new Set<string>();
  private readonly refreshAfterStart = new Set<string>();

  /**
   * Exited containers whose runtime state (runc's, conmon's files) is being or has been deleted:
   * id → whether that went through. As containerd's shim deletes the runc container at its exit,
   * RemoveContainer then has only Berth's own record, rootfs and bundle left to remove. In
   * memory only: after a restart RemoveContainer deletes the runtime state itself (idempotent).
   */
  private readonly released = new Map<string, Promise<boolean>>();

  /** Deletes an exited container's runtime state once (later calls share the first). */
  private releaseRuntime(c: ContainerRecord): Promise<boolean> {
    let done = this.released.get(c.id);
    if (!done) {
      done = this.runtime(c)
        .delete(c.id)
        .then(
          () => true,
          (err: unknown) => {
            this.opts.logger.warn(
              { err, containerId: c.id },
              "deleting an exited container's runtime state failed",
            );
            return false;
          },
        );
      this.released.set(c.id, done);
    }
    return done;
  }

  /** refresh() for an exit nobody waits on (failures are logged). */
  private refreshInBackground(id: string): void {
    this.refresh(id).catch((err: unknown) =>
      this.opts.logger.warn({ err, containerId: id }, "exit refresh failed"),
    );
  }

  /** Re-reads a container's state from conmon's exit file and the runtime (one at a time per id). */
  refresh(id: string): Promise<ContainerRecord | undefined> {
    return this.refreshing.run(id, () => this.refreshOnce(id));
  }

  private async refreshOnce(id: string): Promise<ContainerRecord | undefined> {
    const c = this.store.get(id);
    if (!c || c.state === "CONTAINER_EXITED" || c.phase === "creating") return c;
    if (this.starting.has(id)) {
      // An exit recorded now would be overwritten by start()'s move to RUNNING (and its
      // runtime state deleted, so the next look would call it lost): start() looks after it.
      this.refreshAfterStart.add(id);
      return c;
    }
    const rt = this.runtime(c);
    const exit = await observeExit(rt, c.id);
    if (exit === "lost") {
      if (c.state !== "CONTAINER_RUNNING") return c;
      const st = await rt.state(c.id);
      if (st && st.status !== "stopped") return c;
      const lost = await this.transition(c.id, "stopped", (r) => ({
        ...r,
        state: "CONTAINER_EXITED",
        exitCode: 255,
        finishedAtNs: epochNowNs().toString(),
        reason: "Error",
        message: "container monitor (conmon) is gone; exit code unknown",
      }));
      void this.releaseRuntime(lost);
      return lost;
    }
    if (exit !== "running") {
      const reason = await exitReason(c, exit.exitCode, this.killing.has(c.id));
      const now = this.store.get(c.id);
      if (!now || now.state === "CONTAINER_EXITED") return now; // StopContainer got there first
      const exited = await this.transition(c.id, "stopped", (r) => ({
        ...r,
        state: "CONTAINER_EXITED",
        exitCode: exit.exitCode,
        finishedAtNs: finishedNs(dateToNs(exit.finishedAt), r.startedAtNs),
        reason: r.reason || reason,
      }));
      // Its exit is recorded: runc's state and conmon's files are no longer needed.
      void this.releaseRuntime(exited);
      return exited;
    }
    return c;
  }

  /** StopContainer: a container that is not there is stopped (OK); an ambiguous id is an error. */
  async stop(id: string, timeoutSec: number): Promise<void> {
    const c = this.store.find(id);
    if (!c) return;
    const cur = await this.refresh(c.id);
    if (cur?.state !== "CONTAINER_RUNNING") return;
    this.killing.add(cur.id);
    try {
      await this.stopRunning(cur, timeoutSec);
    } finally {
      this.killing.delete(cur.id);
    }
    // As containerd's StopContainer returns after its shim deleted the task: the runtime state
    // goes now (shared with the exit watch's release), so RemoveContainer does not pay for it.
    const after = this.store.get(cur.id);
    if (after?.state === "CONTAINER_EXITED") await this.releaseRuntime(after);
  }

  private async stopRunning(cur: ContainerRecord, timeoutSec: number): Promise<void> {
    const exit = await this.runtime(cur).stop(cur.id, cur.stopSignal, timeoutSec);
    // The exit-file watch may have recorded the exit already (and published STOPPED).
    if (this.store.get(cur.id)?.state === "CONTAINER_EXITED") return;
    const exitCode = exit?.exitCode ?? 137;
    const reason = await exitReason(cur, exitCode, true);
    if (this.store.get(cur.id)?.state === "CONTAINER_EXITED") return;
    await this.transition(cur.id, "stopped", (r) => ({
      ...r,
      state: "CONTAINER_EXITED",
      exitCode,
      finishedAtNs: finishedNs(exit ? dateToNs(exit.finishedAt) : epochNowNs(), r.startedAtNs),
      reason: r.reason || reason,
    }));
  }

  async remove(id: string): Promise<void> {
    const c = this.store.find(id);
    if (!c) return;
    await this.destroy(c);
  }

  /** Kills, deletes from the runtime, unmounts and forgets a container. Idempotent. */
  private async destroy(c: ContainerRecord): Promise<void> {
    const rt = this.runtime(c);
    this.killing.add(c.id);
    try {
      // Deleted at its exit already (the usual case), or not: then here, as before. An exited
      // container has nothing left to kill (and `delete --force` would kill anyway); a running
      // or unknown one gets SIGKILL for all its processes first.
      const released = c.state === "CONTAINER_EXITED" && (await this.released.get(c.id));
      if (!released) {
        if (c.state !== "CONTAINER_EXITED") await rt.kill(c.id, "SIGKILL", true).catch(() => {});
        await rt.delete(c.id);
      }
      await this.rootfs.remove(c.dir);
      await this.store.delete(c.id);
      this.released.delete(c.id);
    } finally {
      this.killing.delete(c.id);
    }
    if (c.phase === "created") this.opts.events?.publish("deleted", c.id, c.podId, c);
  }

  async execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecSyncResult> {
    const { c, process } = await this.execTarget(id, cmd);
    return this.runtime(c).execSync(c.id, process, timeoutSec);
  }

  /** Runs `cmd` in the running container for a streaming session; resolves with its exit code. */
  async exec(id: string, cmd: string[], tty: boolean, io: ExecIO): Promise<number> {
    const { c, process } = await this.execTarget(id, cmd);
    return this.runtime(c).exec(c.id, process, tty, io);
  }

  /** Connects a streaming session to the running container's stdio (through its conmon). */
  async attach(id: string, io: ExecIO): Promise<number> {
    const c = await this.requireRunning(id);
    return this.runtime(c).attach(c.id, io, this.stdioConfig(c.id));
  }

  /** The running container and the process to exec in it: its whole spec (user, caps, env…) but the command. */
  private async execTarget(id: string, cmd: string[]): Promise<{ c: ContainerRecord; process: OciProcess }> {
    if (cmd.length === 0) throw invalidArgument("exec command is empty");
    checkArgv("exec command", cmd);
    const c = await this.requireRunning(id);
    const spec = await readBundleSpec(c.dir);
    return { c, process: { ...spec.process, args: cmd } };
  }

  /** The container's record after a refresh; FailedPrecondition unless it is running. */
  private async requireRunning(id: string): Promise<ContainerRecord> {
    const c = await this.refresh(this.store.resolve(id).id);
    if (c?.state !== "CONTAINER_RUNNING") throw failedPrecondition(`container ${id} is not running`);
    return c;
  }

  /** The stdio settings the container was created with (what an attach can use). */
  stdioConfig(id: string): { tty: boolean; stdin: boolean; stdinOnce: boolean } {
    const config = decodeContainerConfig(this.store.resolve(id));
    return { tty: config.tty, stdin: config.stdin, stdinOnce: config.stdinOnce };
  }

  async updateResources(id: string, resources: LinuxContainerResources | undefined): Promise<void> {
    const c = this.store.resolve(id);
    if (!resources) return;
    // The same mapping as at create: memory+swap follows the memory limit, so raising it works.
    await this.runtime(c).update(c.id, buildResources(resources) ?? {});
    // Kept with the config, so ContainerStatus reports the resources in force (as containerd).
    await this.store.update(c.id, (r) => {
      const config = decodeContainerConfig(r);
      config.linux = { ...(config.linux ?? { securityContext: undefined }), resources };
      return { ...r, config: Buffer.from(ContainerConfig.encode(config).finish()).toString("base64") };
    });
  }

  /**
   * Makes conmon reopen the container's log file (after kubelet rotated it), through conmon's
   * control FIFO in the bundle, as CRI-O does; resolves once the new file exists.
   */
  async reopenLog(id: string): Promise<void> {
    const c = await this.requireRunning(id);
    await this.runtime(c).reopenLog(c.id);
    for (let i = 0; i < 250; i++) {
      if (await exists(c.logPath)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw failedPrecondition(`conmon did not reopen ${c.logPath}`);
  }

  /** Whether the container runs in its pod's sandbox (gVisor): its processes are the sandbox's. */
  sandboxed(c: ContainerRecord): boolean {
    return this.opts.pods.sandboxed(c);
  }

  /** The container's init pid from conmon's pid file (0 when unknown; a sandbox's for gVisor). */
  async initPid(c: ContainerRecord): Promise<number> {
    return this.runtime(c).initPid(c.id);
  }

  /**
   * The verbose ContainerStatus info, shaped as containerd's (sandboxID, pid, snapshot,
   * runtimeType/Options, config, runtimeSpec) plus Berth's bundle, rootfs and start-up timeline.
   */
  async verboseInfo(c: ContainerRecord): Promise<Record<string, unknown>> {
    const rt = this.runtime(c);
    const state = c.state === "CONTAINER_RUNNING" ? await rt.state(c.id).catch(() => undefined) : undefined;
    const spec = await readBundleSpec(c.dir).catch(() => undefined);
    return {
      sandboxID: c.podId,
      pid: state?.pid ?? 0,
      removing: false,
      snapshotKey: c.id,
      snapshotter: "overlayfs",
      runtimeHandler: c.runtimeHandler,
      ...rt.description,
      config: decodeContainerConfig(c),
      runtimeSpec: spec,
      bundle: c.dir,
      rootfs: join(c.dir, "rootfs"),
      imageId: c.imageId,
      logPath: c.logPath,
      timeline: c.timeline ?? [],
    };
  }

  listInPod(podId: string): ContainerRecord[] {
    return this.store.list().filter((c) => c.podId === podId);
  }
}

export type { PodRecord };
