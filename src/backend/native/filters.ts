/** Matching rules shared by ListPodSandbox, ListContainers and the stats lists. */
import type { ContainerRecord } from "../../container/container-manager.js";
import type { PodRecord } from "../../pod/sandbox-manager.js";
import { matchesId, matchesLabels } from "../filters.js";

/** Fully created containers matching the id prefix, pod id prefix and label selector. */
export function selectContainers(
  list: readonly ContainerRecord[],
  f: { id?: string; podSandboxId?: string; labelSelector?: Record<string, string> } | undefined,
): ContainerRecord[] {
  return list.filter(
    (c) =>
      c.phase === "created" &&
      matchesId(f?.id, c.id) &&
      matchesId(f?.podSandboxId, c.podId) &&
      matchesLabels(f?.labelSelector, c.labels),
  );
}

/** Fully created pods matching the id prefix and label selector. */
export function selectPods(
  list: readonly PodRecord[],
  f: { id?: string; labelSelector?: Record<string, string> } | undefined,
): PodRecord[] {
  return list.filter(
    (p) => p.phase === "ready" && matchesId(f?.id, p.id) && matchesLabels(f?.labelSelector, p.labels),
  );
}
