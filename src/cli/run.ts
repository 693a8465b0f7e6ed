/**
 * `berth run`: docker's run on CRI. Pulls the image when missing, creates a pod and a container
 * in it, then streams the output (or attaches stdin/a terminal), waits and exits with the
 * container's exit code. `--rm` removes both afterwards; any failure before the container runs
 * removes what was created (exit 125). Names are unique among pods, as docker's.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { rm as rmPath } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import type { ContainerConfig, DeepPartial, PodSandboxConfig } from "../api/gen/runtime/v1/api.js";
import type { Command, CommandContext } from "./context.js";
import { list, str } from "./context.js";
import { CliError, describeError, EXIT, UsageError } from "./errors.js";
import { listPods } from "./resolve.js";
import { attachTo, runcExitCode, waitExitCode } from "./runtime-commands.js";

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** `[IP:]HOST:CONTAINER[/tcp|udp|sctp]` (HOST may be empty: the same as CONTAINER). */
export function parsePublish(p: string): {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: number;
} {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:(\d*):)?(\d+)(?:\/(tcp|udp|sctp))?$/.exec(
    p,
  );
  const port = (s: string | undefined) => (s === undefined || s === "" ? undefined : Number(s));
  const containerPort = port(m?.[3]);
  const hostPort = port(m?.[2]) ?? containerPort;
  if (!m || !containerPort || containerPort > 65535 || !hostPort || hostPort > 65535)
    throw new UsageError(`invalid --publish "${p}": want [IP:]HOSTPORT:PORT[/tcp|udp|sctp]`);
  const protocol = { tcp: 0, udp: 1, sctp: 2 }[m[4] ?? "tcp"] ?? 0;
  return { hostIp: (m[1] ?? "").replace(/^\[|\]$/g, ""), hostPort, containerPort, protocol };
}

