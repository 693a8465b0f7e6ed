/**
 * The CRI's ContainerConfig as the body of Docker's POST /containers/create: the same
 * validation and mappings as the native backend's runtime spec (src/runtime-spec), expressed
 * in Docker's HostConfig. App containers join the sandbox container's namespaces.
 */
import { readFile } from "node:fs/promises";
import {
  type ContainerConfig,
  type LinuxContainerResources,
  MountPropagation,
  NamespaceMode,
  type PodSandboxConfig,
} from "../../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../../common/errors.js";
import { boundingCapabilities } from "../../container/host-resources.js";
import { ALL_CAPABILITIES } from "../../runtime-spec/defaults.js";
import { buildResources, clampOomScoreAdj } from "../../runtime-spec/resources.js";
import {
  buildCapabilities,
  localhostProfilePath,
  selectApparmor,
  selectSeccomp,
} from "../../runtime-spec/security.js";

let bounding: Promise<string[]> | undefined;

/**
 * Capabilities and privilege as Docker fields. Docker grants a privileged container every
 * capability it knows, which runc cannot do where berthd's own bounding set is narrower (a
 * nested node): there "privileged" is spelled out (berthd's bounding set, no seccomp, AppArmor
 * or masked paths). Other containers get the exact set the native backend computes.
 */
export async function privilegeFields(
  privileged: boolean,
  caps: Parameters<typeof buildCapabilities>[0],
): Promise<{ hostConfig: Record<string, unknown>; securityOpt: string[] }> {
  bounding ??= boundingCapabilities();
  const all = await bounding;
  if (privileged && ALL_CAPABILITIES.every((c) => all.includes(c)))
    return { hostConfig: { Privileged: true }, securityOpt: [] };
  const set = buildCapabilities(caps, privileged, all).bounding;
  return {
    hostConfig: {
      Privileged: false,
      CapDrop: ["ALL"],
      CapAdd: set,
      ...(privileged && { MaskedPaths: [], ReadonlyPaths: [] }),
    },
    securityOpt: privileged ? ["seccomp=unconfined", "apparmor=unconfined"] : [],
  };
}

export interface DockerResources {
  CpuShares?: number;
  CpuQuota?: number;
  CpuPeriod?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Memory?: number;
  MemorySwap?: number;
}

/** CRI resources as Docker's resource fields (also the body of POST /containers/{id}/update). */
export function dockerResources(r: LinuxContainerResources | undefined): DockerResources {
  const res = buildResources(r);
  const out: DockerResources = {};
  if (res.cpu?.shares !== undefined) out.CpuShares = Number(res.cpu.shares);
  if (res.cpu?.quota !== undefined) out.CpuQuota = Number(res.cpu.quota);
  if (res.cpu?.period !== undefined) out.CpuPeriod = Number(res.cpu.period);
  if (res.cpu?.cpus !== undefined) out.CpusetCpus = res.cpu.cpus;
  if (res.cpu?.mems !== undefined) out.CpusetMems = res.cpu.mems;
  if (res.memory?.limit !== undefined) out.Memory = Number(res.memory.limit);
  if (res.memory?.swap !== undefined) out.MemorySwap = Number(res.memory.swap);
  return out;
}

const PROPAGATION: Record<number, string> = {
  [MountPropagation.PROPAGATION_PRIVATE]: "rprivate",
  [MountPropagation.PROPAGATION_HOST_TO_CONTAINER]: "rslave",
  [MountPropagation.PROPAGATION_BIDIRECTIONAL]: "rshared",
};

async function seccompOpt(config: ContainerConfig, useDefaultWhenEmpty: boolean): Promise<string[]> {
  const sc = config.linux?.securityContext;
  if (sc?.privileged) return [];
  const choice = selectSeccomp(
    sc?.seccomp,
    sc?.seccompProfilePath ?? "",
    useDefaultWhenEmpty ? { kind: "runtime-default" } : { kind: "unconfined" },
  );
  if (choice.kind === "unconfined") return ["seccomp=unconfined"];
  if (choice.kind === "runtime-default") return []; // Docker's own default profile
  const path = localhostProfilePath(choice.ref, undefined);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw invalidArgument(`seccomp profile ${path} cannot be read: ${(err as Error).message}`, err);
  }
  return [`seccomp=${text}`];
}

function apparmorOpt(config: ContainerConfig): string[] {
  const sc = config.linux?.securityContext;
  const choice = selectApparmor(sc?.apparmor, sc?.apparmorProfile ?? "");
  if (choice.kind === "unconfined") return ["apparmor=unconfined"];
  if (choice.kind === "localhost") return [`apparmor=${choice.ref}`];
  return [];
}

