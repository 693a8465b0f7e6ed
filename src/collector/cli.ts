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
import { table } from "../cli/format.js";
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
  const readRecords = new Counter({
    name: "berth_collector_read_records_total",
    help: "Records read from the logs (before the processors)",
    labelNames: ["pipeline"],
    registers: [registry],
  });
  const readBytes = new Counter({
    name: "berth_collector_read_bytes_total",
    help: "Log bytes read (committed once delivered)",
    labelNames: ["pipeline"],
    registers: [registry],
  });
  const records = new Counter({
    name: "berth_collector_records_total",
    help: "Records delivered (taken by every flusher)",
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
      read: (p, n, b) => {
        readRecords.inc({ pipeline: p }, n);
        readBytes.inc({ pipeline: p }, b);
      },
      records: (p, n, b) => {
        records.inc({ pipeline: p }, n);
        bytes.inc({ pipeline: p }, b);
      },
      sendFailure: (p, f) => failures.inc({ pipeline: p, flusher: f }),
    },
  });
  new Counter({
    name: "berth_collector_discarded_records_total",
    help: "Records dropped by the collector: always 0 (a slow sink stops the readers instead)",
    labelNames: ["pipeline"],
    registers: [registry],
    collect() {
      for (const p of agent.pipelines()) this.inc({ pipeline: p }, 0);
    },
  });
  // Both gauges below come from one look at the sources per scrape (prom-client collects
  // the metrics of a scrape concurrently): one stat per followed log, not one per gauge.
  let scraping: Promise<AgentStatus> | undefined;
  const scrapeStatus = () =>
    (scraping ??= agent.status().finally(() => {
      scraping = undefined;
    }));
  new Gauge({
    name: "berth_collector_lag_bytes",
    help: "Bytes in a followed log not yet delivered",
    labelNames: ["pipeline", "source", "container"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of (await scrapeStatus()).pipelines) {
        for (const s of p.sources) {
          this.set({ pipeline: p.name, source: s.key, container: s.container ?? "" }, s.lagBytes);
        }
      }
    },
  });
  new Gauge({
    name: "berth_collector_buffer_bytes",
    help: "Bytes read and held until every flusher takes them",
    labelNames: ["pipeline"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of (await scrapeStatus()).pipelines) {
        this.set(
          { pipeline: p.name },
          p.sources.reduce((n, s) => n + s.bufferedBytes, 0),
        );
      }
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
  const running = st.pid !== undefined && isRunning(st.pid);
  console.log(
    `pid ${st.pid ?? "?"} (${running ? "running" : "not running"}), status of ${st.updated ?? "never"}`,
  );
  for (const e of st.errors ?? []) console.log(`ERROR ${e.file}: ${e.error}`);
  for (const p of st.pipelines ?? []) {
    const live = p.sources ?? [];
    const done = sources.filter((s) => s.done && s.key.startsWith(`${p.name}/`)).length;
    const lag = live.reduce((n, s) => n + s.lagBytes, 0);
    console.log(
      `\npipeline ${p.name} (${p.file}): ${live.length} followed, ${done} read to the end, lag ${size(lag)}`,
    );
    if (live.length === 0) continue;
    const rows = live.map((s) => [
      s.container ?? "-",
      s.pod ?? "-",
      s.namespace ?? "-",
      size(s.lagBytes),
      size(s.bufferedBytes),
      s.path,
    ]);
    const screen = table(["CONTAINER", "POD", "NAMESPACE", "LAG", "IN FLIGHT", "PATH"], rows);
    console.log(screen.replace(/^/gm, "  "));
  }
  if (!running || (st.pipelines ?? []).length === 0) {
    // Not running: what the checkpoints say.
    for (const s of sources) {
      const lag =
        s.size === undefined
          ? "file gone"
          : s.done
            ? "done"
            : `${size(Math.max(0, s.size - s.offset))} behind`;
      console.log(`${s.key}\t${s.path}\toffset ${s.offset}\t${lag}`);
    }
  }
  return 0;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
