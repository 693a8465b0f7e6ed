/**
 * berth's pod and container commands with crictl's verbs: runp, create, start, stop, rm,
 * stopp, rmp, exec, attach, port-forward, stats, statsp.
 */
import { readFile, rm as rmPath } from "node:fs/promises";
import { type Container, ContainerState } from "../api/gen/runtime/v1/api.js";
import { containerConfigFromJson, podConfigFromJson } from "./config-json.js";
import type { Command, CommandContext } from "./context.js";
import { str } from "./context.js";
import { CliError, EXIT, stripRuncNoise, UsageError } from "./errors.js";
import { humanSize, table } from "./format.js";
import { outputFormat, printStructured } from "./output.js";
import { listContainers, resolveContainer, resolvePod } from "./resolve.js";

/** The streaming clients (SPDY), loaded only by the verbs that stream. */
const streaming = () => import("./streaming.js");

interface UInt64Value {
  value: bigint;
}
interface CpuUsage {
  timestamp: bigint;
  usageCoreNanoSeconds?: UInt64Value;
  usageNanoCores?: UInt64Value;
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
  const flag = str(ctx.flags, "seconds");
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

async function readJson(path: string | undefined, what: string): Promise<unknown> {
  if (!path) throw new UsageError(`missing ${what}`);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
}

function need(ctx: CommandContext, i: number, what: string): string {
  const v = ctx.args[i];
  if (!v) throw new UsageError(`missing ${what}`);
  return v;
}

/** Repeats `draw` every `seconds` (at least 1) until interrupted when --watch is given. */
async function watchLoop(ctx: CommandContext, draw: () => Promise<string>): Promise<void> {
  if (!ctx.flags["watch"]) return ctx.out(await draw());
  let stop = false;
  const onInt = () => {
    stop = true;
  };
  process.once("SIGINT", onInt);
  try {
    while (!stop) {
      const t0 = Date.now();
      const text = await draw();
      if (stop) break;
      process.stdout.write(`${process.stdout.isTTY ? "\x1b[H\x1b[2J" : ""}${text}\n`);
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
    }
  } finally {
    process.off("SIGINT", onInt);
  }
}

export const runp: Command = async (ctx) => {
  const file = need(ctx, 0, "POD_CONFIG.json");
  const config = podConfigFromJson(await readJson(file, "POD_CONFIG.json"), file);
  const r = await ctx.client.call("runPodSandbox", {
    config,
    runtimeHandler: str(ctx.flags, "runtime") ?? "",
  });
  ctx.out(r.podSandboxId);
};

export const create: Command = async (ctx) => {
  const pod = await resolvePod(ctx, need(ctx, 0, "POD"));
  const cfile = need(ctx, 1, "CONTAINER_CONFIG.json");
  const pfile = need(ctx, 2, "POD_CONFIG.json");
  const config = containerConfigFromJson(await readJson(cfile, "CONTAINER_CONFIG.json"), cfile);
  const sandboxConfig = podConfigFromJson(await readJson(pfile, "POD_CONFIG.json"), pfile);
  const r = await ctx.client.call("createContainer", {
    podSandboxId: pod.id,
    config,
    sandboxConfig,
  });
  ctx.out(r.containerId);
};

/** Runs `each` on every resolved argument; the first failure ends the command. */
async function forEachContainer(ctx: CommandContext, each: (c: Container) => Promise<void>): Promise<void> {
  need(ctx, 0, "CONTAINER");
  for (const ref of ctx.args) await each(await resolveContainer(ctx, ref));
}

export const start: Command = (ctx) =>
  forEachContainer(ctx, async (c) => {
    await ctx.client.call("startContainer", { containerId: c.id });
    ctx.out(c.id);
  });

export const stop: Command = (ctx) => {
  const timeout = Number(str(ctx.flags, "timeout-seconds") ?? 10);
  if (!(timeout >= 0)) throw new UsageError("--timeout-seconds must be a number ≥ 0");
  return forEachContainer(ctx, async (c) => {
    await ctx.client.call("stopContainer", { containerId: c.id, timeout });
    ctx.out(c.id);
  });
};

export const rm: Command = (ctx) =>
  forEachContainer(ctx, async (c) => {
    if (c.state === ContainerState.CONTAINER_RUNNING) {
      if (!ctx.flags["force"])
        throw new CliError(
          `container ${c.metadata?.name ?? ""} (${c.id.slice(0, 13)}) is running: stop it or use rm -f`,
        );
      await ctx.client.call("stopContainer", { containerId: c.id, timeout: 0 });
    }
    await ctx.client.call("removeContainer", { containerId: c.id });
    ctx.out(c.id);
  });

export const stopp: Command = async (ctx) => {
  need(ctx, 0, "POD");
  for (const ref of ctx.args) {
    const pod = await resolvePod(ctx, ref);
    await ctx.client.call("stopPodSandbox", { podSandboxId: pod.id });
    ctx.out(`Stopped sandbox ${pod.id}`);
  }
};

/** The log directory `berth run` gave a pod (under /var/log/pods), from its verbose status. */
async function runLogDirectory(ctx: CommandContext, podSandboxId: string): Promise<string | undefined> {
  const r = await ctx.client.call("podSandboxStatus", { podSandboxId, verbose: true }).catch(() => undefined);
  try {
    const dir = (JSON.parse(r?.info["info"] ?? "{}") as { config?: { logDirectory?: string } }).config
      ?.logDirectory;
    return dir?.startsWith("/var/log/pods/default_") && !dir.includes("..") ? dir : undefined;
  } catch {
    return undefined;
  }
}

export const rmp: Command = async (ctx) => {
  need(ctx, 0, "POD");
  for (const ref of ctx.args) {
    const pod = await resolvePod(ctx, ref);
    if (pod.state === 0 && !ctx.flags["force"])
      throw new CliError(
        `pod ${pod.metadata?.name ?? ""} (${pod.id.slice(0, 13)}) is ready: stop it first or use rmp -f`,
      );
    const logDir = pod.labels["io.berth.run"] === "true" ? await runLogDirectory(ctx, pod.id) : undefined;
    await ctx.client.call("stopPodSandbox", { podSandboxId: pod.id });
    await ctx.client.call("removePodSandbox", { podSandboxId: pod.id });
    // a `berth run` pod's logs go with it (the kubelet does this for its pods)
    if (logDir) await rmPath(logDir, { recursive: true, force: true }).catch(() => {});
    ctx.out(`Removed sandbox ${pod.id}`);
  }
};

/** exit code for runc's "cannot run the command" errors, as docker: 127 not found, 126 not executable. */
export function runcExitCode(message: string): number | undefined {
  if (/executable file not found|no such file or directory/i.test(message)) return EXIT.notFound;
  if (/permission denied|exec format error|is a directory/i.test(message)) return EXIT.noExec;
  return undefined;
}

/** A command that cannot be started is exit 127/126 (as docker), with runc's message only. */
function execFailure(err: unknown): never {
  const text = (err as { details?: string }).details ?? (err as Error).message ?? "";
  const code = runcExitCode(text);
  if (code === undefined) throw err;
  throw new CliError(stripRuncNoise(text).replace(/^exec in container [0-9a-f]{64}: /, ""), code);
}

export const exec: Command = async (ctx) => {
  const c = await resolveContainer(ctx, need(ctx, 0, "CONTAINER"));
  if (ctx.args.length > 1) throw new UsageError(`unexpected argument "${ctx.args[1]}"`);
  const cmd = ctx.command;
  if (cmd.length === 0) throw new UsageError("missing COMMAND");
  const tty = ctx.flags["tty"] === true;
  const stdin = ctx.flags["interactive"] === true;
  if (ctx.flags["sync"] === true || ctx.flags["timeout-seconds"] !== undefined) {
    if (tty || stdin) throw new UsageError("-s runs without stdin or a terminal");
    const r = await ctx.client
      .call("execSync", {
        containerId: c.id,
        cmd,
        timeout: Number(ctx.flags["timeout-seconds"] ?? 0),
      })
      .catch(execFailure);
    process.stdout.write(Buffer.from(r.stdout));
    const errText = Buffer.from(r.stderr).toString("utf8");
    if (/level=(error|fatal) msg=/.test(errText)) {
      const msg = stripRuncNoise(errText).trim();
      process.stderr.write(`berth: ${msg}\n`);
      return runcExitCode(msg) ?? r.exitCode;
    }
    process.stderr.write(errText);
    return r.exitCode;
  }
  const { runInteractive } = await streaming();
  const { url } = await ctx.client.call("exec", {
    containerId: c.id,
    cmd,
    tty,
    stdin,
    stdout: true,
    stderr: !tty,
  });
  let runcCode: number | undefined;
  const code = await runInteractive(url, {
    stdin,
    tty,
    onRuncError: (m) => {
      runcCode = runcExitCode(m);
    },
  }).catch((err: unknown) => runcCode ?? execFailure(err)); // runc's message is printed already
  return code === "detached" ? 0 : (runcCode ?? code);
};

/**
 * Attaches to a running container; resolves its exit code once it ends (0 when detached).
 * `fromStart`: show its output from its start, not from the attach on.
 */
export async function attachTo(
  ctx: CommandContext,
  id: string,
  o: { stdin: boolean; tty: boolean; detachKeys: string; fromStart?: boolean },
): Promise<number> {
  const { runInteractive, parseDetachKeys } = await streaming();
  // run -it: what the container printed before the attach comes from its log (early-output.ts)
  const logPath = o.fromStart
    ? (await ctx.client.call("containerStatus", { containerId: id })).status?.logPath
    : undefined;
  const { readLogStreams, ttyNewlines, withoutCrOfCrlf } = await import("./early-output.js");
  let r: number | "detached";
  // How far the attached session's output reached into the log, should it fail (early-output.ts).
  const reached = { stdout: 0, stderr: 0 };
  try {
    const { url } = await ctx.client.call("attach", {
      containerId: id,
      stdin: o.stdin,
      stdout: true,
      stderr: !o.tty,
      // the server counts the streams to wait for from this (containerd does; berthd takes the
      // container's): a resize stream it does not expect can take stdout's place
      tty: o.tty,
    });
    r = await runInteractive(url, {
      stdin: o.stdin,
      tty: o.tty,
      detachKeys: parseDetachKeys(o.detachKeys),
      earlyLog: logPath ? () => readLogStreams(logPath) : undefined,
      reached,
    });
  } catch (err) {
    // run -it of a container that ended before or while the attach connected (containerd:
    // "no running task found" while its status still says running): its log has all it printed,
    // less what the session already showed from it
    const exitCode = logPath ? await exitedCode(ctx, id, 2_000) : undefined;
    if (!logPath || exitCode === undefined) throw err;
    const log = await readLogStreams(logPath);
    // As compared and shown by the session: a terminal's log without the \r of its \r\n.
    const stdout = (o.tty ? withoutCrOfCrlf(log.stdout).text : log.stdout).subarray(reached.stdout);
    process.stdout.write(o.tty ? ttyNewlines(stdout) : stdout);
    process.stderr.write(log.stderr.subarray(reached.stderr));
    return exitCode;
  }
  if (r === "detached") {
    process.stderr.write(`\r\nberth: detached from ${id.slice(0, 13)} (still running)\n`);
    return 0;
  }
  return waitExitCode(ctx, id);
}

/** Waits (up to 10 s after the stream ends) for the container to be EXITED; resolves its exit code. */
export async function waitExitCode(ctx: CommandContext, id: string, timeoutMs = 10_000): Promise<number> {
  return (await exitedCode(ctx, id, timeoutMs)) ?? 0;
}

/** The container's exit code once it is EXITED; undefined if it is not within `timeoutMs`. */
async function exitedCode(ctx: CommandContext, id: string, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await ctx.client.call("containerStatus", { containerId: id });
    if (status?.state === ContainerState.CONTAINER_EXITED) return status.exitCode;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const attach: Command = async (ctx) => {
  const c = await resolveContainer(ctx, need(ctx, 0, "CONTAINER"));
  return attachTo(ctx, c.id, {
    stdin: ctx.flags["interactive"] === true,
    tty: ctx.flags["tty"] === true,
    detachKeys: str(ctx.flags, "detach-keys") ?? "ctrl-p,ctrl-q",
  });
};

export const portForward: Command = async (ctx) => {
  const pod = await resolvePod(ctx, need(ctx, 0, "POD"));
  const specs = ctx.args.slice(1);
  if (specs.length === 0) throw new UsageError("missing [LOCAL:]REMOTE port");
  const { forwardPorts, parsePortPair } = await streaming();
  let pairs: { local: number; remote: number }[];
  try {
    pairs = specs.map(parsePortPair);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const newUrl = async (remote: number) =>
    (await ctx.client.call("portForward", { podSandboxId: pod.id, port: [remote] })).url;
  const servers = await forwardPorts(pairs, newUrl, ctx.out);
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  for (const s of servers) s.close();
};

/** What printStructured prints, as a string (for a refreshing screen). */
function structured(format: Parameters<typeof printStructured>[0], value: object): string {
  let s = "";
  printStructured(format, value, (t) => {
    s = t;
  });
  return s;
}

export const stats: Command = async (ctx) => {
  const ref = ctx.args[0];
  const filter = ref ? { id: (await resolveContainer(ctx, ref)).id } : {};
  const list = async () => (await ctx.client.call("listContainerStats", { filter })).stats;
  const format = outputFormat(ctx.flags["output"], ["table", "json", "yaml"]);
  await watchLoop(ctx, async () => {
    if (format !== "table") return structured(format, { stats: await list() });
    const { stats, cpu } = await sampleCpu(ctx, list, (s) => s.cpu);
    const running = new Set(
      (await listContainers(ctx))
        .filter((c) => c.state === ContainerState.CONTAINER_RUNNING)
        .map((c) => c.id),
    );
    const shown = ctx.flags["all"] || ref ? stats : stats.filter((s) => running.has(s.attributes?.id ?? ""));
    return table(
      ["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"],
      shown.map((s) => [
        (s.attributes?.id ?? "").slice(0, 13),
        s.attributes?.metadata?.name ?? "",
        cpu(s),
        bytes(s.memory?.workingSetBytes?.value),
        bytes(s.writableLayer?.usedBytes?.value),
        String(s.writableLayer?.inodesUsed?.value ?? 0n),
      ]),
    );
  });
};

export const statsp: Command = async (ctx) => {
  const ref = ctx.args[0];
  const filter = ref ? { id: (await resolvePod(ctx, ref)).id } : {};
  const list = async () => (await ctx.client.call("listPodSandboxStats", { filter })).stats;
  const format = outputFormat(ctx.flags["output"], ["table", "json", "yaml"]);
  await watchLoop(ctx, async () => {
    if (format !== "table") return structured(format, { stats: await list() });
    const { stats, cpu } = await sampleCpu(ctx, list, (s) => s.linux?.cpu);
    return table(
      ["POD", "NAME", "CPU %", "MEM", "RX", "TX"],
      stats.map((s) => {
        const iface = s.linux?.network?.defaultInterface;
        return [
          (s.attributes?.id ?? "").slice(0, 13),
          s.attributes?.metadata?.name ?? "",
          cpu(s),
          bytes(s.linux?.memory?.workingSetBytes?.value),
          bytes(iface?.rxBytes?.value),
          bytes(iface?.txBytes?.value),
        ];
      }),
    );
  });
};
