/**
 * The ContainerConfig a restore creates: the checkpointed container's own (from berth.dump),
 * on its base image, with what the CreateContainer request may change — its name and attempt,
 * log path, and labels and annotations on top of the original ones (as containerd carries
 * over the kubelet's name, hash and restart-count keys).
 */
import { ContainerConfig } from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import type { OpenedCheckpoint } from "./checkpoint-archive.js";

export const RESTORED_ANNOTATION = "io.berth.checkpoint.restored-from";
export const CHECKPOINTED_AT_ANNOTATION = "io.berth.checkpoint.checkpointed-at";

export function restoreConfig(opened: OpenedCheckpoint, request: ContainerConfig): ContainerConfig {
  let original: ContainerConfig;
  try {
    original = ContainerConfig.decode(Buffer.from(opened.berth.containerConfig, "base64"));
  } catch {
    throw invalidArgument("the checkpoint's container config (berth.dump) does not decode");
  }
  const archive = request.image?.image ?? "";
  const name = request.metadata?.name || original.metadata?.name || opened.config.name;
  return {
    ...original,
    metadata: { name, attempt: request.metadata?.attempt ?? 0 },
    image: {
      image: opened.config.rootfsImageRef || opened.config.rootfsImageName,
      annotations: {},
      userSpecifiedImage: opened.config.rootfsImage,
      runtimeHandler: "",
    },
    logPath: request.logPath || original.logPath,
    labels: { ...original.labels, ...request.labels },
    annotations: {
      ...original.annotations,
      ...request.annotations,
      [RESTORED_ANNOTATION]: archive,
      [CHECKPOINTED_AT_ANNOTATION]: opened.config.checkpointedTime,
    },
  };
}
