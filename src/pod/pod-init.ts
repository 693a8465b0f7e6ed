/**
 * A pod's init: berth-pause as PID 1 of the pod's shared pid namespace, run as the pod's root
 * container by the pod's runtime handler (under conmon, like any container, so it outlives
 * berthd). Pods that share a pid namespace (pid mode POD) get one: a pid namespace dies with its
 * PID 1, so without it the first container's exit would kill its siblings. So does every pod of
 * a sandbox runtime (gVisor): its root container starts the sandbox the app containers join.
 * Other pods keep having no extra process (their namespaces are pinned).
 */
import { copyFile, mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NamespaceMode, type PodSandboxConfig } from "../api/gen/runtime/v1/api.js";
import { errnoCode, failedPrecondition } from "../common/errors.js";
import { type HandlerLookup, observeExit } from "../runtime/oci-runtime.js";
import { readBundleSpec, writeBundleSpec } from "../runtime-spec/bundle.js";
import { buildPodInitSpec, POD_INIT_PATH } from "../runtime-spec/pod-init-spec.js";
import type { Spec } from "../runtime-spec/types.js";

/** Built from native/pause.c with the addon (statically linked). */
export const POD_INIT_BINARY = fileURLToPath(
  new URL("../../native/build/Release/berth-pause", import.meta.url),
);

/** Whether a pod with this config shares one pid namespace among its containers. */
export function sharesPidNamespace(config: PodSandboxConfig): boolean {
  return (config.linux?.securityContext?.namespaceOptions?.pid ?? NamespaceMode.POD) === NamespaceMode.POD;
}

export interface PodInitTarget {
  id: string;
  runtimeHandler: string;
  /** The pod's volatile directory; the init's bundle goes in `init/` there. */
  dir: string;
  namespaces: { net?: string; ipc?: string; uts?: string };
}

export class PodInits {
  /** Shared read-only rootfs: /pause, and the mount points runc needs. */
  readonly rootfs: string;
  private oomScoreAdjMin = 0;

  constructor(private readonly opts: { root: string; handlers: HandlerLookup; binary?: string }) {
    this.rootfs = join(opts.root, "pod-init", "rootfs");
  }

  /** Installs the rootfs (at start-up; replaced only when the binary changed). */
  async prepare(): Promise<void> {
    this.oomScoreAdjMin = Number((await readFile("/proc/self/oom_score_adj", "utf8")).trim()) || 0;
    const binary = this.opts.binary ?? POD_INIT_BINARY;
    const want = await readFile(binary).catch((err: unknown) => {
      throw failedPrecondition(
        `pod init binary ${binary} is missing (${errnoCode(err) ?? err}): rebuild the native addon (npm ci)`,
      );
    });
    for (const d of ["proc", "dev"]) await mkdir(join(this.rootfs, d), { recursive: true, mode: 0o755 });
    const target = join(this.rootfs, POD_INIT_PATH);
    const have = await readFile(target).catch(() => undefined);
    if (have?.equals(want)) return;
    await copyFile(binary, `${target}.tmp`);
    await rename(`${target}.tmp`, target);
  }

  /** Creates and starts the pod's init (the pod's id is its container id). */
  async start(pod: PodInitTarget, config: PodSandboxConfig, hostname: string): Promise<void> {
    const bundle = this.bundle(pod);
    await mkdir(bundle, { recursive: true, mode: 0o700 });
    const rt = this.opts.handlers.get(pod.runtimeHandler);
    const spec = buildPodInitSpec({
      podId: pod.id,
      sandboxConfig: config,
      rootfs: this.rootfs,
      namespaces: pod.namespaces,
      oomScoreAdjMin: this.oomScoreAdjMin,
      ...(rt.sandboxed && { hostname }),
    });
    await writeBundleSpec(bundle, spec);
    await rt.create({ id: pod.id, name: "pod-init", bundle, logPath: join(bundle, "init.log") });
    await rt.start(pod.id);
  }

  /** /proc/<pid>/ns/pid of the running init; FailedPrecondition when it is not running. */
  async pidNamespace(pod: PodInitTarget): Promise<string> {
    const st = await this.opts.handlers.get(pod.runtimeHandler).state(pod.id);
    if (st?.status !== "running" || st.pid <= 0) {
      throw failedPrecondition(`pod sandbox ${pod.id}: its init (PID 1 of the pod) is not running`);
    }
    return `/proc/${st.pid}/ns/pid`;
  }

  /** The runtime spec the init was started with, if it was. */
  runtimeSpec(pod: PodInitTarget): Promise<Spec | undefined> {
    return readBundleSpec(this.bundle(pod)).catch(() => undefined);
  }

  /** Whether the init still runs, from its monitor's files (no runtime call: used at start-up). */
  async running(pod: PodInitTarget): Promise<boolean> {
    return (await observeExit(this.opts.handlers.get(pod.runtimeHandler), pod.id)) === "running";
  }

  /** Stops and deletes the init. Idempotent. */
  async remove(pod: PodInitTarget): Promise<void> {
    const rt = this.opts.handlers.get(pod.runtimeHandler);
    await rt.stop(pod.id, "SIGKILL", 0);
    await rt.delete(pod.id);
  }

  private bundle(pod: PodInitTarget): string {
    return join(pod.dir, "init");
  }
}
