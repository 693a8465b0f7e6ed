/**
 * `berth-collector`: runs the agent until SIGTERM/SIGINT (graceful: pipelines stop, positions
 * are written), reloads on SIGHUP; `berth-collector status` prints what a running (or the
 * last) collector left in its state dir: pipelines, config errors and, per source, the
 * committed position against the file's size.
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Counter, Gauge, Registry } from "prom-client";
import { CriClient } from "../api/client.js";
import { createLogger, LOG_LEVELS, type LogLevel } from "../common/logger.js";
import { Agent, type AgentStatus } from "./agent.js";
import type { SourceCheckpoint } from "./checkpoint.js";
import { HOST_ROOT_ENV, hostRootFrom } from "./host-root.js";

export const DEFAULT_STATE_DIR = "/var/lib/berth-collector";
const CANDIDATE_ENDPOINTS = [
  "unix:///run/berth/berth.sock",
  "unix:///run/containerd/containerd.sock",
  "unix:///run/crio/crio.sock",
];

export const USAGE = `usage: berth-collector --config FILE|DIR [--runtime-endpoint unix:///…] [--docker-endpoint unix:///…] [--state-dir DIR]
                      [--host-root DIR] [--log-level LEVEL] [--metrics-address HOST:PORT]
       berth-collector status [--state-dir DIR] [-o json]`;

/** As crictl: $CONTAINER_RUNTIME_ENDPOINT, else the first of Berth's, containerd's, CRI-O's that exists. */
export function defaultEndpoint(env = process.env, exists = existsSync): string {
  if (env["CONTAINER_RUNTIME_ENDPOINT"]) return env["CONTAINER_RUNTIME_ENDPOINT"];
  return CANDIDATE_ENDPOINTS.find((e) => exists(e.slice("unix://".length))) ?? CANDIDATE_ENDPOINTS[0]!;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "status") return status(argv.slice(1));
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      "runtime-endpoint": { type: "string" },
      "docker-endpoint": { type: "string" },
      "state-dir": { type: "string" },
      "log-level": { type: "string" },
      "metrics-address": { type: "string" },
      "host-root": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.config) {
    console.error(USAGE);
    return 2;
  }
  const level = (values["log-level"] ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw new Error(`--log-level: want one of ${LOG_LEVELS.join(", ")}`);
  const log = createLogger(level).child({ component: "berth-collector" });
  const hostRoot = hostRootFrom(values["host-root"]);
  if (hostRoot && !(await stat(hostRoot).catch(() => undefined))?.isDirectory())
    throw new Error(`--host-root (or $${HOST_ROOT_ENV}): ${hostRoot} is not a directory`);
  // With --docker-endpoint alone, Docker only; a CRI endpoint named too (flag or env) adds it.
  const docker = values["docker-endpoint"];
  const criNamed = values["runtime-endpoint"] ?? process.env["CONTAINER_RUNTIME_ENDPOINT"];
  const endpoint = docker && !criNamed ? undefined : (values["runtime-endpoint"] ?? defaultEndpoint());
  const client = endpoint ? new CriClient(endpoint, { timeoutMs: 30_000 }) : undefined;
  const registry = new Registry();
  const records = new Counter({
    name: "berth_collector_records_total",
    help: "Records delivered",
    labelNames: ["pipeline"],
    registers: [registry],
  });
  const bytes = new Counter({
    name: "berth_collector_content_bytes_total",
    help: "Content bytes delivered",
    labelNames: ["pipeline"],
    registers: [registry],
  });
  const failures = new Counter({
    name: "berth_collector_send_failures_total",
    help: "Failed sends (retried)",
    labelNames: ["pipeline", "flusher"],
    registers: [registry],
  });
  const agent = new Agent({
    configPath: values.config,
    stateDir: values["state-dir"] ?? DEFAULT_STATE_DIR,
    client,
    dockerEndpoint: docker,
    hostRoot,
    log,
    metrics: {
      records: (p, n, b) => {
        records.inc({ pipeline: p }, n);
        bytes.inc({ pipeline: p }, b);
      },
      sendFailure: (p, f) => failures.inc({ pipeline: p, flusher: f }),
    },
  });
  new Gauge({
    name: "berth_collector_pipelines",
    help: "Running pipelines",
    registers: [registry],
    collect() {
      this.set(agent.pipelines().length);
    },
  });
  new Gauge({
    name: "berth_collector_config_errors",
    help: "Config files that did not load",
    registers: [registry],
    collect() {
      this.set(agent.configErrors().size);
    },
  });
  new Gauge({
    name: "berth_collector_containers",
    help: "Containers the runtime lists",
    registers: [registry],
    collect() {
      this.set(agent.containers.current().size);
    },
  });

  let server: Server | undefined;
  if (values["metrics-address"]) {
    const m = /^(.*):(\d+)$/.exec(values["metrics-address"]);
    if (!m) throw new Error("--metrics-address: want HOST:PORT");
    server = createServer((req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      void registry
        .metrics()
        .then((text) => res.writeHead(200, { "content-type": registry.contentType }).end(text));
    });
    await new Promise<void>((resolve) => server!.listen(Number(m[2]), m[1], resolve));
  }

  // Handlers first: a SIGTERM during start-up still ends in a graceful stop.
  const stopSignal = new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  process.on("SIGHUP", () => {
    log.info("SIGHUP: reloading configs");
    void agent.reload();
  });
  log.info({ endpoint, docker, config: values.config, hostRoot: hostRoot || undefined }, "starting");
  await agent.start();
  await stopSignal;
  log.info("stopping");
  await agent.stop();
  server?.close();
  client?.close();
  log.info("stopped");
  return 0;
}

async function status(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { "state-dir": { type: "string" }, output: { type: "string", short: "o" } },
    strict: true,
  });
  const dir = values["state-dir"] ?? DEFAULT_STATE_DIR;
  const st = JSON.parse(
    await readFile(join(dir, "status.json"), "utf8").catch(() => "{}"),
  ) as Partial<AgentStatus>;
  const cp = JSON.parse(
    await readFile(join(dir, "checkpoints.json"), "utf8").catch(() => '{"sources":{}}'),
  ) as {
    sources: Record<string, SourceCheckpoint>;
  };
  const sources = await Promise.all(
    Object.entries(cp.sources).map(async ([key, s]) => {
      const size = s.position
        ? await stat(s.position.path).then(
            (x) => x.size,
            () => undefined,
          )
        : undefined;
      return {
        key,
        path: s.position?.path ?? "",
        offset: s.position?.offset ?? 0,
        size,
        done: s.done === true,
      };
    }),
  );
  if (values.output === "json") {
    console.log(JSON.stringify({ ...st, sources }, null, 2));
    return 0;
  }
  console.log(`pid ${st.pid ?? "?"}, status of ${st.updated ?? "never"}`);
  for (const p of st.pipelines ?? []) console.log(`pipeline ${p.name}\t${p.file}`);
  for (const e of st.errors ?? []) console.log(`ERROR ${e.file}: ${e.error}`);
  for (const s of sources) {
    const lag =
      s.size === undefined ? "file gone" : s.done ? "done" : `${Math.max(0, s.size - s.offset)} bytes behind`;
    console.log(`${s.key}\t${s.path}\toffset ${s.offset}\t${lag}`);
  }
  return 0;
}
