/**
 * The agent without a runtime (input_file on host files, an in-test HTTP sink): config
 * reloads keep positions, a bad edit keeps the running pipeline, nothing is committed while
 * the sink refuses, multiline records through processor_merge_multiline_log_native.
 */
import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { CriClient } from "../api/client.js";
import { createLogger } from "../common/logger.js";
import { Agent } from "./agent.js";

class Sink {
  records: Array<Record<string, string>> = [];
  down = false;
  /** Distinct bodies refused while down (one = the reader waits on one batch). */
  refused = new Set<string>();
  server!: Server;
  url = "";
  async start() {
    this.server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        if (this.down) {
          this.refused.add(body);
          return void res.writeHead(503).end();
        }
        for (const l of body.split("\n")) if (l) this.records.push(JSON.parse(l));
        res.end("{}");
      });
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }
  async stop() {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
  contents() {
    return this.records.map((r) => r["content"]);
  }
}

const lines = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `line-${from + i}\n`).join("");
const seq = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line-${from + i}`);

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("agent", () => {
  let dir: string;
  let client: CriClient;
  const agents: Agent[] = [];
  const sinks: Sink[] = [];
  let logText = "";
  const log = createLogger(
    "info",
    new Writable({
      write(chunk, _enc, cb) {
        logText += chunk.toString();
        cb();
      },
    }),
  );
  const agent = (name: string) => {
    const a = new Agent({
      configPath: join(dir, name, "conf.d"),
      stateDir: join(dir, name, "state"),
      client,
      log,
      configIntervalMs: 100,
      readIntervalMs: 20,
      checkpointIntervalMs: 100,
      discoveryIntervalMs: 60_000,
    });
    agents.push(a);
    return a;
  };
  const sink = async () => {
    const s = new Sink();
    await s.start();
    sinks.push(s);
    return s;
  };
  const fileConfig = (path: string, url: string, more = "") =>
    `inputs:\n  - Type: input_file\n    FilePaths: [${path}]\n${more}flushers:\n  - Type: flusher_http\n    RemoteURL: ${url}\n`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "collector-agent-"));
    client = new CriClient(join(dir, "no-runtime.sock"), { timeoutMs: 1000 });
  });
  after(async () => {
    for (const a of agents) await a.stop(100).catch(() => {});
    for (const s of sinks) await s.stop();
    client.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("a changed config replaces its pipeline where the old one stopped; a bad edit keeps it", async () => {
    const [a, b] = [await sink(), await sink()];
    const conf = join(dir, "reload", "conf.d");
    await mkdir(conf, { recursive: true });
    const app = join(dir, "reload", "app.log");
    await writeFile(app, lines(0, 1000));
    await writeFile(join(conf, "app.yaml"), fileConfig(app, a.url));
    const ag = agent("reload");
    await ag.start();
    await until("1000 at a", () => a.records.length >= 1000);
    await writeFile(join(conf, "app.yaml"), fileConfig(app, b.url));
    await until("the reload", () => logText.includes("pipeline reloaded"));
    await appendFile(app, lines(1000, 2000));
    await until("1000 at b", () => b.records.length >= 1000);

    await writeFile(join(conf, "app.yaml"), `${fileConfig(app, a.url)}    Retries: 3\n`);
    await until("the error", () => ag.configErrors().size === 1);
    assert.match(
      ag.configErrors().get(join(conf, "app.yaml"))!,
      /flushers\[0\] \(flusher_http\): unknown parameter "Retries"/,
    );
    await appendFile(app, lines(2000, 2500));
    await until("500 more at b", () => b.records.length >= 1500);
    await ag.reload(); // what SIGHUP does: no change, nothing restarts
    await ag.stop();
    assert.deepEqual(a.contents(), seq(0, 1000));
    assert.deepEqual(b.contents(), seq(1000, 2500));
    assert.equal(a.records[0]!["__path__"], app);
  });

  it("input_file: files there before the pipeline start at their last TailSizeKB, later ones at 0", async () => {
    const [tail, all] = [await sink(), await sink()];
    const conf = join(dir, "tailsize", "conf.d");
    const logs = join(dir, "tailsize", "logs");
    await mkdir(conf, { recursive: true });
    await mkdir(logs);
    const old = lines(0, 1000);
    await writeFile(join(logs, "old.log"), old);
    await writeFile(join(conf, "tail.yaml"), fileConfig(`${logs}/*.log`, tail.url, "    TailSizeKB: 1\n"));
    await writeFile(
      join(conf, "all.yaml"),
      fileConfig(`${logs}/*.log`, all.url, "    TailingAllMatchedFiles: true\n"),
    );
    const ag = agent("tailsize");
    await ag.start();
    await until("the old file", () => all.records.length >= 1000 && tail.records.length > 0);
    await writeFile(join(logs, "new.log"), lines(0, 100));
    await appendFile(join(logs, "old.log"), lines(1000, 1010));
    const of = (s: Sink, name: string) =>
      s.records.filter((r) => r["__path__"] === join(logs, name)).map((r) => r["content"]);
    // Each file's last line at each sink (the tail sink's old lines alone can outnumber 100).
    await until("the new file", () =>
      [tail, all].every(
        (s) => of(s, "new.log").includes("line-99") && of(s, "old.log").includes("line-1009"),
      ),
    );
    await ag.stop();
    // The first line that starts within the last 1024 bytes of what was there.
    const first = old.slice(0, old.indexOf("\n", old.length - 1024 - 1) + 1).split("\n").length - 1;
    assert.deepEqual(of(tail, "old.log"), seq(first, 1010));
    assert.deepEqual(of(tail, "new.log"), seq(0, 100));
    assert.deepEqual(of(all, "old.log"), seq(0, 1010));
    assert.deepEqual(of(all, "new.log"), seq(0, 100));
  });

  it("commits nothing while the sink refuses, then delivers each record once", async () => {
    const s = await sink();
    s.down = true;
    const conf = join(dir, "down", "conf.d");
    await mkdir(conf, { recursive: true });
    const app = join(dir, "down", "app.log");
    await writeFile(app, lines(0, 50_000));
    await writeFile(join(conf, "p.yaml"), fileConfig(app, s.url));
    const ag = agent("down");
    await ag.start();
    await new Promise((r) => setTimeout(r, 500));
    await ag.checkpoints.flush();
    const cp = JSON.parse(await readFile(ag.checkpoints.file, "utf8").catch(() => '{"sources":{}}'));
    assert.equal(
      cp.sources[`p/file/${app}`]?.position?.offset ?? 0,
      0,
      "no position moves before the sink takes it",
    );
    // Backpressure: the reader retries its one batch and reads nothing further meanwhile.
    assert.equal(s.refused.size, 1);
    assert.ok([...s.refused][0]!.split("\n").length - 1 < 50_000, "one batch, not the whole file");
    // Stopping while the sink is down abandons the batch uncommitted; the next agent sends it.
    await ag.stop(200);
    s.down = false;
    const ag2 = agent("down");
    await ag2.start();
    await until("50000 records", () => s.records.length >= 50_000);
    await ag2.stop();
    assert.deepEqual(s.contents(), seq(0, 50_000));
  });

  it("merges multiline records (start pattern), flushing the last one after FlushTimeoutSecs", async () => {
    const s = await sink();
    const conf = join(dir, "ml", "conf.d");
    await mkdir(conf, { recursive: true });
    const app = join(dir, "ml", "app.log");
    const trace = (n: number) => `2026-12-06 ERROR boom ${n}\n  at a.b(C.java:1)\n  at d.e(F.java:2)\n`;
    await writeFile(app, `orphan\n${trace(0)}${trace(1)}2026-12-06 INFO ok\n`);
    await writeFile(
      join(conf, "ml.yaml"),
      fileConfig(
        app,
        s.url,
        "    FlushTimeoutSecs: 0.2\nprocessors:\n  - Type: processor_merge_multiline_log_native\n    StartPattern: \\d{4}-\\d\\d-\\d\\d .*\n" +
          "  - Type: processor_parse_regex_native\n    Regex: (\\S+) (\\S+) (.*)\n    Keys: [date, level, msg]\n    KeepingSourceWhenParseFail: true\n",
      ),
    );
    const ag = agent("ml");
    await ag.start();
    await until("4 records", () => s.records.length >= 4);
    await ag.stop();
    assert.deepEqual(
      s.records.map((r) => r["level"] ?? r["content"]),
      ["orphan", "ERROR", "ERROR", "INFO"],
    );
    assert.equal(s.records[1]!["msg"], "boom 0\n  at a.b(C.java:1)\n  at d.e(F.java:2)");
  });
  it("finds Docker containers (--docker-endpoint) and reads their json-file logs, partial lines joined", async () => {
    const s = await sink();
    const base = join(dir, "docker");
    await mkdir(join(base, "conf.d"), { recursive: true });
    const logPath = join(base, "c1-json.log");
    const entry = (log: string, stream = "stdout") =>
      `${JSON.stringify({ log, stream, time: "2026-12-06T03:23:46.123456789Z" })}\n`;
    await writeFile(
      logPath,
      `${Array.from({ length: 100 }, (_, i) => entry(`line-${i}\n`)).join("")}${entry("long-", "stderr")}${entry("end\n", "stderr")}`,
    );
    const labels = {
      "io.kubernetes.container.name": "app",
      "io.kubernetes.pod.name": "web-1",
      "io.kubernetes.pod.namespace": "prod",
      "io.kubernetes.pod.uid": "uid-1",
      "io.kubernetes.sandbox.id": "sb1",
    };
    const api = createServer((req, res) => {
      const send = (o: unknown) =>
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(o));
      if (req.url === "/containers/json?all=1") {
        send([
          { Id: "sb1", State: "running", Labels: { "io.kubernetes.docker.type": "podsandbox", app: "web" } },
          { Id: "c1", State: "running", Labels: labels },
        ]);
        return;
      }
      if (req.url === "/containers/c1/json") {
        send({
          Id: "c1",
          Name: "/k8s_app_web-1",
          LogPath: logPath,
          Config: { Env: ["TEAM=blue"], Labels: labels, Image: "busybox:latest" },
          State: { Status: "running" },
          Mounts: [],
          GraphDriver: { Data: { UpperDir: "/nonexistent" } },
        });
        return;
      }
      res.writeHead(404).end("{}");
    });
    const sock = join(base, "docker.sock");
    await new Promise<void>((r) => api.listen(sock, r));
    try {
      await writeFile(
        join(base, "conf.d", "d.yaml"),
        `inputs:\n  - Type: input_container_stdio\n    ContainerFilters: { IncludeK8sLabel: { app: web } }\n` +
          `    ExternalEnvTag: { TEAM: team }\nflushers:\n  - Type: flusher_http\n    RemoteURL: ${s.url}\n`,
      );
      const ag = new Agent({
        configPath: join(base, "conf.d"),
        stateDir: join(base, "state"),
        dockerEndpoint: `unix://${sock}`,
        log,
        configIntervalMs: 100,
        readIntervalMs: 20,
        discoveryIntervalMs: 100,
      });
      agents.push(ag);
      await ag.start();
      await until("101 records", () => s.records.length >= 101);
      await ag.stop();
      assert.deepEqual(
        s.records.filter((r) => r["_source_"] === "stdout").map((r) => r["content"]),
        seq(0, 100),
      );
      const last = s.records[100]!;
      assert.deepEqual(
        [
          last["content"],
          last["_source_"],
          last["_time_"],
          last["_pod_name_"],
          last["_namespace_"],
          last["team"],
        ],
        ["long-end", "stderr", "2026-12-06T03:23:46.123456789Z", "web-1", "prod", "blue"],
      );
    } finally {
      api.closeAllConnections();
      await new Promise((r) => api.close(r));
    }
  });
});