/** `-e K=V` (or `-e K`: taken from this environment) and `--env-file` lines. */
export function parseEnv(envs: string[], files: string[], read = (f: string) => readFileSync(f, "utf8")) {
  const out: { key: string; value: string }[] = [];
  const add = (entry: string, where: string) => {
    const eq = entry.indexOf("=");
    const key = eq < 0 ? entry : entry.slice(0, eq);
    if (!/^[^=\0\s]+$/.test(key)) throw new UsageError(`invalid environment variable "${entry}" (${where})`);
    if (eq >= 0) out.push({ key, value: entry.slice(eq + 1) });
    else if (process.env[key] !== undefined) out.push({ key, value: process.env[key]! });
  };
  for (const f of files) {
    let text: string;
    try {
      text = read(f);
    } catch (err) {
      throw new UsageError(`cannot read --env-file ${f}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    text.split("\n").forEach((line, i) => {
      const t = line.trim();
      if (t && !t.startsWith("#")) add(t, `${f}:${i + 1}`);
    });
  }
  for (const e of envs) add(e, "-e");
  return out;
}

/** `SRC:DST[:ro|rw]` with SRC an existing host path (relative to the working directory). */
export function parseVolume(
  v: string,
  exists = (p: string) => statSync(p, { throwIfNoEntry: false }) !== undefined,
) {
  const parts = v.split(":");
  const [src, dst, mode] = parts;
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    !src ||
    !dst ||
    !dst.startsWith("/") ||
    (mode && !/^(ro|rw)$/.test(mode))
  )
    throw new UsageError(`invalid --volume "${v}": want SRC:/DST[:ro]`);
  const hostPath = resolvePath(src);
  if (!exists(hostPath)) throw new UsageError(`invalid --volume "${v}": ${hostPath} does not exist`);
  return { hostPath, containerPath: dst, readonly: mode === "ro" };
}

/** `--user UID[:GID]` or a user name. */
export function parseUser(u: string): object {
  const m = /^(\d+)(?::(\d+))?$/.exec(u);
  if (m)
    return { runAsUser: { value: BigInt(m[1]!) }, ...(m[2] ? { runAsGroup: { value: BigInt(m[2]) } } : {}) };
  const named = /^([a-z_][a-z0-9_.-]*)(?::(\d+))?$/i.exec(u);
  if (!named) throw new UsageError(`invalid --user "${u}": want UID[:GID] or a user name`);
  return { runAsUsername: named[1], ...(named[2] ? { runAsGroup: { value: BigInt(named[2]) } } : {}) };
}

/** The pod's hostname from a run name (RFC 1123 label). */
const hostnameOf = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63) || "berth";

async function ensureImage(ctx: CommandContext, image: string, policy: string): Promise<void> {
  if (policy !== "always") {
    const st = await ctx.client.imageStatus(image);
    if (st.image) return;
    if (policy === "never")
      throw new CliError(`image ${image} is not present (--pull never)`, EXIT.runFailed);
  }
  const { pullWithProgress } = await import("./progress.js");
  await pullWithProgress(ctx, image);
}

export const run: Command = async (ctx) => {
  const f = ctx.flags;
  const image = ctx.args[0];
  if (!image) throw new UsageError("missing IMAGE");
  const name = str(f, "name") ?? `berth-${randomBytes(3).toString("hex")}`;
  if (!NAME.test(name) || name.length > 253)
    throw new UsageError(`invalid --name "${name}": want [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  const policy = str(f, "pull") ?? "missing";
  if (!["missing", "always", "never"].includes(policy))
    throw new UsageError(`invalid --pull "${policy}": want missing, always or never`);
  const network = str(f, "network") ?? "pod";
  if (network !== "pod" && network !== "host")
    throw new UsageError(`invalid --network "${network}": want pod or host`);
  const detach = f["detach"] === true;
  const interactive = f["interactive"] === true;
  const tty = f["tty"] === true;
  const autoRemove = f["rm"] === true;
  if (detach && autoRemove)
    throw new UsageError("--rm and -d together are not supported (nothing would be left to remove it)");
  const portMappings = list(f, "publish").map(parsePublish);
  const envs = parseEnv(list(f, "env"), list(f, "env-file"));
  const mounts = list(f, "volume").map((v) => parseVolume(v));
  const user = str(f, "user");
  const security = user === undefined ? {} : parseUser(user);
  const labels: Record<string, string> = {};
  for (const l of list(f, "label")) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid --label "${l}": want KEY=VALUE`);
    labels[l.slice(0, eq)] = l.slice(eq + 1);
  }
  const entrypoint = str(f, "entrypoint");
  const workdir = str(f, "workdir");
  if (workdir !== undefined && !workdir.startsWith("/"))
    throw new UsageError("--workdir must be an absolute path");

  const uid = randomBytes(8).toString("hex");
  const namespaceOptions = { network: network === "host" ? 2 : 0, pid: 1, ipc: 0 };
  const logDirectory = `/var/log/pods/default_${name}_${uid}`;
  const podConfig: DeepPartial<PodSandboxConfig> = {
    metadata: { name, namespace: "default", uid, attempt: 0 },
    hostname: network === "host" ? "" : hostnameOf(name),
    logDirectory,
    portMappings,
    labels: { ...labels, "io.berth.run": "true" },
    linux: { securityContext: { namespaceOptions } },
  };
  const config: DeepPartial<ContainerConfig> = {
    metadata: { name, attempt: 0 },
    image: { image },
    command: entrypoint === undefined ? [] : [entrypoint],
    args: ctx.command,
    envs,
    mounts,
    labels,
    logPath: `${name}.log`,
    tty,
    stdin: interactive,
    stdinOnce: interactive,
    ...(workdir ? { workingDir: workdir } : {}),
    linux: { securityContext: { namespaceOptions, ...security } },
  };

  let podId: string | undefined;
  const removeAll = async () => {
    if (!podId) return;
    const id = podId;
    podId = undefined;
    await ctx.client.call("stopPodSandbox", { podSandboxId: id }).catch(() => {});
    await ctx.client.call("removePodSandbox", { podSandboxId: id }).catch(() => {});
    await rmPath(logDirectory, { recursive: true, force: true }).catch(() => {});
  };
  let containerId: string;
  try {
    const taken = (await listPods(ctx)).find((p) => p.metadata?.name === name);
    if (taken)
      throw new CliError(
        `the name "${name}" is already in use by pod ${taken.id.slice(0, 13)}: remove it (berth rmp -f ${name}) or choose another --name`,
        EXIT.runFailed,
      );
    await ensureImage(ctx, image, policy);
    podId = (
      await ctx.client.call("runPodSandbox", {
        config: podConfig,
        runtimeHandler: str(f, "runtime") ?? "",
      })
    ).podSandboxId;
    containerId = (
      await ctx.client.call("createContainer", {
        podSandboxId: podId,
        config,
        sandboxConfig: podConfig,
      })
    ).containerId;
    await ctx.client.call("startContainer", { containerId });
  } catch (err) {
    await removeAll();
    const { text, code } = describeError(err, ctx.endpoint, ctx.timeoutS);
    throw new CliError(
      err instanceof CliError ? text : `cannot run ${image}: ${text}`,
      runcExitCode(text) ?? (code === EXIT.failed ? EXIT.runFailed : code),
    );
  }
  if (detach) {
    ctx.out(containerId);
    return EXIT.ok;
  }

  // Ctrl-C stops the container (10 s grace, as docker's stop); a second one kills it.
  let interrupted = false;
  const onSignal = () => {
    const timeout = interrupted ? 0 : 10;
    interrupted = true;
    void ctx.client.call("stopContainer", { containerId, timeout }).catch(() => {});
  };
  if (!tty) process.on("SIGINT", onSignal);
  try {
    let code: number;
    if (interactive || tty) {
      const detachKeys = "ctrl-p,ctrl-q";
      const r = await attachTo(ctx, containerId, { stdin: interactive, tty, detachKeys, fromStart: true });
      const { status } = await ctx.client.call("containerStatus", {
        containerId,
      });
      if (status?.state !== 2) return r; // detached: leave it running (and not removed)
      code = r;
    } else {
      const { showLog } = await import("./logs.js");
      await showLog(ctx, containerId, { follow: true });
      code = await waitExitCode(ctx, containerId);
    }
    if (autoRemove) await removeAll();
    return interrupted ? EXIT.interrupted : code;
  } finally {
    process.off("SIGINT", onSignal);
  }
};
