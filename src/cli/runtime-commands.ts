/**
 * berth's pod and container commands: crictl's verbs (runp, create, start, stop, rm, stopp,
 * rmp, pods, ps, inspect, inspectp, exec, attach, port-forward, logs, stats, statsp) and a
 * docker-like `run`.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command, CommandContext } from "./commands.js";
import { UsageError } from "./commands.js";
import { humanSize, table, toJson } from "./format.js";
import { forwardPorts, parsePortPair, runInteractive } from "./streaming.js";

interface PodItem {
  id: string;
  metadata?: { name: string; namespace: string; attempt: number };
  state: number;
  createdAt: bigint;
  runtimeHandler: string;
}
interface ContainerItem {
  id: string;
  podSandboxId: string;
  metadata?: { name: string; attempt: number };
  image?: { image: string };
  state: number;
  createdAt: bigint;
}

interface UInt64Value {
  value: bigint;
}
interface CpuUsage {
  timestamp: bigint;
  usageCoreNanoSeconds?: UInt64Value;
  usageNanoCores?: UInt64Value;
}
interface ContainerStatsItem {
  attributes?: { id: string; metadata?: { name: string } };
  cpu?: CpuUsage;
  memory?: { workingSetBytes?: UInt64Value };
  writableLayer?: { usedBytes?: UInt64Value; inodesUsed?: UInt64Value };
}
interface PodStatsItem {
  attributes?: { id: string; metadata?: { name: string } };
  linux?: {
    cpu?: CpuUsage;
    memory?: { workingSetBytes?: UInt64Value };
    network?: { defaultInterface?: { rxBytes?: UInt64Value; txBytes?: UInt64Value } };
  };
}

/**
 * CPU % of one core per id, as crictl computes it: two samples `seconds` apart (the second is
 * the one shown); with 0 seconds, the runtime's own usage_nano_cores.
 */
async function sampleCpu<T extends { attributes?: { id: string } }>(
  ctx: CommandContext,
  list: () => Promise<T[]>,
  cpuOf: (s: T) => CpuUsage | undefined,
): Promise<{ stats: T[]; cpu: (s: T) => string }> {
  const flag = ctx.flags["seconds"];
  const seconds = flag === undefined ? 1 : Number(flag);
  if (!(seconds >= 0 && seconds <= 60)) throw new UsageError("--seconds must be from 0 to 60");
  const first = seconds > 0 ? await list() : [];
  if (seconds > 0) await new Promise((r) => setTimeout(r, seconds * 1000));
  const stats = await list();
  const before = new Map(first.map((s) => [s.attributes?.id ?? "", cpuOf(s)]));
  const cpu = (s: T) => {
    const now = cpuOf(s);
    if (seconds === 0) {
      const nano = now?.usageNanoCores?.value;
      return nano === undefined ? "-" : (Number(nano) / 1e7).toFixed(2);
    }
    const was = before.get(s.attributes?.id ?? "");
    const used = (now?.usageCoreNanoSeconds?.value ?? 0n) - (was?.usageCoreNanoSeconds?.value ?? 0n);
    const elapsed = (now?.timestamp ?? 0n) - (was?.timestamp ?? 0n);
    if (!was?.usageCoreNanoSeconds || elapsed <= 0n) return "-";
    return ((Number(used) / Number(elapsed)) * 100).toFixed(2);
  };
  return { stats, cpu };
}

/** A byte count as crictl shows it ("-" when unknown). */
function bytes(n: bigint | undefined): string {
  return n === undefined ? "-" : humanSize(Number(n));
}

const POD_STATES = ["Ready", "NotReady"];
const CONTAINER_STATES = ["Created", "Running", "Exited", "Unknown"];
const short = (id: string) => id.slice(0, 13);

function ago(ns: bigint): string {
  const s = Math.max(0, Math.round((Date.now() - Number(ns / 1_000_000n)) / 1000));
  const unit = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"} ago`;
  if (s < 60) return unit(s, "second");
  if (s < 3600) return unit(Math.round(s / 60), "minute");
  return unit(Math.round(s / 3600), "hour");
}