function user(config: ContainerConfig): string {
  const sc = config.linux?.securityContext;
  const name = sc?.runAsUser ? String(sc.runAsUser.value) : (sc?.runAsUsername ?? "");
  const group = sc?.runAsGroup ? `:${sc.runAsGroup.value}` : "";
  if (name === "" && group !== "") throw invalidArgument("run_as_group needs run_as_user or run_as_username");
  return `${name}${group}`;
}

/** `container:<id>` for a namespace shared with the sandbox, "host" for the node's. */
function pidMode(config: ContainerConfig, sandboxId: string, pod: PodSandboxConfig): string {
  const mode =
    config.linux?.securityContext?.namespaceOptions?.pid ??
    pod.linux?.securityContext?.namespaceOptions?.pid ??
    NamespaceMode.CONTAINER;
  if (mode === NamespaceMode.NODE) return "host";
  if (mode === NamespaceMode.POD) return `container:${sandboxId}`;
  if (mode === NamespaceMode.TARGET) {
    const target = config.linux?.securityContext?.namespaceOptions?.targetId ?? "";
    if (target === "") throw invalidArgument("pid namespace mode TARGET needs a target_id");
    return `container:${target}`;
  }
  return "";
}

export interface CreateBodyOptions {
  sandboxId: string;
  pod: PodSandboxConfig;
  imageId: string;
  labels: Record<string, string>;
  cgroupParent: string;
  seccompUseDefaultWhenEmpty: boolean;
  oomScoreAdjMin: number;
}

export async function containerCreateBody(
  config: ContainerConfig,
  o: CreateBodyOptions,
): Promise<Record<string, unknown>> {
  const sc = config.linux?.securityContext;
  const privileged = sc?.privileged === true;
  if (privileged && !o.pod.linux?.securityContext?.privileged)
    throw invalidArgument("a privileged container needs a privileged pod sandbox");
  const priv = await privilegeFields(privileged, sc?.capabilities);
  const hostIpc = o.pod.linux?.securityContext?.namespaceOptions?.ipc === NamespaceMode.NODE;
  const resources = config.linux?.resources;
  const securityOpt = [
    ...(privileged
      ? priv.securityOpt
      : [...(await seccompOpt(config, o.seccompUseDefaultWhenEmpty)), ...apparmorOpt(config)]),
    ...(sc?.noNewPrivs ? ["no-new-privileges"] : []),
  ];
  const hostConfig: Record<string, unknown> = {
    Binds: config.mounts.map((m) => {
      const opts = [m.readonly ? "ro" : "rw", PROPAGATION[m.propagation] ?? "rprivate"];
      return `${m.hostPath}:${m.containerPath}:${opts.join(",")}`;
    }),
    NetworkMode: `container:${o.sandboxId}`,
    IpcMode: hostIpc ? "host" : `container:${o.sandboxId}`,
    PidMode: pidMode(config, o.sandboxId, o.pod),
    ...priv.hostConfig,
    ReadonlyRootfs: sc?.readonlyRootfs === true,
    GroupAdd: (sc?.supplementalGroups ?? []).map(String),
    SecurityOpt: securityOpt,
    CgroupParent: o.cgroupParent,
    Devices: (config.devices ?? []).map((d) => ({
      PathOnHost: d.hostPath,
      PathInContainer: d.containerPath,
      CgroupPermissions: d.permissions || "rwm",
    })),
    ...dockerResources(resources),
    ...(resources?.oomScoreAdj !== undefined &&
      resources.oomScoreAdj !== 0n && {
        OomScoreAdj: clampOomScoreAdj(resources.oomScoreAdj, o.oomScoreAdjMin),
      }),
    ...(!privileged && sc?.maskedPaths?.length && { MaskedPaths: sc.maskedPaths }),
    ...(!privileged && sc?.readonlyPaths?.length && { ReadonlyPaths: sc.readonlyPaths }),
    LogConfig: { Type: "json-file", Config: {} },
    RestartPolicy: { Name: "no" },
  };
  return {
    Image: o.imageId,
    ...(config.command.length > 0 && { Entrypoint: config.command }),
    ...(config.args.length > 0 && { Cmd: config.args }),
    Env: config.envs.map((e) => `${e.key}=${e.value}`),
    WorkingDir: config.workingDir,
    User: user(config),
    Tty: config.tty,
    OpenStdin: config.stdin,
    StdinOnce: config.stdinOnce,
    AttachStdin: config.stdin,
    AttachStdout: false,
    AttachStderr: false,
    Labels: o.labels,
    HostConfig: hostConfig,
  };
}
