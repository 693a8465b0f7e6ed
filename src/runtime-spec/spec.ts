/**
 * buildContainerSpec: the OCI runtime spec (runc config.json) of a CRI container, from the CRI
 * ContainerConfig, the pod's PodSandboxConfig, the image config and what the caller resolved on
 * the host (namespace paths, pod files, devices, rootfs reader). Pods use pinned namespaces:
 * containers join them by path; there is no pause container.
 */
import { readFile } from "node:fs/promises";
import { posix } from "node:path";
import { type ContainerConfig, NamespaceMode, type PodSandboxConfig } from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import type { ImageConfig } from "../image/registry/oci.js";
import {
  ALL_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH_ENV,
  DEFAULT_READONLY_PATHS,
} from "./defaults.js";
import { buildMounts, type PodFiles } from "./mounts.js";
import { mergeEnv, type RootfsReader, resolveArgs, resolveUser, resolveWorkingDir } from "./process.js";
import {
  buildDevices,
  buildResources,
  clampOomScoreAdj,
  filterSysctls,
  type ResolvedDevice,
} from "./resources.js";
import { defaultSeccompProfile, parseSeccompProfile } from "./seccomp.js";
import {
  buildCapabilities,
  localhostProfilePath,
  type ProfileChoice,
  selectApparmor,
  selectSeccomp,
} from "./security.js";
import { type LinuxNamespace, OCI_VERSION, type Seccomp, type Spec } from "./types.js";

/** Annotation keys, as containerd's CRI plugin writes them. */
export const Annotations = {
  ContainerType: "io.kubernetes.cri.container-type",
  SandboxId: "io.kubernetes.cri.sandbox-id",
  SandboxName: "io.kubernetes.cri.sandbox-name",
  SandboxNamespace: "io.kubernetes.cri.sandbox-namespace",
  SandboxUid: "io.kubernetes.cri.sandbox-uid",
  ContainerName: "io.kubernetes.cri.container-name",
  ImageName: "io.kubernetes.cri.image-name",
} as const;

/** Namespace files a container joins: the pod's pins, its init's pid namespace, a target's. */
export interface ContainerNamespacePaths {
  net?: string;
  ipc?: string;
  uts?: string;
  /** The pod's pid namespace, joined in pid mode POD (a new one when absent). */
  pid?: string;
  /** The target container's pid namespace (e.g. /proc/<pid>/ns/pid), required in pid mode TARGET. */
  targetPid?: string;
}

