import { join } from "node:path";
import {
  ContainerConfig,
  NamespaceMode,
  PodSandboxConfig,
  SecurityProfile_ProfileType,
} from "../api/gen/runtime/v1/api.js";
import { defaultConflist } from "../network/default-conflist.js";

export const BRIDGE = "berthbench0";
export const SUBNET = "10.253.0.0/16";
/** cgroupfs parent of every pod and container (both runtimes), removed at the end. */
export const CGROUP_PARENT = "/berthbench";
export const CGROUP_ROOT = "/sys/fs/cgroup";
export const NETWORK_NAME = "berth-bench";
export const POD_NAMESPACE = "berth-bench";

export function conflist(ipamDir: string): string {
  const list = defaultConflist({
    name: NETWORK_NAME,
    bridge: BRIDGE,
    subnet: SUBNET,
    dataDir: ipamDir,
    promiscMode: true,
    bandwidth: false,
  });
  return `${JSON.stringify(list, null, 2)}\n`;
}

/** What kubelet would send, minus what neither runtime needs: pid namespace per container. */
export function podConfig(name: string, uid: string, logRoot: string): PodSandboxConfig {
  return PodSandboxConfig.fromPartial({
    metadata: { name, namespace: POD_NAMESPACE, uid, attempt: 0 },
    hostname: name,
    logDirectory: join(logRoot, `${POD_NAMESPACE}_${name}_${uid}`),
    labels: { "berth-bench": "pod", "io.kubernetes.pod.name": name },
    linux: {
      cgroupParent: CGROUP_PARENT,
      securityContext: {
        namespaceOptions: {
          network: NamespaceMode.POD,
          pid: NamespaceMode.CONTAINER,
          ipc: NamespaceMode.POD,
        },
      },
    },
  });
}

export function containerConfig(image: string): ContainerConfig {
  return ContainerConfig.fromPartial({
    metadata: { name: "sleeper", attempt: 0 },
    image: { image },
    command: ["sleep", "3600"],
    logPath: "sleeper/0.log",
    labels: { "berth-bench": "container" },
    linux: {
      securityContext: {
        namespaceOptions: {
          network: NamespaceMode.POD,
          pid: NamespaceMode.CONTAINER,
          ipc: NamespaceMode.POD,
        },
        // Named, as the kubelet does when a cluster wants it: neither runtime applies a profile
        // to a container that names none. The filter costs runc ~18 ms per start and exec here.
        seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault },
      },
    },
  });
}
