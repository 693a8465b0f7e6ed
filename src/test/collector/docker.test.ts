/**
 * berth-collector against a real Docker Engine (Debian's dockerd on private sockets, see
 * src/tools/dockerd-process.ts): containers started in it write known numbered lines through
 * the json-file log driver; the collector finds them through the Docker API only
 * (`--docker-endpoint`), selects them by env, container label and cri-dockerd-style Kubernetes
 * labels, joins json-file's 16 KiB partial chunks, follows containers that write and exit at
 * once, reads a file inside a container (input_file with container discovery), and writes to
 * flusher_stdout files: the received set must equal the written set, in order per stream.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DockerDiscovery } from "../../collector/discovery-docker.js";
import { createLogger } from "../../common/logger.js";
import type { DockerEngine } from "../../docker/engine.js";
import { busyboxLayer } from "../../tools/busybox-image.js";
import { DockerdProcess, dockerMissing } from "../../tools/dockerd-process.js";
import { buildImage, dockerSaveArchive } from "../../tools/oci-builder.js";
import { sleep } from "../harness/cri.js";
import { SUITE_TIMEOUT_MS } from "../harness/timeouts.js";
import { numbered, seq } from "./env.js";

const IMAGE = "berth.test/busybox:collector";
const BIN = new URL("../../bin/berth-collector.js", import.meta.url).pathname;
const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
const skip = await dockerMissing();

interface Rec {
  content: string;
  _source_: string;
  _time_: string;
  _container_id_: string;
  _container_name_: string;
  _pod_name_: string;
  _namespace_: string;
  _pod_uid_: string;
  _image_name_: string;
  __path__?: string;
  [k: string]: string | undefined;
}

function readRecords(file: string): Rec[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  return complete
    .split("\n")
    .filter((l) => l)
    .map((l) => JSON.parse(l) as Rec);
}

const of = (recs: Rec[], id: string, source = "stdout") =>
  recs.filter((r) => r._container_id_ === id && r._source_ === source).map((r) => r.content);

describe("berth-collector with Docker Engine", { skip, timeout: SUITE_TIMEOUT_MS }, () => {
  let dockerd: DockerdProcess;
  let engine: DockerEngine;
  let dir = "";
  let proc: ChildProcess | undefined;
  let output = "";
  const confDir = () => join(dir, "conf.d");

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-collector-docker-"));
    dockerd = await DockerdProcess.start();
    const { DockerEngine } = await import("../../docker/engine.js");
    engine = new DockerEngine(dockerd.endpoint);
    const layer = await busyboxLayer("none");
    const image = buildImage([layer], {
      config: { Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["sh"] },
    });
    const archive = await dockerSaveArchive([{ image, tags: [IMAGE], tars: [layer.blob] }]);
    const res = await engine.call("POST", "/images/load", { raw: archive, query: { quiet: true } });
    for await (const _ of res);
  });

  after(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc!.once("exit", r));
      proc.kill("SIGKILL");
      await exited;
    }
    if (process.env["BERTH_DEBUG_COLLECTOR"]) await writeFile(process.env["BERTH_DEBUG_COLLECTOR"], output);
    await dockerd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Creates and starts a container; returns its id. */
  async function run(
    name: string,
    script: string,
    opts: {
      env?: string[];
      labels?: Record<string, string>;
      logDriver?: string;
      logOpts?: Record<string, string>;
    } = {},
  ): Promise<string> {
    const { Id } = await engine.json<{ Id: string }>("POST", "/containers/create", {
      query: { name },
      body: {
        Image: IMAGE,
        Cmd: ["sh", "-c", script],
        Env: opts.env ?? [],
        Labels: opts.labels ?? {},
        HostConfig: {
          NetworkMode: "none",
          LogConfig: { Type: opts.logDriver ?? "json-file", Config: opts.logOpts ?? {} },
        },
      },
    });
    await engine.json("POST", `/containers/${Id}/start`);
    return Id;
  }

  const waitExit = (id: string) => engine.json("POST", `/containers/${id}/wait`);

  async function startCollector(): Promise<void> {
    proc = spawn(
      process.execPath,
      [
        BIN,
        "--config",
        confDir(),
        "--docker-endpoint",
        dockerd.endpoint,
        "--state-dir",
        join(dir, "state"),
        "--log-level",
        "debug",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    proc.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  }

  async function until(what: string, cond: () => boolean, ms = 90_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what} (${["sel", "k8s", "files"].map((n) => `${n}: ${readRecords(join(dir, `${n}.json`)).length}`).join(", ")})\ncollector output:\n${output.slice(-6000)}`,
        );
      await sleep(200);
    }
  }

  it("selects, joins, follows short-lived containers and reads files inside them: nothing lost or duplicated", async () => {
    const out = (n: string) => join(dir, `${n}.json`);
    await mkdir(confDir(), { recursive: true });
    await writeFile(
      join(confDir(), "sel.yaml"),
      `inputs:
  - Type: input_container_stdio
    ContainerFilters:
      IncludeContainerLabel: { suite: "^collector-it$" }
      ExcludeContainerLabel: { skip: "yes" }
      IncludeEnv: { TEAM: "^(blue|green)$" }
      ExcludeEnv: { NO_LOGS: "" }
    ExternalEnvTag: { TEAM: team }
flushers:
  - Type: flusher_stdout
    FileName: ${out("sel")}
`,
    );
    await writeFile(
      join(confDir(), "k8s.yaml"),
      `inputs:
  - Type: input_container_stdio
    ContainerFilters:
      K8sNamespaceRegex: ^kns$
      IncludeK8sLabel: { app: web }
      K8sContainerRegex: ^(main|side)$
    ExternalK8sLabelTag: { app: k8s_app }
flushers:
  - Type: flusher_stdout
    FileName: ${out("k8s")}
`,
    );
    await writeFile(
      join(confDir(), "rot.yaml"),
      `inputs:
  - Type: input_container_stdio
    ContainerFilters: { IncludeContainerLabel: { rot: "1" } }
flushers:
  - Type: flusher_stdout
    FileName: ${out("rot")}
`,
    );
    await writeFile(
      join(confDir(), "files.yaml"),
      `inputs:
  - Type: input_file
    FilePaths: [/var/log/app/*.log]
    EnableContainerDiscovery: true
    ContainerFilters:
      IncludeContainerLabel: { files: "1" }
flushers:
  - Type: flusher_stdout
    FileName: ${out("files")}
`,
    );
    await startCollector();
    // Written before? No: every container starts after the collector, most exit at once.
    const suite = { suite: "collector-it" };
    const a = await run("alpha", `${numbered(3000)}; ${numbered(1500, "err-", { stderr: true })}`, {
      env: ["TEAM=blue"],
      labels: suite,
    });
    const quick = await run("quick", "echo only-0; echo only-1 >&2; echo only-2", {
      env: ["TEAM=green"],
      labels: suite,
    });
    // 40000 and 70000 bytes: json-file writes them in 16 KiB chunks without a newline.
    const long = (n: number, ch: string) => `head -c ${n} /dev/zero | tr '\\0' ${ch}; echo`;
    const big = await run(
      "big",
      `echo first; ${long(40000, "x")}; echo middle; ${long(70000, "y")}; echo last`,
      {
        env: ["TEAM=blue"],
        labels: suite,
      },
    );
    // json-file's own rotation (max-size): `<id>-json.log` renamed to `.1`, `.1` to `.2`, …
    await run("rot", numbered(5000, "rot-"), {
      labels: { rot: "1" },
      logOpts: { "max-size": "20k", "max-file": "100" },
    });
    const noLogs = await run("nologs", numbered(50), { env: ["TEAM=blue", "NO_LOGS=1"], labels: suite });
    const skipped = await run("skipped", numbered(50), {
      env: ["TEAM=blue"],
      labels: { ...suite, skip: "yes" },
    });
    const red = await run("red", numbered(50), { env: ["TEAM=red"], labels: suite });
    const local = await run("local", numbered(50), { env: ["TEAM=blue"], labels: suite, logDriver: "local" });

    // A pod as cri-dockerd lays it out: a sandbox container holding the pod's labels, and
    // containers pointing at it by io.kubernetes.sandbox.id.
    const pod = async (name: string, labels: Record<string, string>) =>
      run(`k8s_POD_${name}`, "sleep 3600", {
        labels: {
          "io.kubernetes.docker.type": "podsandbox",
          "io.kubernetes.pod.name": name,
          "io.kubernetes.pod.namespace": "kns",
          "io.kubernetes.pod.uid": `uid-${name}`,
          ...labels,
        },
      });
    const k8sContainer = (podName: string, sandbox: string, name: string, script: string) =>
      run(`k8s_${name}_${podName}`, script, {
        labels: {
          "io.kubernetes.docker.type": "container",
          "io.kubernetes.container.name": name,
          "io.kubernetes.pod.name": podName,
          "io.kubernetes.pod.namespace": "kns",
          "io.kubernetes.pod.uid": `uid-${podName}`,
          "io.kubernetes.sandbox.id": sandbox,
        },
      });
    const web = await pod("web", { app: "web" });
    const db = await pod("db", { app: "db" });
    const main = await k8sContainer("web", web, "main", numbered(1000, "main-"));
    const other = await k8sContainer("web", web, "other", numbered(50));
    const dbMain = await k8sContainer("db", db, "main", numbered(50));

    const filer = await run(
      "filer",
      `mkdir -p /var/log/app; ${numbered(2000, "file-").replace("echo file-$i", "echo file-$i >> /var/log/app/a.log")}; sleep 3600`,
      { labels: { files: "1" } },
    );

    for (const id of [a, quick, big, noLogs, skipped, red, local, main, other, dbMain]) await waitExit(id);
    await until("4508 records from the env/label pipeline", () => readRecords(out("sel")).length >= 4508);
    await until("1000 records from the k8s pipeline", () => readRecords(out("k8s")).length >= 1000);
    await until(
      "2000 records from the file inside the container",
      () => readRecords(out("files")).length >= 2000,
    );
    // A moment for anything that should not come (extra or duplicate records) to arrive.
    await sleep(2000);
    const exited = new Promise<number | null>((r) => proc!.once("exit", (code) => r(code)));
    proc!.kill("SIGTERM");
    assert.equal(await exited, 0, output.slice(-4000));

    const sel = readRecords(out("sel"));
    assert.deepEqual(of(sel, a), seq(3000));
    assert.deepEqual(of(sel, a, "stderr"), seq(1500, "err-"));
    assert.deepEqual(of(sel, quick), ["only-0", "only-2"]);
    assert.deepEqual(of(sel, quick, "stderr"), ["only-1"]);
    const bigLines = of(sel, big);
    assert.deepEqual(
      bigLines.map((l) => (l.length > 100 ? `${l[0]}*${l.length}` : l)),
      ["first", "x*40000", "middle", "y*70000", "last"],
    );
    assert.equal(bigLines[1], "x".repeat(40000));
    assert.equal(bigLines[3], "y".repeat(70000));
    for (const id of [noLogs, skipped, red, local, main])
      assert.equal(of(sel, id).length, 0, `container ${id.slice(0, 12)} is not selected`);
    assert.equal(sel.length, 4508, "nothing else, nothing twice");
    const r = sel.find((x) => x._container_id_ === a)!;
    assert.match(r._time_, RFC3339_NANO);
    assert.deepEqual([r._container_name_, r._image_name_, r["team"]], ["alpha", IMAGE, "blue"]);
    // The local log driver's file is not json-file: the collector says so and reads nothing.
    assert.match(output, /log driver \\?"local\\?" is not readable/);

    const k8s = readRecords(out("k8s"));
    assert.deepEqual(of(k8s, main), seq(1000, "main-"));
    assert.equal(k8s.length, 1000, "other containers and the db pod are not collected");
    const m = k8s[0]!;
    assert.deepEqual(
      [m._container_name_, m._pod_name_, m._namespace_, m._pod_uid_, m["k8s_app"]],
      ["main", "web", "kns", "uid-web", "web"],
    );

    const files = readRecords(out("files"));
    assert.deepEqual(
      files.map((f) => f.content),
      seq(2000, "file-"),
    );
    assert.equal(files[0]!._container_id_, filer);
    assert.equal(files[0]!.__path__, "/var/log/app/a.log");
  });

  it("hears of a new container through /events, not only by polling", async () => {
    const discovery = new DockerDiscovery(dockerd.endpoint, createLogger("warn"), 3_600_000);
    try {
      await discovery.start();
      const id = await run("evented", "echo hi");
      // The next poll is an hour away: only the event stream can list the container now.
      const deadline = Date.now() + 60_000;
      while (!discovery.current().has(id)) {
        assert.ok(Date.now() < deadline, "the container was not listed after its events");
        await sleep(100);
      }
    } finally {
      discovery.stop();
    }
  });

  // Read after the test above (same collector run): 5000 lines through json-file's own
  // rotation (max-size 20k: `<id>-json.log` renamed to `.1`, `.1` to `.2`, … within
  // milliseconds, while the collector looks for the oldest one).
  it("reads through json-file's max-size rotation", () => {
    const rot = readRecords(join(dir, "rot.json")).map((r) => r.content);
    assert.deepEqual(rot, seq(5000, "rot-"));
  });
});
