/**
 * containerd's side of the benchmark: a private containerd (root, state, sockets and TMPDIR in
 * one temp dir; overlayfs snapshotter; CRI with an empty CNI config and a plain-HTTP mirror for
 * the local registry), pulled through its CRI socket with the same CriClient as berthd.
 * A fresh containerd root per cold pull (its CRI RemoveImage leaves GC to run asynchronously).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CriClient } from "../api/client.js";
import type { RuntimeDriver, RuntimeInstance } from "./measure.js";
import { type Cleanup, errorText, removeTree, run, sleep, terminate } from "./util.js";

/** BENCH_CONTAINERD overrides the binary (e.g. to check the fallback with /bin/false). */
export const CONTAINERD_BINARY = process.env["BENCH_CONTAINERD"] ?? "/usr/bin/containerd";

/** Why containerd cannot be benchmarked here, or undefined when it can. */
export function containerdMissing(): string | undefined {
  if (!existsSync(CONTAINERD_BINARY)) {
    return `${CONTAINERD_BINARY} not found (scripts/install-deps.sh installs Debian's containerd)`;
  }
  if (process.getuid?.() !== 0) return "containerd needs root";
  return undefined;
}

/** BENCH_CONTAINERD_DEBUG=1: debug logs, so per-layer "diff applied" times are recorded (slightly slower). */
const DEBUG = process.env["BENCH_CONTAINERD_DEBUG"] === "1";

/** What the pod benchmark adds: a real CNI config and bin dir, a sandbox image, runc under `dir`. */
export interface ContainerdPodOptions {
  /** CNI config dir (one conflist); plugins come from /usr/lib/cni. */
  cniConfDir: string;
  /** sandbox_image: a reference in the local registry (pulled before the benchmark). */
  sandboxImage: string;
}

export const CNI_BIN_DIR = "/usr/lib/cni";

