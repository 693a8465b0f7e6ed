/**
 * Pods and containers by what users type: a full id, a name, or an unambiguous id prefix
 * (docker's rule). Unknown is NotFound (exit 1), ambiguity an error listing the candidates.
 */
import type { Container, PodSandbox } from "../api/gen/runtime/v1/api.js";
import type { CommandContext } from "./context.js";
import { CliError } from "./errors.js";

export async function listPods(ctx: CommandContext): Promise<PodSandbox[]> {
  return (await ctx.client.call("listPodSandbox", {})).items;
}

export async function listContainers(ctx: CommandContext): Promise<Container[]> {
  return (await ctx.client.call("listContainers", {})).containers;
}

/** Picks the one item `ref` names: exact id, then exact name, then id prefix. */
export function pick<T extends { id: string; metadata?: { name: string } | undefined }>(
  items: T[],
  ref: string,
  kind: "pod" | "container",
): T {
  if (ref === "") throw new CliError(`empty ${kind} name or id`);
  const exact = items.find((i) => i.id === ref);
  if (exact) return exact;
  for (const hits of [
    items.filter((i) => i.metadata?.name === ref),
    items.filter((i) => i.id.startsWith(ref)),
  ]) {
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) {
      const ids = hits.map((h) => h.id.slice(0, 13)).join(", ");
      throw new CliError(`"${ref}" is ambiguous: it names ${hits.length} ${kind}s (${ids}); use a longer id`);
    }
  }
  throw new CliError(`no such ${kind}: ${ref} (NotFound)`);
}

export async function resolvePod(ctx: CommandContext, ref: string): Promise<PodSandbox> {
  return pick(await listPods(ctx), ref, "pod");
}

export async function resolveContainer(ctx: CommandContext, ref: string): Promise<Container> {
  return pick(await listContainers(ctx), ref, "container");
}
