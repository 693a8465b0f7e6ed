/**
 * berth-collector against a real berthd: containers write known numbered lines and the HTTP
 * sink must receive exactly that set, in order per stream (nothing lost, nothing duplicated),
 * through include/exclude rules, long lines split by conmon into P parts, rotation in the
 * middle of a burst, a SIGKILL of the collector, a sink that is down for a while, and a config
 * directory with a broken file. Each test stops its collector gracefully before it compares,
 * so no record can still be on its way.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sleep, waitExited } from "../harness/cri.js";
import { httpGet } from "../harness/pod-env.js";
import { SUITE_TIMEOUT_MS } from "../harness/timeouts.js";
import { Collector, Env, freePort, httpPipeline, IMAGE, numbered, Sink, seq, until } from "./env.js";
import { Rsyslog } from "./rsyslog.js";

const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

describe("berth-collector with berthd", { timeout: SUITE_TIMEOUT_MS }, () => {
  const env = new Env();
  const running: Collector[] = [];
  const sinks: Sink[] = [];
  const collector = (name: string) => {
    const c = new Collector(env, name);
    running.push(c);
    return c;
  };
  const sink = async () => {
    const s = new Sink();
    await s.start();
    sinks.push(s);
    return s;
  };

  before(async () => {
    await env.start();
  });

  let debugOutput = "";
  after(async () => {
    if (debugOutput) console.error(`collector output:\n${debugOutput.slice(-20000)}`);
    for (const c of running) await c.kill("SIGKILL");
    for (const s of sinks) await s.stop();
    await env.stop();
  });

  it("collects what the filters select, tagged, from containers that write and exit at once", async () => {
    const s = await sink();
    const col = collector("select");
    await col.writeConfig(
      "web.yaml",
      httpPipeline(
        "sel",
        s.url,
        `      IncludeK8sLabel: { app: web }
      ExcludeEnv: { NO_LOGS: "" }
    ExternalK8sLabelTag: { app: k8s_app }
    ExternalEnvTag: { TEAM: team }
`,
      ),
    );
    const outFile = join(col.stateDir, "..", "out.json");
    await col.writeConfig(
      "json-file.yaml",
      `inputs:\n  - Type: input_container_stdio\n    ContainerFilters: { K8sNamespaceRegex: ^sel$ }\n` +
        `flushers:\n  - Type: flusher_stdout\n    FileName: ${outFile}\n`,
    );
    await col.writeConfig(
      "broken.yaml",
      "inputs:\n  - Type: input_container_stdio\n    Bogus: 1\nflushers:\n  - Type: flusher_stdout\n",
    );
    await col.start();
    const web = await env.pod("web", "sel", { app: "web" });
    const other = await env.pod("other", "sel", { app: "db" });
    const a = await env.container(web, "a", `${numbered(1000)}; ${numbered(500, "err-", { stderr: true })}`, {
      envs: [{ key: "TEAM", value: "blue" }],
    });
    const skipped = await env.container(web, "skipped", numbered(100), {
      envs: [{ key: "NO_LOGS", value: "1" }],
    });
    const b = await env.container(other, "b", numbered(100));
    await until("1500 records", () => s.records.length >= 1500, 60_000, col);
    const fileLines = () => (existsSync(outFile) ? readFileSync(outFile, "utf8").split("\n").length - 1 : 0);
    await until("1700 lines in the file", () => fileLines() >= 1700, 60_000, col);
    await waitExited(env.rt, a);
    const status = JSON.parse(await readFile(join(col.stateDir, "status.json"), "utf8"));
    assert.deepEqual(status.pipelines.map((p: { name: string }) => p.name).sort(), ["json-file", "web"]);
    assert.match(status.errors[0].error, /unknown parameter "Bogus"/);
    await col.kill("SIGTERM");

    assert.deepEqual(s.contents(a), seq(1000));
    assert.deepEqual(s.contents(a, "stderr"), seq(500, "err-"));
    assert.equal(
      s.contents(skipped).length + s.contents(b).length,
      0,
      "excluded containers are not collected",
    );
    assert.equal(s.records.length, 1500);
    const r = s.records[0]!;
    assert.match(r._time_, RFC3339_NANO);
    assert.deepEqual(
      [
        r._container_name_,
        r._pod_name_,
        r._namespace_,
        r._pod_uid_,
        r._image_name_,
        r._container_id_,
        r["k8s_app"],
        r["team"],
      ],
      ["a", "web", "sel", "uid-web", IMAGE, a, "web", "blue"],
    );
    // The second pipeline (flusher_stdout to a file) got every container of the namespace.
    const lines = (await readFile(outFile, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    for (const id of [a, skipped, b]) {
      const want = id === a ? 1500 : 100;
      assert.equal(lines.filter((l) => l._container_id_ === id).length, want);
    }
    assert.deepEqual(Object.keys(lines[0]).slice(0, 3), ["content", "_source_", "_time_"]);
    // The broken file was reported by name, plugin and key, and stopped nothing.
    assert.match(
      col.output,
      /broken\.yaml: inputs\[0\] \(input_container_stdio\): unknown parameter \\?"Bogus\\?"/,
    );
  });

  it("joins lines longer than conmon's buffer from their P parts", async () => {
    const s = await sink();
    const col = collector("partial");
    await col.writeConfig("p.yaml", httpPipeline("part", s.url));
    await col.start();
    const pod = await env.pod("long", "part");
    // 20000 and 70000 characters: several 8 KiB P parts each, between ordinary lines.
    const long = (n: number, ch: string) => `head -c ${n} /dev/zero | tr '\\0' ${ch}; echo`;
    const c = await env.container(
      pod,
      "w",
      `echo first; ${long(20000, "x")}; echo middle; ${long(70000, "y")}; echo last`,
    );
    await waitExited(env.rt, c);
    await until("5 records", () => s.records.length >= 5, 60_000, col);
    await col.kill("SIGTERM");
    const log = await readFile(env.logPath(pod, "w"), "utf8");
    assert.match(log, / stdout P /, "conmon split the long lines");
    assert.deepEqual(s.contents(c), ["first", "x".repeat(20000), "middle", "y".repeat(70000), "last"]);
  });

  it("loses nothing when the log is rotated (rename, create, ReopenContainerLog) during a burst", async () => {
    const s = await sink();
    const col = collector("rotate");
    await col.writeConfig("r.yaml", httpPipeline("rot", s.url));
    await col.start();
    const pod = await env.pod("rot", "rot");
    const N = 20000;
    const c = await env.container(pod, "w", numbered(N, "line-", { pauseEvery: 500 }));
    const path = env.logPath(pod, "w");
    let rotations = 0;
    for (let i = 0; i < 6; i++) {
      await sleep(250);
      const st = await env.rt.call<{ status: { state: number } }>("containerStatus", { containerId: c });
      if (st.status.state !== 1) break;
      const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 19);
      await rename(path, `${path}.${stamp}${i}`);
      await env.rt.call("reopenContainerLog", { containerId: c }).catch(() => {});
      rotations++;
    }
    assert.ok(rotations >= 2, `rotated ${rotations} times while the container wrote`);
    await waitExited(env.rt, c);
    await until(`${N} records`, () => s.records.length >= N, 60_000, col).catch(async (err: Error) => {
      const got = s.contents(c);
      const missing = seq(N).filter((l) => !got.includes(l));
      const files = await readdir(join(path, ".."));
      throw new Error(
        `${err.message}\ngot ${got.length}, missing ${missing.length} from ${missing[0]}, files ${files}`,
      );
    });
    await col.kill("SIGTERM");
    assert.deepEqual(s.contents(c), seq(N));
  });

  it("resumes after a SIGKILL without losing anything, and after SIGTERM without duplicates", async () => {
    const s = await sink();
    const col = collector("restart");
    await col.writeConfig("k.yaml", httpPipeline("kill", s.url));
    await col.start();
    const pod = await env.pod("kill", "kill");
    const N = 20000;
    const c = await env.container(pod, "w", numbered(N, "line-", { pauseEvery: 500 }));
    await until("some records", () => s.records.length >= 2000, 60_000, col);
    await col.kill("SIGKILL");
    const atKill = s.records.length;
    await col.start();
    await waitExited(env.rt, c);
    await until(`${N} distinct records`, () => new Set(s.contents(c)).size >= N, 60_000, col);
    await col.kill("SIGTERM");
    const got = s.contents(c);
    debugOutput = col.output;
    // At least once: every line, in order of first arrival; repeats only of lines sent before the kill.
    const firsts = [...new Set(got)];
    assert.deepEqual(firsts, seq(N));
    assert.ok(got.length - N <= atKill, "only lines from before the kill come twice");

    // A clean stop and start: nothing again, and a new container's lines exactly once.
    const before = s.records.length;
    await col.start();
    const c2 = await env.container(pod, "w2", numbered(1000));
    await waitExited(env.rt, c2);
    await until("1000 more", () => s.contents(c2).length >= 1000, 60_000, col);
    await col.kill("SIGTERM");
    debugOutput = col.output;
    await col.start();
    const c3 = await env.container(pod, "w3", numbered(10));
    await until("10 more", () => s.contents(c3).length >= 10, 60_000, col);
    await col.kill("SIGTERM");
    assert.deepEqual(s.contents(c2), seq(1000));
    assert.deepEqual(s.contents(c3), seq(10));
    assert.equal(s.records.length, before + 1010, "a clean restart sends nothing twice");
    debugOutput = "";
  });

  it("holds records while the sink is down and delivers each once when it is back", async () => {
    const s = await sink();
    s.down = true;
    const col = collector("down");
    col.metricsPort = await freePort();
    await col.writeConfig("d.yaml", httpPipeline("down", s.url));
    await col.start();
    const pod = await env.pod("down", "down");
    const c = await env.container(pod, "w", numbered(3000));
    await waitExited(env.rt, c);
    await until("retries against the dead sink", () => s.requests >= 3, 60_000, col);
    assert.equal(s.records.length, 0);
    // Held, not dropped: the container's unread log is its lag, the batch in hand is buffered.
    const held = await httpGet(`http://127.0.0.1:${col.metricsPort}/metrics`);
    assert.match(
      held,
      new RegExp(`berth_collector_lag_bytes\\{pipeline="d",source="d/stdio/${c}",container="w"\\} [1-9]`),
    );
    assert.match(held, /berth_collector_buffer_bytes\{pipeline="d"\} [1-9]/);
    assert.match(held, /berth_collector_read_records_total\{pipeline="d"\} [1-9]/);
    // The one-screen status (rewritten every 2 s) shows the pipeline, the container and its lag.
    let screen = "";
    const deadline = Date.now() + 30_000;
    while (!/^\s+w\s+down\s+down\s+[1-9][\d.]* (B|KiB|MiB)/m.test(screen)) {
      assert.ok(Date.now() < deadline, `no lag for the container in the status:\n${screen}`);
      await sleep(500);
      screen = await col.statusText();
    }
    assert.match(screen, /^pipeline d \(.*d\.yaml\): 1 followed/m);
    s.down = false;
    await until("3000 records", () => s.records.length >= 3000, 60_000, col);
    const metrics = await httpGet(`http://127.0.0.1:${col.metricsPort}/metrics`);
    assert.match(metrics, /berth_collector_records_total\{pipeline="d"\} 3000/);
    assert.match(metrics, /berth_collector_read_records_total\{pipeline="d"\} 3000/);
    assert.match(metrics, /berth_collector_discarded_records_total\{pipeline="d"\} 0/);
    assert.match(metrics, /berth_collector_buffer_bytes\{pipeline="d"\} 0/);
    assert.match(metrics, /berth_collector_send_failures_total\{pipeline="d",flusher="flusher_http"\} [1-9]/);
    await col.kill("SIGTERM");
    assert.deepEqual(s.contents(c), seq(3000));
    // `berth-collector status`: the container's log read to its end, and done.
    const st = await col.status();
    const src = st.sources.find((x) => x.key === `d/stdio/${c}`);
    assert.ok(src?.done && src.offset === src.size, JSON.stringify(st.sources));
  });

  it("input_file reads files inside containers: the writable layer and bind mounts", async () => {
    const s = await sink();
    const col = collector("files");
    const data = join(env.dir, "data-mount");
    await mkdir(data, { recursive: true });
    await col.writeConfig(
      "f.yaml",
      `inputs:
  - Type: input_file
    FilePaths: [/logs/*.log, /data/*.log]
    EnableContainerDiscovery: true
    ContainerFilters: { K8sNamespaceRegex: ^files$ }
flushers:
  - Type: flusher_http
    RemoteURL: ${s.url}
`,
    );
    await col.start();
    const pod = await env.pod("files", "files");
    const c = await env.container(
      pod,
      "w",
      `mkdir -p /logs; (${numbered(1000)}) > /logs/a.log; (${numbered(500, "b-")}) > /data/b.log; sleep 1000`,
      { mounts: [{ containerPath: "/data", hostPath: data }] },
    );
    await until("1500 records", () => s.records.length >= 1500, 60_000, col);
    await col.kill("SIGTERM");
    const by = (p: string) =>
      s.records.filter((r) => r["__path__"] === p && r._container_id_ === c).map((r) => r.content);
    assert.deepEqual(by("/logs/a.log"), seq(1000));
    assert.deepEqual(by("/data/b.log"), seq(500, "b-"));
    await env.rt.call("stopContainer", { containerId: c, timeout: 0 });
  });
  it("ships container output to rsyslogd (flusher_syslog), multi-line records whole", async () => {
    const rsyslog = new Rsyslog();
    await rsyslog.start();
    try {
      const col = collector("syslog");
      await col.writeConfig(
        "s.yaml",
        `inputs:
  - Type: input_container_stdio
    ContainerFilters: { K8sNamespaceRegex: ^syslog$ }
    Multiline: { StartPattern: "(line|trace)-.*" }
flushers:
  - Type: flusher_syslog
    Address: tcp://127.0.0.1:${rsyslog.port}
`,
      );
      await col.start();
      const pod = await env.pod("syslog", "syslog");
      const c = await env.container(
        pod,
        "w",
        `${numbered(1000)}; echo trace-x; echo "  at a"; echo "  at b"`,
      );
      await waitExited(env.rt, c);
      await until("1001 messages", () => rsyslog.received().length >= 1001, 60_000, col);
      await col.kill("SIGTERM");
      assert.deepEqual(rsyslog.messages(), [...seq(1000), "trace-x\n  at a\n  at b"]);
      const [app, msgid, pri, , sd] = rsyslog.received()[0]!.split("|");
      assert.deepEqual([app, msgid, pri], ["w", "stdout", "14"]);
      assert.match(
        sd!,
        new RegExp(`namespace="syslog" pod="syslog" pod_uid="uid-syslog" container="w" container_id="${c}"`),
      );
    } finally {
      await rsyslog.stop();
    }
  });
});