function containerdConfig(dir: string, registryHost: string, pods?: ContainerdPodOptions): string {
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  // Pods: netns under containerd's state dir (not /var/run/netns) and runc's state under `dir`,
  // so everything a run makes lives in the temp dir; cgroupfs (SystemdCgroup = false) as berthd.
  // restrict_oom_score_adj: without CAP_SYS_RESOURCE (as on some VMs) runc cannot set the
  // sandbox's -998; clamp to containerd's own score, as berthd does (its oomScoreAdjMin).
  const runtime = pods
    ? `
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "${dir}/runc"
        SystemdCgroup = false`
    : "";
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[debug]
  level = "${DEBUG ? "debug" : "info"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"

[${cri}]
  sandbox_image = "${pods?.sandboxImage ?? "registry.k8s.io/pause:3.6"}"
  netns_mounts_under_state_dir = ${pods ? "true" : "false"}
  restrict_oom_score_adj = ${pods ? "true" : "false"}
  [${cri}.containerd]
    snapshotter = "overlayfs"${runtime}
  [${cri}.cni]
    bin_dir = "${pods ? CNI_BIN_DIR : `${dir}/cni/bin`}"
    conf_dir = "${pods?.cniConfDir ?? `${dir}/cni/conf`}"
    max_conf_num = 1
  [${cri}.registry.mirrors."${registryHost}"]
    endpoint = ["http://${registryHost}"]
`;
}

function tail(logs: string): string {
  const t = logs.trim();
  return t ? `:\n${t.slice(-3000)}` : "";
}

/** A private containerd on a fresh temp dir (`dir` on the instance); `pods` for the pod benchmark. */
export async function startContainerd(
  cleanup: Cleanup,
  registryHost: string,
  pods?: ContainerdPodOptions,
): Promise<RuntimeInstance & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "berth-bench-containerd-"));
  let child: ChildProcess | undefined;
  let client: CriClient | undefined;
  const stop = cleanup.add(`containerd in ${dir}`, async () => {
    client?.close();
    if (child) await terminate(child, 10_000);
    await removeTree(dir);
  });
  let readyMs = 0;
  try {
    const instance = await launch(100);
    instance.restart = async (beforeStart) => {
      client?.close();
      if (child) await terminate(child, 30_000);
      await beforeStart?.();
      const next = await launch(5);
      instance.client = next.client;
      instance.pid = next.pid;
      instance.output = next.output;
      return readyMs;
    };
    return instance;
  } catch (err) {
    await stop(); // never leave a half-started containerd behind
    throw err;
  }

  /** Starts containerd on `dir`; resolves once its CRI answers Version (polled every `pollMs`). */
  async function launch(pollMs: number): Promise<RuntimeInstance & { dir: string }> {
    for (const d of ["cni/bin", "cni/conf", "opt", "tmp"]) await mkdir(join(dir, d), { recursive: true });
    const configPath = join(dir, "config.toml");
    await writeFile(configPath, containerdConfig(dir, registryHost, pods));
    const socket = join(dir, "containerd.sock");
    let logs = "";
    const keep = (b: Buffer) => {
      logs += b.toString("utf8");
      if (logs.length > 256 * 1024) logs = logs.slice(-128 * 1024);
    };
    const t0 = performance.now();
    const proc = spawn(CONTAINERD_BINARY, ["--config", configPath], {
      stdio: ["ignore", "pipe", "pipe"],
      // Temp mounts (the differ's) land inside our dir, so cleanup finds them.
      env: { ...process.env, TMPDIR: join(dir, "tmp") },
    });
    child = proc;
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    let spawnError: Error | undefined;
    proc.once("error", (err) => {
      spawnError = err;
    });
    const deadline = Date.now() + 30_000;
    let lastError = "";
    for (;;) {
      if (spawnError) throw new Error(`containerd did not start: ${spawnError.message}`);
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`containerd exited (${proc.exitCode ?? proc.signalCode}) during start${tail(logs)}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`containerd's CRI did not answer in 30 s (${lastError})${tail(logs)}`);
      }
      if (existsSync(socket)) {
        const probe = new CriClient(socket, { timeoutMs: 2000 });
        try {
          await probe.version();
          readyMs = performance.now() - t0;
          break;
        } catch (err) {
          lastError = errorText(err);
        } finally {
          probe.close();
        }
      }
      await sleep(pollMs);
    }
    client = new CriClient(socket, { timeoutMs: 60_000 });
    const pid = proc.pid;
    if (pid === undefined) throw new Error("containerd has no pid");
    const cri = client;
    return { client: cri, pid, output: () => logs, stop, dir };
  }
}

/** Per-layer apply times from containerd's debug log ("diff applied", d=<duration>). */
function pullDetails(output: string): Record<string, unknown> | undefined {
  if (!DEBUG) return undefined;
  const layers: Array<{ layer: string; ms: number; at: string }> = [];
  for (const line of output.split("\n")) {
    if (!line.includes('msg="diff applied"')) continue;
    const d = /\bd="?([0-9.]+)(ms|s|µs|us)"?/.exec(line);
    const digest = /digest="?(sha256:[a-f0-9]{64})/.exec(line)?.[1] ?? "";
    const at = /time="([^"]+)"/.exec(line)?.[1] ?? "";
    if (!d) continue;
    const unit = d[2] === "s" ? 1000 : d[2] === "ms" ? 1 : 0.001;
    layers.push({ layer: digest, ms: Number(d[1]) * unit, at });
  }
  return { layersApplied: layers };
}

export async function containerdVersion(): Promise<string> {
  return (await run(CONTAINERD_BINARY, ["--version"], 10_000)).trim();
}

export function containerdDriver(cleanup: Cleanup, registryHost: string): RuntimeDriver {
  return {
    name: "containerd",
    notes: [
      "fresh containerd root per cold run",
      "snapshotter overlayfs, CRI max_concurrent_downloads = 3 (default)",
      `registry mirror http://${registryHost}`,
      `log level ${DEBUG ? "debug" : "info"}`,
    ],
    start: () => startContainerd(cleanup, registryHost),
    version: () =>
      containerdVersion().catch((err: unknown) => `containerd (version unknown: ${errorText(err)})`),
    details: pullDetails,
  };
}