export interface ContainerSpecInput {
  id: string;
  sandboxId: string;
  config: ContainerConfig;
  sandboxConfig: PodSandboxConfig;
  image?: ImageConfig | undefined;
  /** Image reference for the image-name annotation. */
  imageName?: string;
  /** Absolute path of the prepared rootfs. */
  rootfs: string;
  /** Reads files of the rootfs without escaping it (for /etc/passwd, /etc/group). */
  readRootfsFile: RootfsReader;
  /** Omitted namespaces are created new (NODE modes use the host's). */
  namespaces?: ContainerNamespacePaths;
  /** Cgroupfs parent; defaults to the sandbox's linux.cgroup_parent. */
  cgroupParent?: string;
  /** Hostname, set only when the container gets its own UTS namespace; defaults to the pod's. */
  hostname?: string;
  podFiles?: PodFiles;
  /** Devices of the request resolved on the host (privileged: all host devices). */
  devices?: readonly ResolvedDevice[];
  /** berthd's own oom_score_adj: lower requests are raised to it. */
  oomScoreAdjMin?: number;
  /** Root for relative Localhost seccomp refs. */
  seccompProfileRoot?: string;
  /** Reads a Localhost seccomp profile file; defaults to fs.readFile(path, "utf8"). */
  readProfileFile?: (path: string) => Promise<string>;
  /** Seccomp profile when the request sets none (containerd's unset_seccomp_profile). */
  unsetSeccompProfile?: "runtime/default" | "unconfined";
  /** Capabilities granted by "ALL" and privileged; default: all known (pass berthd's CapBnd). */
  allCapabilities?: readonly string[];
  /** Node process.arch for seccomp architectures; defaults to the host's. */
  arch?: string;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

const NAMESPACE_MODES: readonly NamespaceMode[] = [
  NamespaceMode.POD,
  NamespaceMode.CONTAINER,
  NamespaceMode.NODE,
  NamespaceMode.TARGET,
];

function checkMode(what: string, mode: NamespaceMode): NamespaceMode {
  if (!NAMESPACE_MODES.includes(mode)) throw invalidArgument(`unknown ${what} namespace mode ${mode}`);
  return mode;
}

/**
 * The pod's namespace options decide: a container of a host-network (or host-IPC, host-PID)
 * pod runs in the host's namespace whatever its own options say, and a container may only
 * narrow its pid namespace (CONTAINER, TARGET); asking for POD (or NODE in a pod that is not
 * NODE) joins the pod's pid namespace when the pod has one (its init), else gets a new one.
 */
function namespaces(input: ContainerSpecInput): {
  list: LinuxNamespace[];
  hostNetwork: boolean;
  hostIpc: boolean;
} {
  const podNs = input.sandboxConfig.linux?.securityContext?.namespaceOptions;
  const ctrNs = input.config.linux?.securityContext?.namespaceOptions;
  if (ctrNs) {
    checkMode("network", ctrNs.network);
    checkMode("ipc", ctrNs.ipc);
    checkMode("pid", ctrNs.pid);
  }
  const hostNetwork = checkMode("network", podNs?.network ?? NamespaceMode.POD) === NamespaceMode.NODE;
  const hostIpc = checkMode("ipc", podNs?.ipc ?? NamespaceMode.POD) === NamespaceMode.NODE;
  const hostPid = checkMode("pid", podNs?.pid ?? NamespaceMode.POD) === NamespaceMode.NODE;
  const paths = input.namespaces ?? {};
  const ns = (type: LinuxNamespace["type"], path?: string): LinuxNamespace =>
    path ? { type, path } : { type };
  const list: LinuxNamespace[] = [ns("mount")];
  if (!hostNetwork) {
    list.push(ns("network", paths.net));
    list.push(ns("uts", paths.uts));
  }
  if (!hostIpc) list.push(ns("ipc", paths.ipc));
  if (!hostPid) {
    switch (ctrNs?.pid ?? NamespaceMode.POD) {
      case NamespaceMode.CONTAINER:
        list.push(ns("pid"));
        break;
      case NamespaceMode.TARGET:
        if (!paths.targetPid)
          throw invalidArgument("pid namespace mode TARGET requires the target's namespace");
        list.push(ns("pid", paths.targetPid));
        break;
      default:
        list.push(ns("pid", paths.pid));
    }
  }
  return { list, hostNetwork, hostIpc };
}

async function seccompFor(
  input: ContainerSpecInput,
  choice: ProfileChoice,
  bounding: string[],
): Promise<Seccomp | undefined> {
  switch (choice.kind) {
    case "unconfined":
      return undefined;
    case "runtime-default":
      return defaultSeccompProfile(bounding, input.arch);
    case "localhost": {
      const path = localhostProfilePath(choice.ref, input.seccompProfileRoot);
      let content: string;
      try {
        content = await (input.readProfileFile ?? ((p: string) => readFile(p, "utf8")))(path);
      } catch (err) {
        throw invalidArgument(`cannot read seccomp profile ${path}: ${(err as Error).message}`, err);
      }
      return parseSeccompProfile(content, `seccomp profile ${path}`);
    }
  }
}

export async function buildContainerSpec(input: ContainerSpecInput): Promise<Spec> {
  const { config, sandboxConfig } = input;
  if (!ID.test(input.id)) throw invalidArgument(`invalid container id ${JSON.stringify(input.id)}`);
  if (!config.metadata?.name) throw invalidArgument("container config has no metadata name");
  if (!input.rootfs.startsWith("/")) throw invalidArgument("rootfs path must be absolute");
  const sc = config.linux?.securityContext;
  const privileged = sc?.privileged ?? false;
  if (privileged && !sandboxConfig.linux?.securityContext?.privileged) {
    throw invalidArgument("privileged container in a non-privileged pod");
  }
  const imageCfg = input.image?.config;

  const ns = namespaces(input);
  const ownUts = !ns.hostNetwork && !input.namespaces?.uts;
  const hostname = input.hostname ?? sandboxConfig.hostname;
  const baseEnv = [DEFAULT_PATH_ENV];
  if (hostname) baseEnv.push(`HOSTNAME=${hostname}`);

  const user = await resolveUser(
    {
      runAsUser: sc?.runAsUser,
      runAsUsername: sc?.runAsUsername ?? "",
      runAsGroup: sc?.runAsGroup,
      supplementalGroups: sc?.supplementalGroups ?? [],
      imageUser: imageCfg?.User,
    },
    input.readRootfsFile,
  );

  const capabilities = buildCapabilities(
    sc?.capabilities,
    privileged,
    input.allCapabilities ?? ALL_CAPABILITIES,
  );
  const seccompChoice = selectSeccomp(
    sc?.seccomp,
    sc?.seccompProfilePath ?? "",
    input.unsetSeccompProfile === "runtime/default" ? { kind: "runtime-default" } : { kind: "unconfined" },
  );
  // AppArmor is validated but not applied: not available on the hosts Berth runs on yet.
  selectApparmor(sc?.apparmor, sc?.apparmorProfile ?? "");
  const seccomp = privileged ? undefined : await seccompFor(input, seccompChoice, capabilities.bounding);

  const { mounts, rootfsPropagation } = buildMounts({
    criMounts: config.mounts,
    podFiles: input.podFiles,
    readonlyRootfs: sc?.readonlyRootfs ?? false,
    privileged,
  });
  const devs = buildDevices(input.devices ?? [], privileged);
  const resources = config.linux?.resources;

  const parent = input.cgroupParent ?? sandboxConfig.linux?.cgroupParent ?? "";
  if (parent !== "" && !parent.startsWith("/"))
    throw invalidArgument(`cgroup parent ${JSON.stringify(parent)} must be absolute`);

  const meta = sandboxConfig.metadata;
  const annotations: Record<string, string> = { ...config.annotations };
  annotations[Annotations.ContainerType] = "container";
  annotations[Annotations.SandboxId] = input.sandboxId;
  annotations[Annotations.ContainerName] = config.metadata.name;
  if (meta) {
    annotations[Annotations.SandboxName] = meta.name;
    annotations[Annotations.SandboxNamespace] = meta.namespace;
    annotations[Annotations.SandboxUid] = meta.uid;
  }
  const imageName = input.imageName ?? config.image?.userSpecifiedImage ?? config.image?.image;
  if (imageName) annotations[Annotations.ImageName] = imageName;

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: config.tty,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: resolveArgs(config.command, config.args, imageCfg),
      env: mergeEnv(imageCfg?.Env, config.envs, baseEnv),
      cwd: resolveWorkingDir(config.workingDir, imageCfg),
      capabilities,
      noNewPrivileges: sc?.noNewPrivs ?? false,
      oomScoreAdj: clampOomScoreAdj(resources?.oomScoreAdj ?? 0n, input.oomScoreAdjMin),
    },
    root: { path: input.rootfs, readonly: sc?.readonlyRootfs ?? false },
    mounts,
    annotations,
    linux: {
      resources: { devices: devs.rules, ...buildResources(resources) },
      cgroupsPath: posix.join("/", parent, `berth-${input.id}`),
      namespaces: ns.list,
      devices: devs.devices,
    },
  };
  if (ownUts && hostname) spec.hostname = hostname;
  const sysctl = filterSysctls(sandboxConfig.linux?.sysctls ?? {}, ns);
  if (Object.keys(sysctl).length > 0) spec.linux.sysctl = sysctl;
  if (seccomp) spec.linux.seccomp = seccomp;
  if (!privileged) {
    const masked = sc?.maskedPaths ?? [];
    const ro = sc?.readonlyPaths ?? [];
    spec.linux.maskedPaths = masked.length > 0 ? [...masked] : [...DEFAULT_MASKED_PATHS];
    spec.linux.readonlyPaths = ro.length > 0 ? [...ro] : [...DEFAULT_READONLY_PATHS];
  }
  if (rootfsPropagation) spec.linux.rootfsPropagation = rootfsPropagation;
  return spec;
}
