/**
 * What the collector's integration tests share: a real berthd (host-network pods, no CNI),
 * the busybox image, pods whose containers write numbered lines, an HTTP sink that can be
 * down, and the collector run as its own process (so it can be SIGKILLed).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  ContainerConfig,
  type DeepPartial,
  NamespaceMode,
  PodSandboxConfig,
} from "../../api/gen/runtime/v1/api.js";
import type { BerthdProcess } from "../../tools/berthd-process.js";
import { removeAllPods, runtimeClient, sleep } from "../harness/cri.js";
import { importBusybox, startPodEnv } from "../harness/pod-env.js";

export const IMAGE = "docker.io/berth/busybox:collector";
const run = promisify(execFile);
const BIN = new URL("../../bin/berth-collector.js", import.meta.url).pathname;

/** `sh -c` script printing `${prefix}0` … `${prefix}${n-1}` (to stderr with toStderr). */
export function numbered(
  n: number,
  prefix = "line-",
  opts: { stderr?: boolean; pauseEvery?: number } = {},
): string {
  const pause = opts.pauseEvery ? `; if [ $((i % ${opts.pauseEvery})) -eq 0 ]; then sleep 0.05; fi` : "";
  return `i=0; while [ $i -lt ${n} ]; do echo ${prefix}$i${opts.stderr ? " >&2" : ""}; i=$((i+1))${pause}; done`;
}

export const seq = (n: number, prefix = "line-") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

export class Env {
  berthd!: BerthdProcess;
  rt!: ReturnType<typeof runtimeClient>;
  dir = "";

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), "berth-collector-it-"));
    this.berthd = await startPodEnv({ dir: this.dir });
    this.rt = runtimeClient(this.berthd.socket);
    await importBusybox(this.berthd, this.dir, IMAGE);
  }

  async stop(): Promise<void> {
    if (this.rt) await removeAllPods(this.rt);
    this.rt?.client.close();
    await this.berthd?.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  /** A host-network pod in namespace `ns` with `labels`. */
  async pod(name: string, ns: string, labels: Record<string, string> = {}) {
    const config = PodSandboxConfig.fromPartial({
      metadata: { name, namespace: ns, uid: `uid-${name}`, attempt: 0 },
      logDirectory: join(this.dir, "logs", name),
      labels,
      linux: {
        securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER } },
      },
    });
    const { podSandboxId } = await this.rt.call<{ podSandboxId: string }>("runPodSandbox", { config });
    return { id: podSandboxId, config };
  }

  async container(
    pod: { id: string; config: PodSandboxConfig },
    name: string,
    script: string,
    over: DeepPartial<ContainerConfig> = {},
  ): Promise<string> {
    const config = ContainerConfig.fromPartial({
      metadata: { name },
      image: { image: IMAGE },
      command: ["sh", "-c", script],
      logPath: `${name}.log`,
      labels: {
        "io.kubernetes.container.name": name,
        "io.kubernetes.pod.name": pod.config.metadata!.name,
        "io.kubernetes.pod.namespace": pod.config.metadata!.namespace,
        "io.kubernetes.pod.uid": pod.config.metadata!.uid,
      },
      ...over,
    });
    const { containerId } = await this.rt.call<{ containerId: string }>("createContainer", {
      podSandboxId: pod.id,
      config,
      sandboxConfig: pod.config,
    });
    await this.rt.call("startContainer", { containerId });
    return containerId;
  }

  logPath(pod: { config: PodSandboxConfig }, name: string): string {
    return join(pod.config.logDirectory, `${name}.log`);
  }
}

export interface SinkRecord {
  content: string;
  _source_: string;
  _time_: string;
  _container_name_: string;
  _pod_name_: string;
  _namespace_: string;
  _pod_uid_: string;
  _image_name_: string;
  _container_id_: string;
  [k: string]: string;
}

/** An NDJSON HTTP sink; `down` answers 503 to every request. */
export class Sink {
  records: SinkRecord[] = [];
  requests = 0;
  down = false;
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.requests++;
        if (this.down) {
          res.writeHead(503).end("down");
          return;
        }
        for (const l of Buffer.concat(chunks).toString().split("\n")) if (l) this.records.push(JSON.parse(l));
        res.writeHead(200).end("{}");
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/ingest`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  contents(containerId: string, source = "stdout"): string[] {
    return this.records
      .filter((r) => r._container_id_ === containerId && r._source_ === source)
      .map((r) => r.content);
  }
}

/** berth-collector as a child process on a config dir and state dir of its own. */
export class Collector {
  proc: ChildProcess | undefined;
  output = "";
  readonly configDir: string;
  readonly stateDir: string;

  constructor(
    private readonly env: Env,
    name: string,
  ) {
    this.configDir = join(env.dir, "collector", name, "conf.d");
    this.stateDir = join(env.dir, "collector", name, "state");
  }

  async writeConfig(file: string, yaml: string): Promise<void> {
    await mkdir(this.configDir, { recursive: true });
    await writeFile(join(this.configDir, file), yaml);
  }

  /** `--metrics-address 127.0.0.1:PORT` when set. */
  metricsPort = 0;
  /** More arguments for the collector. */
  args: string[] = [];
  /** Runs the collector through this command (`[cmd, …args]`, the collector's argv appended). */
  wrapper: string[] = [];
  /** More environment for the collector (or its wrapper). */
  extraEnv: Record<string, string> = {};

  /** `berth-collector status` (the one-screen text) on this collector's state dir. */
  async statusText(): Promise<string> {
    const { stdout } = await run(process.execPath, [BIN, "status", "--state-dir", this.stateDir]);
    return stdout;
  }

  /** Runs `berth-collector status -o json` on this collector's state dir. */
  async status(): Promise<{
    pipelines: Array<{ name: string }>;
    sources: Array<{ key: string; offset: number; size?: number; done: boolean }>;
  }> {
    const { stdout } = await run(process.execPath, [
      BIN,
      "status",
      "--state-dir",
      this.stateDir,
      "-o",
      "json",
    ]);
    return JSON.parse(stdout);
  }

  async start(): Promise<void> {
    await mkdir(this.configDir, { recursive: true });
    const argv = [
      process.execPath,
      BIN,
      ...(this.metricsPort ? ["--metrics-address", `127.0.0.1:${this.metricsPort}`] : []),
      "--config",
      this.configDir,
      "--runtime-endpoint",
      `unix://${this.env.berthd.socket}`,
      "--state-dir",
      this.stateDir,
      "--log-level",
      "debug",
      ...this.args,
    ];
    const [cmd, ...rest] = [...this.wrapper, ...argv];
    const proc = spawn(cmd!, rest, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...this.extraEnv },
    });
    this.proc = proc;
    proc.stdout?.on("data", (d: Buffer) => (this.output += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (this.output += d.toString()));
  }

  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
    const done = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    proc.kill(signal);
    return done;
  }
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Waits for `cond`, failing with `what` (and the collector's output) after `ms`. */
export async function until(
  what: string,
  cond: () => boolean,
  ms = 60_000,
  collector?: Collector,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${collector ? `\ncollector output:\n${collector.output.slice(-4000)}` : ""}`,
      );
    }
    await sleep(100);
  }
}

/** The config of a pipeline collecting namespace `ns` to the sink over HTTP. */
export function httpPipeline(ns: string, sinkUrl: string, more = ""): string {
  return `inputs:
  - Type: input_container_stdio
    ContainerFilters:
      K8sNamespaceRegex: ^${ns}$
${more}flushers:
  - Type: flusher_http
    RemoteURL: ${sinkUrl}
`;
}
