/** `inspect` / `inspectp`: status with enum names, RFC 3339 times and the verbose info parsed. */
import type { Command } from "./context.js";
import { UsageError } from "./errors.js";
import { humanize } from "./humanize.js";
import { outputFormat, printStructured } from "./output.js";
import { resolveContainer, resolvePod } from "./resolve.js";

export const inspect: Command = async (ctx) => {
  const ref = ctx.args[0];
  if (!ref) throw new UsageError("missing CONTAINER");
  const c = await resolveContainer(ctx, ref);
  const r = await ctx.client.call("containerStatus", { containerId: c.id, verbose: true });
  printStructured(
    outputFormat(ctx.flags["output"] ?? "json", ["json", "yaml", "go-template"]),
    humanize(r, "container"),
    ctx.out,
  );
};

export const inspectp: Command = async (ctx) => {
  const ref = ctx.args[0];
  if (!ref) throw new UsageError("missing POD");
  const p = await resolvePod(ctx, ref);
  const r = await ctx.client.call("podSandboxStatus", { podSandboxId: p.id, verbose: true });
  printStructured(
    outputFormat(ctx.flags["output"] ?? "json", ["json", "yaml", "go-template"]),
    humanize(r, "pod"),
    ctx.out,
  );
};
