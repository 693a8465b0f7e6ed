/**
 * The runtime spec of a pod's init: berth-pause as PID 1 of a new pid namespace, inside the
 * pod's pinned network/IPC/UTS namespaces (or the host's for NODE modes) and its cgroup parent.
 * It runs as nobody with no capabilities from a read-only rootfs that holds only /pause; its
 * annotations mark it as the pod's root container, as containerd marks the pause container.
 */
import { posix } from "node:path";
import type { PodSandboxConfig } from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import { DEFAULT_PATH_ENV } from "./defaults.js";
import { Annotations } from "./spec.js";
import { type LinuxNamespace, OCI_VERSION, type Spec } from "./types.js";

export const POD_INIT_PATH = "/pause";
/** The kubelet's oom_score_adj for pause containers: the last process to be OOM-killed. */
const POD_INIT_OOM_SCORE_ADJ = -998;
const NOBODY = 65534;

export interface PodInitSpecInput {
  podId: string;
  sandboxConfig: PodSandboxConfig;
  /** The shared, read-only rootfs holding POD_INIT_PATH. */
  rootfs: string;
  /** Pinned namespaces of the pod; an absent one is the host's (NODE mode). */
  namespaces: { net?: string; ipc?: string; uts?: string };
  /** berthd's own oom_score_adj: without CAP_SYS_RESOURCE a child may not go below it. */
  oomScoreAdjMin?: number;
  /**
   * The pod's hostname, for a sandbox runtime: its kernel (gVisor's) takes the sandbox's UTS
   * name from the root container's spec, not from the pinned namespace.
   */
  hostname?: string;
}

export function buildPodInitSpec(input: PodInitSpecInput): Spec {
  const { sandboxConfig: config, namespaces: ns } = input;
  const parent = config.linux?.cgroupParent ?? "";
  if (parent !== "" && !parent.startsWith("/"))
    throw invalidArgument(`cgroup parent ${JSON.stringify(parent)} must be absolute`);
  const list: LinuxNamespace[] = [{ type: "mount" }, { type: "pid" }];
  if (ns.net) list.push({ type: "network", path: ns.net });
  if (ns.uts) list.push({ type: "uts", path: ns.uts });
  if (ns.ipc) list.push({ type: "ipc", path: ns.ipc });
  const md = config.metadata;
  const none: string[] = [];
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: NOBODY, gid: NOBODY },
      args: [POD_INIT_PATH],
      env: [DEFAULT_PATH_ENV],
      cwd: "/",
      capabilities: { bounding: none, effective: none, inheritable: none, permitted: none, ambient: none },
      noNewPrivileges: true,
      oomScoreAdj: Math.max(POD_INIT_OOM_SCORE_ADJ, input.oomScoreAdjMin ?? POD_INIT_OOM_SCORE_ADJ),
    },
    root: { path: input.rootfs, readonly: true },
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "noexec", "strictatime", "mode=755", "size=64k"],
      },
    ],
    annotations: {
      [Annotations.ContainerType]: "sandbox",
      [Annotations.SandboxId]: input.podId,
      ...(md && {
        [Annotations.SandboxName]: md.name,
        [Annotations.SandboxNamespace]: md.namespace,
        [Annotations.SandboxUid]: md.uid,
      }),
    },
    linux: {
      resources: { devices: [{ allow: false, access: "rwm" }] },
      cgroupsPath: posix.join("/", parent, `berth-${input.podId}`),
      namespaces: list,
      maskedPaths: ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
    },
  };
  if (input.hostname) spec.hostname = input.hostname;
  return spec;
}
