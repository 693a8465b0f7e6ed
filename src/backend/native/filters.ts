/** Matching rules shared by ListPodSandbox, ListContainers and the stats lists. */
import type { ContainerRecord } from "../../container/container-manager.js";
import type { PodRecord } from "../../pod/sandbox-manager.js";

/** Every selector label must be present with the same value (kubelet's label selectors). */
export function matchesLabels(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** An empty filter id matches everything; otherwise the full id or a prefix of it. */
export function matchesId(filterId: string | undefined, id: string): boolean {
  return !filterId || id.startsWith(filterId);
}

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
