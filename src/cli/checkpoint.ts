/**
 * berth checkpoint CONTAINER --export FILE: a checkpoint archive of a running container (CRI
 * CheckpointContainer; it keeps running). berth checkpoint restore ARCHIVE --pod POD: a new
 * container in POD restored from the archive (CreateContainer with the archive as its image,
 * as CRI-O and containerd take it, then StartContainer).
 */
import { resolve } from "node:path";
import type { Command } from "./context.js";
import { str } from "./context.js";
import { CliError, describeError, UsageError } from "./errors.js";
import { resolveContainer, resolvePod } from "./resolve.js";

export const checkpoint: Command = async (ctx) => {
  const ref = ctx.args[0];
  if (!ref) throw new UsageError("missing CONTAINER");
  const file = str(ctx.flags, "export");
  if (!file) throw new UsageError("missing --export FILE (where the checkpoint archive goes)");
  const c = await resolveContainer(ctx, ref);
  // The runtime writes the file: a relative path means the one from here, on the same host.
  const location = resolve(file);
  await ctx.client.call("checkpointContainer", {
    containerId: c.id,
    location,
    timeout: BigInt(Math.ceil(ctx.timeoutS ?? 0)),
  });
  ctx.out(location);
};

export const restore: Command = async (ctx) => {
  const archive = ctx.args[0];
  if (!archive) throw new UsageError("missing ARCHIVE");
  const podRef = str(ctx.flags, "pod");
  if (!podRef) throw new UsageError("missing --pod POD (the pod to restore the container into)");
  const pod = await resolvePod(ctx, podRef);
  const { containerId } = await ctx.client.call("createContainer", {
    podSandboxId: pod.id,
    // An empty name takes the checkpointed container's own.
    config: {
      metadata: { name: str(ctx.flags, "name") ?? "", attempt: 0 },
      image: { image: resolve(archive) },
    },
    sandboxConfig: { metadata: pod.metadata, labels: pod.labels, annotations: pod.annotations },
  });
  try {
    await ctx.client.call("startContainer", { containerId });
  } catch (err) {
    // The container exists (exited, with the restore's error as its message): say which it is.
    const why = describeError(err, ctx.endpoint, ctx.timeoutS).text;
    throw new CliError(`restoring container ${containerId} failed: ${why}`);
  }
  ctx.out(containerId);
};