async function readJson(path: string | undefined, what: string): Promise<object> {
  if (!path) throw new UsageError(`missing ${what}`);
  try {
    return JSON.parse(await readFile(path, "utf8")) as object;
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

function arg(ctx: CommandContext, i: number, what: string): string {
  const v = ctx.args[i];
  if (!v) throw new UsageError(`missing ${what}`);
  return v;
}

/** Full id from a prefix or a pod/container name, the way crictl users type them. */
async function podId(ctx: CommandContext, ref: string): Promise<string> {
  const { items } = await ctx.client.runtimeCall<{ items: PodItem[] }>("listPodSandbox", {});
  const hit = items.filter((p) => p.id.startsWith(ref) || p.metadata?.name === ref);
  if (hit.length === 1) return hit[0]!.id;
  return ref;
}

async function containerId(ctx: CommandContext, ref: string): Promise<string> {
  const { containers } = await ctx.client.runtimeCall<{ containers: ContainerItem[] }>("listContainers", {});
  const hit = containers.filter((c) => c.id.startsWith(ref) || c.metadata?.name === ref);
  if (hit.length === 1) return hit[0]!.id;
  return ref;
}

/** Splits CRI log lines ("<time> <stream> <P|F> <text>") back into the output, joining P parts. */
export function decodeCriLog(text: string): string {
  let out = "";
  for (const line of text.split("\n")) {
    const m = /^\S+ (stdout|stderr) (P|F) (.*)$/s.exec(line); // s: content may hold \r (tty output)
    if (!m) continue;
    out += m[3] + (m[2] === "F" ? "\n" : "");
  }
  return out;
}

const run: Command = async (ctx) => {
  const image = arg(ctx, 0, "IMAGE");
  const command = ctx.args.slice(1);
  const name =
    typeof ctx.flags["name"] === "string" ? ctx.flags["name"] : `berth-${randomBytes(3).toString("hex")}`;
  const ports = typeof ctx.flags["publish"] === "string" ? [ctx.flags["publish"]] : [];
  const portMappings = ports.map((p) => {
    const m = /^(\d+):(\d+)(\/(tcp|udp))?$/.exec(p);
    if (!m) throw new UsageError(`bad --publish "${p}": want HOSTPORT:CONTAINERPORT[/tcp|udp]`);
    return { hostPort: Number(m[1]), containerPort: Number(m[2]), protocol: m[4] === "udp" ? 1 : 0 };
  });
  const logDirectory = join("/var/log/pods", `default_${name}_${name}`);
  const podConfig = {
    metadata: { name, namespace: "default", uid: randomBytes(8).toString("hex"), attempt: 0 },
    hostname: name,
    logDirectory,
    portMappings,
  };
  const pod = await ctx.client.runtimeCall<{ podSandboxId: string }>("runPodSandbox", { config: podConfig });
  const created = await ctx.client.runtimeCall<{ containerId: string }>("createContainer", {
    podSandboxId: pod.podSandboxId,
    config: {
      metadata: { name, attempt: 0 },
      image: { image },
      ...(command.length ? { command } : {}),
      logPath: `${name}.log`,
    },
    sandboxConfig: podConfig,
  });
  await ctx.client.runtimeCall("startContainer", { containerId: created.containerId });
  const st = await ctx.client.runtimeCall<{ status: { network?: { ip: string } } }>("podSandboxStatus", {
    podSandboxId: pod.podSandboxId,
  });
  ctx.out(
    `pod ${short(pod.podSandboxId)} (ip ${st.status.network?.ip || "host"}), container ${short(created.containerId)}`,
  );
};

export const runtimeCommands: Record<string, { summary: string; usage: string; run: Command }> = {
  run: {
    summary: "Run IMAGE in a new pod (docker-like): one pod, one container",
    usage: "run [--name NAME] [--publish HOSTPORT:PORT] IMAGE [-- COMMAND...]",
    run,
  },
  runp: {
    summary: "Run a pod sandbox from a PodSandboxConfig JSON file",
    usage: "runp [--runtime HANDLER] POD_CONFIG.json",
    run: async (ctx) => {
      const config = await readJson(ctx.args[0], "POD_CONFIG.json");
      const handler = typeof ctx.flags["runtime"] === "string" ? ctx.flags["runtime"] : "";
      const r = await ctx.client.runtimeCall<{ podSandboxId: string }>("runPodSandbox", {
        config,
        runtimeHandler: handler,
      });
      ctx.out(r.podSandboxId);
    },
  },
  create: {
    summary: "Create a container in a pod from JSON configs",
    usage: "create POD CONTAINER_CONFIG.json POD_CONFIG.json",
    run: async (ctx) => {
      const pod = await podId(ctx, arg(ctx, 0, "POD"));
      const config = await readJson(ctx.args[1], "CONTAINER_CONFIG.json");
      const sandboxConfig = await readJson(ctx.args[2], "POD_CONFIG.json");
      const r = await ctx.client.runtimeCall<{ containerId: string }>("createContainer", {
        podSandboxId: pod,
        config,
        sandboxConfig,
      });
      ctx.out(r.containerId);
    },
  },
  start: {
    summary: "Start created containers",
    usage: "start CONTAINER...",
    run: async (ctx) => {
      arg(ctx, 0, "CONTAINER");
      for (const c of ctx.args) {
        const id = await containerId(ctx, c);
        await ctx.client.runtimeCall("startContainer", { containerId: id });
        ctx.out(id);
      }
    },
  },
  stop: {
    summary: "Stop running containers",
    usage: "stop [--timeout-seconds N] CONTAINER...",
    run: async (ctx) => {
      arg(ctx, 0, "CONTAINER");
      const timeout = Number(ctx.flags["timeout-seconds"] ?? 10);
      for (const c of ctx.args) {
        const id = await containerId(ctx, c);
        await ctx.client.runtimeCall("stopContainer", { containerId: id, timeout });
        ctx.out(id);
      }
    },
  },
  rm: {
    summary: "Remove containers",
    usage: "rm CONTAINER...",
    run: async (ctx) => {
      arg(ctx, 0, "CONTAINER");
      for (const c of ctx.args) {
        const id = await containerId(ctx, c);
        await ctx.client.runtimeCall("removeContainer", { containerId: id });
        ctx.out(id);
      }
    },
  },
  stopp: {
    summary: "Stop pods (and their containers)",
    usage: "stopp POD...",
    run: async (ctx) => {
      arg(ctx, 0, "POD");
      for (const p of ctx.args) {
        const id = await podId(ctx, p);
        await ctx.client.runtimeCall("stopPodSandbox", { podSandboxId: id });
        ctx.out(`Stopped sandbox ${id}`);
      }
    },
  },
  rmp: {
    summary: "Remove pods (and their containers)",
    usage: "rmp POD...",
    run: async (ctx) => {
      arg(ctx, 0, "POD");
      for (const p of ctx.args) {
        const id = await podId(ctx, p);
        await ctx.client.runtimeCall("removePodSandbox", { podSandboxId: id });
        ctx.out(`Removed sandbox ${id}`);
      }
    },
  },
  pods: {
    summary: "List pods",
    usage: "pods [-q] [-o json]",
    run: async (ctx) => {
      const { items } = await ctx.client.runtimeCall<{ items: PodItem[] }>("listPodSandbox", {});
      if (ctx.flags["o"] === "json") return ctx.out(toJson({ items }));
      if (ctx.flags["q"]) return ctx.out(items.map((p) => p.id).join("\n"));
      ctx.out(
        table(
          ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"],
          items.map((p) => [
            short(p.id),
            ago(p.createdAt),
            POD_STATES[p.state] ?? "?",
            p.metadata?.name ?? "",
            p.metadata?.namespace ?? "",
            String(p.metadata?.attempt ?? 0),
            p.runtimeHandler,
          ]),
        ),
      );
    },
  },
  ps: {
    summary: "List containers (-a: also exited ones)",
    usage: "ps [-a] [-q] [-o json]",
    run: async (ctx) => {
      const { containers } = await ctx.client.runtimeCall<{ containers: ContainerItem[] }>(
        "listContainers",
        {},
      );
      const shown = ctx.flags["a"] ? containers : containers.filter((c) => c.state === 1);
      if (ctx.flags["o"] === "json") return ctx.out(toJson({ containers: shown }));
      if (ctx.flags["q"]) return ctx.out(shown.map((c) => c.id).join("\n"));
      ctx.out(
        table(
          ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID"],
          shown.map((c) => [
            short(c.id),
            c.image?.image ?? "",
            ago(c.createdAt),
            CONTAINER_STATES[c.state] ?? "?",
            c.metadata?.name ?? "",
            String(c.metadata?.attempt ?? 0),
            short(c.podSandboxId),
          ]),
        ),
      );
    },
  },
  stats: {
    summary:
      "Show containers' resource usage (CPU as a share of one core, memory working set, writable layer)",
    usage: "stats [-a] [-o json] [--seconds N] [CONTAINER]",
    run: async (ctx) => {
      const ref = ctx.args[0];
      const filter = ref ? { id: await containerId(ctx, ref) } : {};
      const list = async () =>
        (await ctx.client.runtimeCall<{ stats: ContainerStatsItem[] }>("listContainerStats", { filter }))
          .stats;
      if (ctx.flags["o"] === "json") return ctx.out(toJson({ stats: await list() }));
      const { stats, cpu } = await sampleCpu(ctx, list, (s) => s.cpu);
      const { containers } = await ctx.client.runtimeCall<{ containers: ContainerItem[] }>(
        "listContainers",
        {},
      );
      const running = new Set(containers.filter((c) => c.state === 1).map((c) => c.id));
      const shown = ctx.flags["a"] || ref ? stats : stats.filter((s) => running.has(s.attributes?.id ?? ""));
      ctx.out(
        table(
          ["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"],
          shown.map((s) => [
            short(s.attributes?.id ?? ""),
            s.attributes?.metadata?.name ?? "",
            cpu(s),
            bytes(s.memory?.workingSetBytes?.value),
            bytes(s.writableLayer?.usedBytes?.value),
            String(s.writableLayer?.inodesUsed?.value ?? 0n),
          ]),
        ),
      );
    },
  },
  statsp: {
    summary: "Show pods' resource usage (CPU, memory working set, network bytes)",
    usage: "statsp [-o json] [--seconds N] [POD]",
    run: async (ctx) => {
      const ref = ctx.args[0];
      const filter = ref ? { id: await podId(ctx, ref) } : {};
      const list = async () =>
        (await ctx.client.runtimeCall<{ stats: PodStatsItem[] }>("listPodSandboxStats", { filter })).stats;
      if (ctx.flags["o"] === "json") return ctx.out(toJson({ stats: await list() }));
      const { stats, cpu } = await sampleCpu(ctx, list, (s) => s.linux?.cpu);
      ctx.out(
        table(
          ["POD", "NAME", "CPU %", "MEM", "RX", "TX"],
          stats.map((s) => {
            const iface = s.linux?.network?.defaultInterface;
            return [
              short(s.attributes?.id ?? ""),
              s.attributes?.metadata?.name ?? "",
              cpu(s),
              bytes(s.linux?.memory?.workingSetBytes?.value),
              bytes(iface?.rxBytes?.value),
              bytes(iface?.txBytes?.value),
            ];
          }),
        ),
      );
    },
  },
  inspect: {
    summary: "Show a container's status (JSON)",
    usage: "inspect CONTAINER",
    run: async (ctx) => {
      const id = await containerId(ctx, arg(ctx, 0, "CONTAINER"));
      ctx.out(toJson(await ctx.client.runtimeCall("containerStatus", { containerId: id, verbose: true })));
    },
  },
  inspectp: {
    summary: "Show a pod's status (JSON)",
    usage: "inspectp POD",
    run: async (ctx) => {
      const id = await podId(ctx, arg(ctx, 0, "POD"));
      ctx.out(toJson(await ctx.client.runtimeCall("podSandboxStatus", { podSandboxId: id, verbose: true })));
    },
  },
  exec: {
    summary: "Run a command in a container: streamed (-i stdin, -t terminal), or with -s through ExecSync",
    usage: "exec [-i] [-t] [-s [--timeout-seconds N]] CONTAINER -- COMMAND...",
    run: async (ctx) => {
      const id = await containerId(ctx, arg(ctx, 0, "CONTAINER"));
      const cmd = ctx.args.slice(1);
      if (cmd.length === 0) throw new UsageError("missing COMMAND");
      const tty = ctx.flags["tty"] === true;
      const stdin = ctx.flags["interactive"] === true;
      if (ctx.flags["sync"] === true || ctx.flags["timeout-seconds"] !== undefined) {
        if (tty || stdin) throw new UsageError("-s runs without stdin or a terminal");
        const r = await ctx.client.runtimeCall<{ stdout: Uint8Array; stderr: Uint8Array; exitCode: number }>(
          "execSync",
          { containerId: id, cmd, timeout: Number(ctx.flags["timeout-seconds"] ?? 0) },
        );
        process.stdout.write(Buffer.from(r.stdout));
        process.stderr.write(Buffer.from(r.stderr));
        if (r.exitCode !== 0) process.exitCode = r.exitCode;
        return;
      }
      const { url } = await ctx.client.runtimeCall<{ url: string }>("exec", {
        containerId: id,
        cmd,
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
      });
      const code = await runInteractive(url, { stdin, tty });
      if (code !== 0) process.exitCode = code;
    },
  },
  attach: {
    summary: "Attach to a running container's stdio (-i stdin, -t when it has a terminal)",
    usage: "attach [-i] [-t] CONTAINER",
    run: async (ctx) => {
      const id = await containerId(ctx, arg(ctx, 0, "CONTAINER"));
      const tty = ctx.flags["tty"] === true;
      const stdin = ctx.flags["interactive"] === true;
      const { url } = await ctx.client.runtimeCall<{ url: string }>("attach", {
        containerId: id,
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
      });
      await runInteractive(url, { stdin, tty });
    },
  },
  "port-forward": {
    summary: "Forward local ports (127.0.0.1) to a pod's ports until interrupted",
    usage: "port-forward POD [LOCAL:]REMOTE...",
    run: async (ctx) => {
      const id = await podId(ctx, arg(ctx, 0, "POD"));
      const specs = ctx.args.slice(1);
      if (specs.length === 0) throw new UsageError("missing [LOCAL:]REMOTE port");
      let pairs: { local: number; remote: number }[];
      try {
        pairs = specs.map(parsePortPair);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const newUrl = async (remote: number) =>
        (await ctx.client.runtimeCall<{ url: string }>("portForward", { podSandboxId: id, port: [remote] }))
          .url;
      const servers = await forwardPorts(pairs, newUrl, ctx.out);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      for (const s of servers) s.close();
    },
  },
  logs: {
    summary: "Print a container's log",
    usage: "logs CONTAINER",
    run: async (ctx) => {
      const id = await containerId(ctx, arg(ctx, 0, "CONTAINER"));
      const { status } = await ctx.client.runtimeCall<{ status: { logPath: string } }>("containerStatus", {
        containerId: id,
      });
      process.stdout.write(decodeCriLog(await readFile(status.logPath, "utf8")));
    },
  },
};
