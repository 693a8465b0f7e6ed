/**
 * `pods` and `ps`: crictl's filters (name regexp, state, labels, pod, image, id, latest, a
 * positional name) and outputs (table, wide, json, yaml, go-template). Unknown filter values are
 * errors, never ignored.
 */
import {
  type Container,
  ContainerState,
  type PodSandbox,
  PodSandboxState,
} from "../api/gen/runtime/v1/api.js";
import type { CommandContext, Flags } from "./context.js";
import { list, str } from "./context.js";
import { UsageError } from "./errors.js";
import { table } from "./format.js";
import { humanize } from "./humanize.js";
import { outputFormat, printStructured } from "./output.js";
import { listPods, pick } from "./resolve.js";

const short = (id: string) => id.slice(0, 13);

export function ago(ns: bigint, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Number(ns / 1_000_000n)) / 1000));
  const unit = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"} ago`;
  if (s < 60) return unit(s, "second");
  if (s < 3600) return unit(Math.round(s / 60), "minute");
  if (s < 86400) return unit(Math.round(s / 3600), "hour");
  return unit(Math.round(s / 86400), "day");
}

/** `K=V` label selectors as a map (crictl's --label). */
export function labelSelector(flags: Flags): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list(flags, "label")) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid --label "${l}": want KEY=VALUE`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

function nameRegexp(flags: Flags, positional: string | undefined): RegExp | undefined {
  const name = str(flags, "name") ?? positional;
  if (name === undefined) return undefined;
  try {
    return new RegExp(name);
  } catch (err) {
    throw new UsageError(`invalid --name regular expression: ${(err as Error).message}`);
  }
}

const POD_STATE: Record<string, PodSandboxState> = {
  ready: PodSandboxState.SANDBOX_READY,
  notready: PodSandboxState.SANDBOX_NOTREADY,
};
const CONTAINER_STATE: Record<string, ContainerState> = {
  created: ContainerState.CONTAINER_CREATED,
  running: ContainerState.CONTAINER_RUNNING,
  exited: ContainerState.CONTAINER_EXITED,
  unknown: ContainerState.CONTAINER_UNKNOWN,
};

function stateFilter<T>(flags: Flags, states: Record<string, T>): T | undefined {
  const s = str(flags, "state");
  if (s === undefined) return undefined;
  const key = s
    .toLowerCase()
    .replace(/^(sandbox_|container_)/, "")
    .replace(/_/g, "");
  const v = states[key];
  if (v === undefined) throw new UsageError(`invalid --state "${s}": want ${Object.keys(states).join(", ")}`);
  return v;
}

function matchesLabels(labels: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

function latest<T extends { createdAt: bigint }>(items: T[], flags: Flags): T[] {
  if (!flags["latest"] || items.length === 0) return items;
  return [items.reduce((a, b) => (b.createdAt > a.createdAt ? b : a))];
}

export function filterPods(items: PodSandbox[], flags: Flags, positional?: string): PodSandbox[] {
  const re = nameRegexp(flags, positional);
  const state = stateFilter(flags, POD_STATE);
  const labels = labelSelector(flags);
  const ns = str(flags, "namespace");
  const id = str(flags, "id");
  return latest(
    items.filter(
      (p) =>
        (!re || re.test(p.metadata?.name ?? "")) &&
        (state === undefined || p.state === state) &&
        matchesLabels(p.labels, labels) &&
        (ns === undefined || p.metadata?.namespace === ns) &&
        (id === undefined || p.id.startsWith(id)),
    ),
    flags,
  ).sort((a, b) => Number(b.createdAt - a.createdAt));
}

export function filterContainers(
  items: Container[],
  flags: Flags,
  positional?: string,
  podId?: string,
): Container[] {
  const re = nameRegexp(flags, positional);
  const state = stateFilter(flags, CONTAINER_STATE);
  const labels = labelSelector(flags);
  const image = str(flags, "image");
  const id = str(flags, "id");
  return latest(
    items.filter(
      (c) =>
        (!re || re.test(c.metadata?.name ?? "")) &&
        (state !== undefined
          ? c.state === state
          : flags["all"] || flags["latest"] || c.state === ContainerState.CONTAINER_RUNNING) &&
        matchesLabels(c.labels, labels) &&
        (podId === undefined || c.podSandboxId === podId) &&
        (image === undefined ||
          c.image?.image === image ||
          c.imageRef === image ||
          (c.image?.image ?? "").includes(image)) &&
        (id === undefined || c.id.startsWith(id)),
    ),
    flags,
  ).sort((a, b) => Number(b.createdAt - a.createdAt));
}

const labelText = (l: Record<string, string>) =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export const pods = async (ctx: CommandContext): Promise<void> => {
  const format = outputFormat(ctx.flags["output"], ["table", "wide", "json", "yaml", "go-template"]);
  const items = filterPods(await listPods(ctx), ctx.flags, ctx.args[0]);
  if (printStructured(format, { items: items.map((p) => humanize(p, "pod")) }, ctx.out)) return;
  if (ctx.flags["quiet"]) return items.length ? ctx.out(items.map((p) => p.id).join("\n")) : undefined;
  const wide = format === "wide";
  ctx.out(
    table(
      ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME", ...(wide ? ["LABELS"] : [])],
      items.map((p) => [
        wide ? p.id : short(p.id),
        ago(p.createdAt),
        p.state === PodSandboxState.SANDBOX_READY ? "Ready" : "NotReady",
        p.metadata?.name ?? "",
        p.metadata?.namespace ?? "",
        String(p.metadata?.attempt ?? 0),
        p.runtimeHandler || "(default)",
        ...(wide ? [labelText(p.labels)] : []),
      ]),
    ),
  );
};

const C_STATES = ["Created", "Running", "Exited", "Unknown"];

export const ps = async (ctx: CommandContext): Promise<void> => {
  const format = outputFormat(ctx.flags["output"], ["table", "wide", "json", "yaml", "go-template"]);
  const podRef = str(ctx.flags, "pod");
  const allPods = await listPods(ctx);
  const podId = podRef === undefined ? undefined : pick(allPods, podRef, "pod").id;
  const { containers } = await ctx.client.call("listContainers", {});
  const shown = filterContainers(containers, ctx.flags, ctx.args[0], podId);
  if (printStructured(format, { containers: shown.map((c) => humanize(c, "container")) }, ctx.out)) return;
  if (ctx.flags["quiet"]) return shown.length ? ctx.out(shown.map((c) => c.id).join("\n")) : undefined;
  const podName = new Map(allPods.map((p) => [p.id, p.metadata?.name ?? ""]));
  const wide = format === "wide";
  ctx.out(
    table(
      [
        "CONTAINER",
        "IMAGE",
        "CREATED",
        "STATE",
        "NAME",
        "ATTEMPT",
        "POD ID",
        "POD",
        ...(wide ? ["LABELS"] : []),
      ],
      shown.map((c) => [
        wide ? c.id : short(c.id),
        c.image?.image ?? "",
        ago(c.createdAt),
        C_STATES[c.state] ?? "?",
        c.metadata?.name ?? "",
        String(c.metadata?.attempt ?? 0),
        wide ? c.podSandboxId : short(c.podSandboxId),
        podName.get(c.podSandboxId) ?? "",
        ...(wide ? [labelText(c.labels)] : []),
      ]),
    ),
  );
};
