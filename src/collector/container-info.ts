/** What discovery knows about a container: identity, Kubernetes names, labels, env, log. */
export interface ContainerInfo {
  id: string;
  /** The Kubernetes container name (label io.kubernetes.container.name, else metadata). */
  name: string;
  podName: string;
  namespace: string;
  podUid: string;
  podSandboxId: string;
  image: string;
  /** The container's own labels (the CRI labels). */
  labels: Record<string, string>;
  /** The pod's labels (Kubernetes labels). */
  k8sLabels: Record<string, string>;
  env: Record<string, string>;
  /** Absolute path of its CRI log ("" when it has none). */
  logPath: string;
  /** The log's format: CRI (conmon, the kubelet) unless the runtime is Docker (json-file). */
  logFormat?: "cri" | "docker-json";
  state: "created" | "running" | "exited" | "unknown";
  /** The container's root filesystem as seen from the host (input_file in containers). */
  rootfs: string;
  /** Bind mounts: container path → host path. */
  mounts: Array<{ destination: string; source: string }>;
}

/** The record tags iLogtail gives container output. */
export function containerTags(c: ContainerInfo): Record<string, string> {
  return {
    _container_name_: c.name,
    _pod_name_: c.podName,
    _namespace_: c.namespace,
    _pod_uid_: c.podUid,
    _image_name_: c.image,
    _container_id_: c.id,
  };
}
