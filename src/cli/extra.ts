/** `update` (container resources), `events` (the CRI event stream) and `timeline` (start-up phases). */
import type { Command, CommandContext } from "./context.js";
import { str } from "./context.js";
import { CliError, UsageError } from "./errors.js";
import { rfc3339 } from "./humanize.js";
import { outputFormat } from "./output.js";
import { listContainers, resolveContainer, resolvePod } from "./resolve.js";

/** `64m`, `1g`, `512k` or plain bytes. */
export function parseBytes(s: string): bigint {
  const m = /^(\d+)([kmg]?)b?$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid size "${s}": want BYTES or a number with k, m or g`);
  const mult = { "": 1n, k: 1024n, m: 1024n ** 2n, g: 1024n ** 3n }[m[2]!.toLowerCase()] ?? 1n;
  return BigInt(m[1]!) * mult;
}

const int = (s: string, what: string) => {
  if (!/^-?\d+$/.test(s)) throw new UsageError(`invalid --${what} "${s}": want an integer`);
  return BigInt(s);
};

export const update: Command = async (ctx) => {
  if (ctx.args.length === 0) throw new UsageError("missing CONTAINER");
  const f = ctx.flags;
  const linux: Record<string, unknown> = {};
  const shares = str(f, "cpu-shares");
  const quota = str(f, "cpu-quota");
  const period = str(f, "cpu-period");
  const memory = str(f, "memory");
  if (shares !== undefined) linux["cpuShares"] = int(shares, "cpu-shares");
  if (quota !== undefined) linux["cpuQuota"] = int(quota, "cpu-quota");
  if (period !== undefined) linux["cpuPeriod"] = int(period, "cpu-period");
  if (memory !== undefined) linux["memoryLimitInBytes"] = parseBytes(memory);
  const cpus = str(f, "cpuset-cpus");
  const mems = str(f, "cpuset-mems");
  if (cpus !== undefined) linux["cpusetCpus"] = cpus;
  if (mems !== undefined) linux["cpusetMems"] = mems;
  if (Object.keys(linux).length === 0)
    throw new UsageError("nothing to update: give at least one resource option");
  for (const ref of ctx.args) {
    const c = await resolveContainer(ctx, ref);
    // The runtime replaces the whole set: start from what is in force.
    const { status } = await ctx.client.call("containerStatus", { containerId: c.id });
    await ctx.client.call("updateContainerResources", {
      containerId: c.id,
      linux: { ...(status?.resources?.linux ?? {}), ...linux },
    });
    ctx.out(c.id);
  }
};

const EVENT_TYPES = ["CREATED", "STARTED", "STOPPED", "DELETED"];

export const events: Command = async (ctx) => {
  const format = outputFormat(ctx.flags["output"], ["table", "json"]);
  const { GetEventsRequest } = await import("../api/gen/runtime/v1/api.js");
  const stream = ctx.client.runtime.getContainerEvents(GetEventsRequest.fromPartial({}));
  const stop = () => stream.cancel();
  process.once("SIGINT", stop);
  await new Promise<void>((resolve, reject) => {
    stream.on(
      "data",
      (e: {
        containerId: string;
        containerEventType: number;
        createdAt: bigint;
        podSandboxStatus?: { id: string; metadata?: { name: string } };
      }) => {
        const type = EVENT_TYPES[e.containerEventType] ?? String(e.containerEventType);
        const time = rfc3339(e.createdAt) ?? "";
        if (format === "json")
          ctx.out(
            JSON.stringify({
              time,
              type,
              containerId: e.containerId,
              podSandboxId: e.podSandboxStatus?.id ?? "",
              pod: e.podSandboxStatus?.metadata?.name ?? "",
            }),
          );
        else
          ctx.out(
            `${time}  ${type.padEnd(8)} ${e.containerId.slice(0, 13)}  pod ${e.podSandboxStatus?.metadata?.name ?? ""}`,
          );
      },
    );
    stream.on("error", (err: { code?: number }) => (err.code === 1 ? resolve() : reject(err)));
    stream.on("end", () => resolve());
  });
  process.off("SIGINT", stop);
};

interface Span {
  phase: string;
  startMs: number;
  durationMs: number;
}

/** Horizontal bars for spans on one time axis, `width` columns for the axis. */
export function drawTimeline(rows: { label: string; span: Span }[], width: number): string {
  if (rows.length === 0) return "no timeline recorded";
  const t0 = Math.min(...rows.map((r) => r.span.startMs));
  const t1 = Math.max(...rows.map((r) => r.span.startMs + r.span.durationMs));
  const total = Math.max(t1 - t0, 1);
  const labelW = Math.max(...rows.map((r) => r.label.length));
  const axis = Math.max(10, width - labelW - 14);
  const lines = rows.map(({ label, span }) => {
    const from = Math.floor(((span.startMs - t0) / total) * axis);
    const len = Math.max(1, Math.round((span.durationMs / total) * axis));
    const bar = " ".repeat(from) + "█".repeat(Math.min(len, axis - from));
    return `${label.padEnd(labelW)} │${bar.padEnd(axis)}│ ${span.durationMs.toFixed(1).padStart(7)} ms`;
  });
  return [...lines, `${" ".repeat(labelW)} 0${" ".repeat(axis - 1)}${total.toFixed(0)} ms`].join("\n");
}

async function spansOf(
  ctx: CommandContext,
  target: { podSandboxId: string } | { containerId: string },
): Promise<Span[]> {
  const r =
    "podSandboxId" in target
      ? await ctx.client.call("podSandboxStatus", { ...target, verbose: true })
      : await ctx.client.call("containerStatus", { ...target, verbose: true });
  try {
    const info = JSON.parse(r.info["info"] ?? "{}") as { timeline?: Span[] };
    return info.timeline ?? [];
  } catch {
    return [];
  }
}

export const timeline: Command = async (ctx) => {
  const ref = ctx.args[0];
  if (!ref) throw new UsageError("missing POD");
  const pod = await resolvePod(ctx, ref);
  const rows: { label: string; span: Span }[] = [];
  for (const s of await spansOf(ctx, { podSandboxId: pod.id }))
    rows.push({ label: `pod ${s.phase}`, span: s });
  const containers = (await listContainers(ctx)).filter((c) => c.podSandboxId === pod.id);
  for (const c of containers.sort((a, b) => Number(a.createdAt - b.createdAt)))
    for (const s of await spansOf(ctx, { containerId: c.id }))
      rows.push({ label: `${c.metadata?.name ?? c.id.slice(0, 13)} ${s.phase}`, span: s });
  if (rows.length === 0)
    throw new CliError(`the runtime recorded no start-up timeline for pod ${pod.id.slice(0, 13)}`);
  rows.sort((a, b) => a.span.startMs - b.span.startMs);
  ctx.out(`pod ${pod.metadata?.name ?? ""} (${pod.id.slice(0, 13)})`);
  ctx.out(drawTimeline(rows, process.stdout.columns || 100));
};
