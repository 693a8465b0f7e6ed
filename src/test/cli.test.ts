/**
 * The berth CLI as a user runs it: spawned processes against a real berthd (host-network pods,
 * no CNI bridge), a real pty for `-it` (util-linux `script`), YAML checked with Python's parser.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync } from "node:fs";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { removeAllPods, runtimeClient, sleep } from "./harness/cri.js";
import { importBusybox, startPodEnv } from "./harness/pod-env.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const BERTH = new URL("../bin/berth.cjs", import.meta.url).pathname;
const IMAGE = "docker.io/berth/busybox:cli";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("berth CLI", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let dir: string;
  let rt: ReturnType<typeof runtimeClient>;
  let endpoint: string;

  /** Runs berth; `input` is written to stdin (then closed), `steps` are timed writes. */
  const berth = (args: string[], input?: string): Promise<Result> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [BERTH, "-r", endpoint, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      p.stdin.on("error", () => {});
      p.stdin.end(input ?? "");
      p.on("close", (code) => resolve({ code, stdout, stderr }));
    });

  /** Runs berth on a real pty (script), typing `keys` with pauses between them. */
  const onPty = (args: string[], keys: { after: number; text: string }[]): Promise<Result> =>
    new Promise((resolve) => {
      // the pty gets a size, which berth passes on to the container's terminal
      const cmd = `stty cols 91 rows 27; ${[process.execPath, BERTH, "-r", endpoint, ...args].map((a) => `'${a}'`).join(" ")}`;
      const p = spawn("script", ["-qec", cmd, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      p.stdin.on("error", () => {});
      void (async () => {
        for (const k of keys) {
          await sleep(k.after);
          p.stdin.write(k.text);
        }
      })();
      p.on("close", (code) => {
        p.stdin.destroy();
        resolve({ code, stdout, stderr });
      });
    });

  const podNames = async () => {
    const { items } = await rt.call<{ items: Array<{ metadata?: { name: string } }> }>("listPodSandbox", {});
    return items.map((p) => p.metadata?.name ?? "").sort();
  };
  const containerCount = async () =>
    (await rt.call<{ containers: unknown[] }>("listContainers", {})).containers.length;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-cli-"));
    berthd = await startPodEnv({ dir });
    endpoint = `unix://${berthd.socket}`;
    rt = runtimeClient(berthd.socket);
    await importBusybox(berthd, dir, IMAGE);
  });

  after(async () => {
    if (rt) await removeAllPods(rt);
    rt?.client.close();
    await berthd?.stop();
    execFileSync("sh", ["-c", "rm -rf /var/log/pods/default_clitest-*"]);
    await rm(dir, { recursive: true, force: true });
  });

  it("run --rm -it: a shell on a pty echoes what is typed, exits 3, and leaves nothing", async () => {
    const r = await onPty(
      ["run", "--rm", "-it", "--network", "host", "--name", "clitest-tty", IMAGE, "sh"],
      [
        { after: 1500, text: "echo typed-$((40+2))\r" },
        { after: 300, text: "stty size\r" },
        { after: 300, text: "exit 3\r" },
      ],
    );
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stdout, /typed-42/);
    assert.match(r.stdout, /^27 91\r?$/m, "the container's terminal has the caller's size");
    assert.deepEqual(await podNames(), []);
  });

  it("run -it: what the container prints before the attach connects reaches the terminal, once", async () => {
    // prints at once and exits (the attach may come too late), and prints at once then goes on
    const lines = Array.from({ length: 20 }, (_, i) => `early-${i}`).join(" ");
    for (const [script, code] of [
      [`for l in ${lines}; do echo $l; done; exit 5`, 5],
      [`for l in ${lines}; do echo $l; done; sleep 1; echo late; exit 6`, 6],
    ] as const) {
      const r = await onPty(["run", "--rm", "-it", "--network", "host", IMAGE, "sh", "-c", script], []);
      assert.equal(r.code, code, r.stdout + r.stderr);
      const got = r.stdout.split(/\r*\n/).filter((l) => l);
      const want = lines.split(" ").concat(code === 6 ? ["late"] : []);
      assert.deepEqual(got, want, JSON.stringify(r.stdout));
    }
    // without a terminal (-i): stdout and stderr, each whole
    const r = await berth(
      [
        "run",
        "--rm",
        "-i",
        "--network",
        "host",
        IMAGE,
        "sh",
        "-c",
        "echo o1; echo e1 >&2; sleep 0.5; cat; echo e2 >&2",
      ],
      "piped\n",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "o1\npiped\n");
    assert.equal(r.stderr, "e1\ne2\n");
    assert.deepEqual(await podNames(), []);
  });

  it("run streams stdout and stderr apart, passes the exit code on, pipes stdin with -i", async () => {
    const r = await berth([
      "run",
      "--rm",
      "--network",
      "host",
      "--name",
      "clitest-out",
      "-e",
      "GREETING=hi there",
      "-w",
      "/tmp",
      IMAGE,
      "sh",
      "-c",
      'echo "$GREETING from $(pwd)"; echo err >&2; exit 7',
    ]);
    assert.deepEqual(r, { code: 7, stdout: "hi there from /tmp\n", stderr: "err\n" });
    const piped = await berth(
      ["run", "--rm", "-i", "--network", "host", "--name", "clitest-in", IMAGE, "cat"],
      "piped\n",
    );
    assert.deepEqual(piped, { code: 0, stdout: "piped\n", stderr: "" });
    const ep = await berth([
      "run",
      "--rm",
      "--network",
      "host",
      "--entrypoint",
      "/bin/echo",
      "-u",
      "1000:1000",
      IMAGE,
      "as",
      "user",
    ]);
    assert.deepEqual(ep, { code: 0, stdout: "as user\n", stderr: "" });
    // -t without -i: the container's terminal, its output on stdout
    const t = await berth(["run", "--rm", "-t", "--network", "host", IMAGE, "echo", "hi"]);
    assert.deepEqual(t, { code: 0, stdout: "hi\r\n", stderr: "" });
    const t3 = await berth(["run", "--rm", "-t", "--network", "host", IMAGE, "sh", "-c", "exit 3"]);
    assert.equal(t3.code, 3, t3.stderr);
    // the same line over and over, before and after the attach: each one once
    const ys = "i=0; while [ $i -lt 200 ]; do echo y; i=$((i+1)); done; sleep 0.3; echo y; echo y";
    for (const flag of ["-i", "-t"]) {
      const r = await berth(["run", flag, "--rm", "--network", "host", IMAGE, "sh", "-c", ys]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split(/\r?\n/).filter((y) => y === "y").length, 202, `${flag}: ${r.stdout}`);
    }
    assert.deepEqual(await podNames(), []);
  });

  it("Ctrl-C stops a run (a second one kills it): exit 130, --rm still removes the pod", async () => {
    const p = spawn(
      process.execPath,
      [
        BERTH,
        "-r",
        endpoint,
        "run",
        "--rm",
        "--network",
        "host",
        "--name",
        "clitest-int",
        IMAGE,
        "sh",
        "-c",
        "echo up; sleep 100",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    p.stdout.on("data", (b: Buffer) => (out += b.toString()));
    while (!out.includes("up")) await sleep(50);
    p.kill("SIGINT");
    await sleep(300);
    p.kill("SIGINT");
    const code = await new Promise((r) => p.on("close", r));
    assert.equal(code, 130);
    assert.deepEqual(await podNames(), []);
  });

  it("failed runs leave no pod, container or name behind", async () => {
    const bin = await berth([
      "run",
      "--network",
      "host",
      "--name",
      "clitest-nobin",
      IMAGE,
      "/no/such/binary",
    ]);
    assert.equal(bin.code, 127, bin.stderr);
    assert.match(bin.stderr, /^berth: cannot run .*no such file or directory/);
    assert.equal(bin.stderr.trim().split("\n").length, 1, bin.stderr);
    const never = await berth(["run", "--pull", "never", "--network", "host", "docker.io/berth/absent:1"]);
    assert.equal(never.code, 125);
    assert.equal(never.stderr, "berth: image docker.io/berth/absent:1 is not present (--pull never)\n");
    // the pod network: no CNI config in this berthd
    const net = await berth(["run", "--name", "clitest-net", IMAGE, "true"]);
    assert.equal(net.code, 125);
    assert.match(net.stderr, /no network config/);
    assert.deepEqual(await podNames(), []);
    assert.equal(await containerCount(), 0);

    const first = await berth([
      "run",
      "-d",
      "--network",
      "host",
      "--name",
      "clitest-dup",
      IMAGE,
      "sleep",
      "60",
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^[0-9a-f]{64}\n$/);
    const second = await berth([
      "run",
      "-d",
      "--network",
      "host",
      "--name",
      "clitest-dup",
      IMAGE,
      "sleep",
      "60",
    ]);
    assert.equal(second.code, 125);
    assert.match(second.stderr, /the name "clitest-dup" is already in use by pod/);
    assert.deepEqual(await podNames(), ["clitest-dup"]);
    const notForced = await berth(["rmp", "clitest-dup"]);
    assert.equal(notForced.code, 1);
    const logDirs = () => readdirSync("/var/log/pods").filter((d) => d.startsWith("default_clitest-dup_"));
    assert.equal(logDirs().length, 1);
    const removed = await berth(["rmp", "-f", "clitest-dup"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(await podNames(), []);
    assert.deepEqual(logDirs(), [], "rmp takes a run pod's log directory with it");
  });

  it("unknown objects are NotFound (exit 1); unknown verbs and options are usage errors (exit 2)", async () => {
    for (const args of [
      ["rm", "deadbeef"],
      ["rmp", "deadbeef"],
      ["stop", "deadbeef"],
      ["inspect", "deadbeef"],
      ["logs", "deadbeef"],
    ]) {
      const r = await berth(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^berth: no such (container|pod): deadbeef \(NotFound\)\n$/);
      assert.equal(r.stdout, "");
    }
    const verb = await berth(["lgos"]);
    assert.equal(verb.code, 2);
    assert.equal(
      verb.stderr,
      `berth: unknown command "lgos" (did you mean "logs"?)\nRun 'berth --help' for the list of commands.\n`,
    );
    const opt = await berth(["ps", "--bogus"]);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /^berth: unknown option '--bogus'\nusage: berth ps/);
    const p = spawn(process.execPath, [BERTH, "-r", "unix:///nonexistent/berth.sock", "ps"]);
    let err = "";
    p.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const code = await new Promise((r) => p.on("close", r));
    assert.equal(code, 1);
    assert.match(
      err,
      /^berth: cannot connect to the runtime: no socket at \/nonexistent\/berth\.sock \(is berthd running\?/,
    );
  });

  it("run -d, then logs -f follows the log across a rotation (and --tail, --timestamps, stderr apart)", async () => {
    const script = "i=0; while [ $i -lt 60 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); sleep 0.05; done";
    const started = await berth([
      "run",
      "-d",
      "--network",
      "host",
      "--name",
      "clitest-log",
      IMAGE,
      "sh",
      "-c",
      script,
    ]);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    const follow = berth(["logs", "-f", "clitest-log"]);
    await sleep(1000);
    const { status } = await rt.call<{ status: { logPath: string } }>("containerStatus", { containerId: id });
    await rename(status.logPath, `${status.logPath}.20260101-000000`);
    await rt.call("reopenContainerLog", { containerId: id });
    const r = await follow;
    assert.equal(r.code, 0, r.stderr);
    const want = (p: string) => Array.from({ length: 60 }, (_, i) => `${p}-${i}\n`).join("");
    assert.equal(r.stdout, want("out"));
    assert.equal(r.stderr, want("err"));
    // after the exit: the rotated file and the current one, in order
    const all = await berth(["logs", "clitest-log"]);
    assert.equal(all.stdout, want("out"));
    const tail = await berth(["logs", "--tail", "2", "-t", "clitest-log"]);
    assert.match(tail.stdout, /^\d{4}-\d\d-\d\dT\S+ out-59\n$/);
    assert.match(tail.stderr, /^\d{4}-\d\d-\d\dT\S+ err-59\n$/);
    const since = await berth(["logs", "--since", "2000-01-01T00:00:00Z", "clitest-log"]);
    assert.equal(since.stdout, want("out"));
    assert.equal((await berth(["logs", "--since", "1s", "--tail", "0", "clitest-log"])).stdout, "");
    assert.equal((await berth(["rmp", "-f", "clitest-log"])).code, 0);
  });

  it("pods/ps filter by name, state, label and pod; every -o format parses", async () => {
    for (const [name, app] of [
      ["clitest-web", "web"],
      ["clitest-db", "db"],
    ]) {
      const r = await berth([
        "run",
        "-d",
        "--network",
        "host",
        "--name",
        name!,
        "-l",
        `app=${app}`,
        IMAGE,
        "sleep",
        "60",
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    await berth(["run", "--rm", "--network", "host", "--name", "clitest-gone", IMAGE, "true"]);
    const q = async (args: string[]) => {
      const r = await berth(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    const names = (o: string) =>
      JSON.parse(o) as {
        items?: Array<{ metadata: { name: string } }>;
        containers?: Array<{ metadata: { name: string } }>;
      };
    assert.deepEqual(
      names(await q(["pods", "-o", "json", "--label", "app=db"])).items?.map((p) => p.metadata.name),
      ["clitest-db"],
    );
    assert.deepEqual(
      names(await q(["pods", "-o", "json", "--name", "web$"])).items?.map((p) => p.metadata.name),
      ["clitest-web"],
    );
    assert.deepEqual(
      names(await q(["pods", "-o", "json", "clitest-db"])).items?.map((p) => p.metadata.name),
      ["clitest-db"],
    );
    assert.equal((await q(["pods", "-q", "--state", "notready"])).trim(), "");
    assert.equal((await q(["pods", "-q", "--state", "ready"])).trim().split("\n").length, 2);
    const ps = names(await q(["ps", "-o", "json", "--pod", "clitest-web"]));
    assert.deepEqual(
      ps.containers?.map((c) => c.metadata.name),
      ["clitest-web"],
    );
    assert.equal(
      (JSON.parse(await q(["ps", "-o", "json"])) as { containers: Array<{ state: string }> }).containers[0]
        ?.state,
      "CONTAINER_RUNNING",
    );
    const yaml = await q(["ps", "-o", "yaml", "-l", "app=web"]);
    const parsed = JSON.parse(
      execFileSync(
        "python3",
        ["-c", "import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin)))"],
        { input: yaml },
      ).toString(),
    ) as {
      containers: Array<{ metadata: { name: string }; labels: Record<string, string>; createdAt: string }>;
    };
    assert.equal(parsed.containers[0]?.metadata.name, "clitest-web");
    assert.deepEqual(parsed.containers[0]?.labels, { app: "web" });
    assert.match(parsed.containers[0]?.createdAt ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const podsYaml = execFileSync(
      "python3",
      ["-c", "import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin)))"],
      {
        input: await q(["pods", "-o", "yaml"]),
      },
    ).toString();
    assert.equal((JSON.parse(podsYaml) as { items: unknown[] }).items.length, 2);
    const wide = (await q(["pods", "-o", "wide", "--name", "clitest-web"])).split("\n");
    assert.match(wide[0] ?? "", /^POD ID +CREATED .*LABELS$/);
    assert.match(wide[1] ?? "", /^[0-9a-f]{64} .*app=web/);
    const table = (await q(["ps", "-o", "table", "--state", "running"])).trim().split("\n");
    assert.equal(table.length, 3);
    assert.equal(
      await q([
        "ps",
        "-a",
        "-o",
        "go-template={{range .containers}}{{.metadata.name}}:{{.state}}\\n{{end}}",
        "--name",
        "web",
      ]),
      "clitest-web:CONTAINER_RUNNING\n",
    );
    for (const bad of [
      ["ps", "-o", "xml"],
      ["pods", "--state", "gone"],
      ["ps", "--label", "nokey"],
    ]) {
      const r = await berth(bad);
      assert.equal(r.code, 2, `${bad.join(" ")}: ${r.stderr}`);
    }
    const missingPod = await berth(["ps", "--pod", "nope"]);
    assert.equal(missingPod.code, 1);
  });

  it("inspect and inspectp show enum names, RFC 3339 times and the parsed info", async () => {
    const c = JSON.parse((await berth(["inspect", "clitest-web"])).stdout) as {
      status: { state: string; createdAt: string; startedAt: string; finishedAt?: string | null };
      info: { info: { pid: number; timeline: unknown[] } };
    };
    assert.equal(c.status.state, "CONTAINER_RUNNING");
    assert.match(c.status.startedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.equal(c.status.finishedAt ?? null, null);
    assert.ok(c.info.info.pid > 0);
    const p = JSON.parse((await berth(["inspectp", "clitest-web"])).stdout) as {
      status: { state: string; linux: { namespaces: { options: { network: string; pid: string } } } };
      info: { info: { timeline: Array<{ phase: string }> } };
    };
    assert.equal(p.status.state, "SANDBOX_READY");
    assert.deepEqual(
      { network: p.status.linux.namespaces.options.network, pid: p.status.linux.namespaces.options.pid },
      { network: "NODE", pid: "CONTAINER" },
    );
    assert.ok(p.info.info.timeline.length > 0);
    const watch = spawn(
      process.execPath,
      [BERTH, "-r", endpoint, "stats", "-w", "-o", "json", "clitest-web"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let frames = "";
    watch.stdout.on("data", (b: Buffer) => (frames += b.toString()));
    await sleep(2500);
    watch.kill("SIGINT");
    assert.equal(await new Promise((r) => watch.on("close", r)), 0);
    assert.ok((frames.match(/"stats":/g) ?? []).length >= 2, frames);
    const tl = await berth(["timeline", "clitest-web"]);
    assert.equal(tl.code, 0, tl.stderr);
    assert.match(tl.stdout, /pod namespaces +│ *█+ *│ +[\d.]+ ms/);
    assert.match(tl.stdout, /clitest-web runtime_create/);
  });

  it("exec passes exit codes on; a missing command is 127 with one line, with or without a terminal", async () => {
    assert.equal((await berth(["exec", "clitest-web", "sh", "-c", "exit 5"])).code, 5);
    for (const args of [["exec"], ["exec", "-s"]]) {
      const r = await berth([...args, "clitest-web", "/no/such/cmd"]);
      assert.equal(r.code, 127, r.stderr);
      assert.match(r.stderr, /^berth: exec failed: .*no such file or directory\n$/);
    }
    const tty = await onPty(["exec", "-it", "clitest-web", "/no/such/cmd"], []);
    assert.equal(tty.code, 127, tty.stdout);
    assert.doesNotMatch(tty.stdout, /ERRO|level=error/);
    assert.match(tty.stdout, /berth: exec failed: .*no such file or directory/);
  });

  it("runp and create read configs in both spellings; an unknown key is an error naming it", async () => {
    const pod = {
      metadata: { name: "clitest-json", namespace: "default", uid: "clitest-json-uid" },
      log_directory: join(dir, "logs", "json"),
      linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER" } } },
    };
    await writeFile(join(dir, "pod.json"), JSON.stringify(pod));
    await writeFile(join(dir, "bad-pod.json"), JSON.stringify({ ...pod, log_dir: "/x" }));
    await writeFile(
      join(dir, "ctr.json"),
      JSON.stringify({
        metadata: { name: "clitest-json" },
        image: { image: IMAGE },
        command: ["sleep", "60"],
        logPath: "c.log",
      }),
    );
    const bad = await berth(["runp", join(dir, "bad-pod.json")]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad-pod\.json: unknown key "log_dir"/);
    const runp = await berth(["runp", join(dir, "pod.json")]);
    assert.equal(runp.code, 0, runp.stderr);
    const podId = runp.stdout.trim();
    const { status } = await rt.call<{ status: { linux: { namespaces: { options: { network: number } } } } }>(
      "podSandboxStatus",
      { podSandboxId: podId },
    );
    assert.equal(status.linux.namespaces.options.network, 2);
    const created = await berth(["create", "clitest-json", join(dir, "ctr.json"), join(dir, "pod.json")]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await berth(["start", created.stdout.trim()])).code, 0);
    const upd = await berth(["update", "--memory", "64m", "clitest-json"]);
    assert.equal(upd.code, 0, upd.stderr);
    const st = await rt.call<{ status: { resources: { linux: { memoryLimitInBytes: bigint } } } }>(
      "containerStatus",
      {
        containerId: created.stdout.trim(),
      },
    );
    assert.equal(st.status.resources.linux.memoryLimitInBytes, 64n * 1024n * 1024n);
    assert.equal((await berth(["rmp", "-f", "clitest-json"])).code, 0);
  });

  it("attach passes the container's exit code on; Ctrl-P Ctrl-Q detaches and leaves it running", async () => {
    const r = await berth([
      "run",
      "-d",
      "-i",
      "--network",
      "host",
      "--name",
      "clitest-att",
      IMAGE,
      "sh",
      "-c",
      "read x; echo got-$x; exit 7",
    ]);
    assert.equal(r.code, 0, r.stderr);
    await sleep(300);
    const att = await berth(["attach", "-i", "clitest-att"], "it\n");
    assert.equal(att.code, 7, att.stderr);
    assert.equal(att.stdout, "got-it\n");

    const d = await berth(["run", "-d", "-it", "--network", "host", "--name", "clitest-det", IMAGE, "sh"]);
    assert.equal(d.code, 0, d.stderr);
    const det = await onPty(
      ["attach", "-it", "clitest-det"],
      [
        { after: 1000, text: "echo still-$((1+1))\r" },
        { after: 500, text: "\x10\x11" },
      ],
    );
    assert.equal(det.code, 0, det.stdout + det.stderr);
    assert.match(det.stdout, /still-2/);
    assert.match(det.stdout, /detached from/);
    const state = JSON.parse((await berth(["inspect", "clitest-det"])).stdout) as {
      status: { state: string };
    };
    assert.equal(state.status.state, "CONTAINER_RUNNING");
    assert.equal((await berth(["rmp", "-f", "clitest-det"])).code, 0);
    assert.equal((await berth(["rmp", "-f", "clitest-att"])).code, 0);
  });

  it("a short-lived container never finishes before it started; berthd logs one component a line", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await berth(["run", "--network", "host", "--name", `clitest-short${i}`, IMAGE, "true"]);
      assert.equal(r.code, 0, r.stderr);
      const c = JSON.parse((await berth(["inspect", `clitest-short${i}`])).stdout) as {
        status: { startedAt: string; finishedAt: string };
      };
      assert.ok(c.status.finishedAt >= c.status.startedAt, `${c.status.finishedAt} < ${c.status.startedAt}`);
      assert.equal((await berth(["rmp", "-f", `clitest-short${i}`])).code, 0);
    }
    const doubled = berthd.output.split("\n").filter((l) => (l.match(/"component":/g) ?? []).length > 1);
    assert.deepEqual(doubled.slice(0, 3), []);
  });

  it("pull: a registry that is down is named as such; --timeout stops a pull that hangs", async () => {
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const downPort = (closed.address() as AddressInfo).port;
    closed.close();
    const down = await berth(["pull", `127.0.0.1:${downPort}/berth/x:1`]);
    assert.equal(down.code, 1);
    assert.doesNotMatch(down.stderr, /cannot connect to the runtime/);
    assert.match(down.stderr, new RegExp(`127\\.0\\.0\\.1:${downPort}`));
    // a registry that accepts connections and never answers
    const sockets: Socket[] = [];
    const hang = createServer((s) => sockets.push(s));
    hang.listen(0, "127.0.0.1");
    await once(hang, "listening");
    try {
      const r = await berth([
        "--timeout",
        "1",
        "pull",
        `127.0.0.1:${(hang.address() as AddressInfo).port}/berth/x:1`,
      ]);
      assert.equal(r.code, 1);
      // The message says the --timeout stopped it (a registry that never answers is otherwise
      // bounded only by berthd's header timeout).
      assert.match(r.stderr, /timed out after 1s \(--timeout\)/);
    } finally {
      for (const s of sockets) s.destroy();
      hang.close();
    }
  });

  it("version, completion and events answer", async () => {
    const v = await berth(["version"]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^Version: {2}\S+\nRuntimeName: {2}berth\n/);
    for (const shell of ["bash", "zsh", "fish"]) assert.equal((await berth(["completion", shell])).code, 0);
    const ev = spawn(process.execPath, [BERTH, "-r", endpoint, "events", "-o", "json"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    ev.stdout.on("data", (b: Buffer) => (out += b.toString()));
    await sleep(800);
    await berth(["run", "--rm", "--network", "host", "--name", "clitest-ev", IMAGE, "true"]);
    await sleep(500);
    ev.kill("SIGINT");
    const code = await new Promise((r) => ev.on("close", r));
    assert.equal(code, 0);
    const types = out
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { type: string }).type);
    assert.deepEqual(types.slice(0, 2), ["CREATED", "STARTED"]);
  });
});
