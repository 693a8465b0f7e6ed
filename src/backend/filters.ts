/** The CRI's id and label-selector matching, the same for every backend's list calls. */

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
