/**
 * The berth CLI against another runtime: Debian's containerd on its own root, state and socket,
 * its CRI plugin with a CNI bridge of this test's own (berthcli1, 10.244.0.0/16) and a mirror
 * for a local registry. The main verbs as a user runs them: version (the lite gRPC client
 * against Go's HTTP/2 and HPACK), pull, images, runp/create/start, ps/pods, logs, exec,
 * inspect, run, stop/rm/rmp. Skipped (with the reason) without root or containerd.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { containerdMissing, startContainerd } from "../bench/containerd.js";
import { Cleanup, removeTree, run } from "../bench/util.js";
import { defaultConflist } from "../network/default-conflist.js";
import { busyboxLayer } from "../tools/busybox-image.js";
import { buildImage } from "../tools/oci-builder.js";
import { pushImage } from "../tools/push-image.js";
import { startRegistry } from "../tools/registry-server.js";
import { needsRoot } from "./harness/skip.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const BERTH = new URL("../bin/berth.cjs", import.meta.url).pathname;
const BRIDGE = "berthcli1";
const SUBNET = "10.244.0.0/16";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

const skip = needsRoot() || containerdMissing();

describe("berth CLI against containerd's CRI", { skip, timeout: SUITE_TIMEOUT_MS }, () => {
  const cleanup = new Cleanup();
  let endpoint = "";
  let ref = "";
  let tmp = "";

  const berth = (args: string[], input = ""): Promise<Result> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [BERTH, "-r", endpoint, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      p.stdin.on("error", () => {});
      p.stdin.end(input);
      // a verb that hangs fails its test (code null) instead of the whole suite's timeout
      const hung = setTimeout(() => p.kill("SIGKILL"), 60_000);
      p.on("close", (code) => {
        clearTimeout(hung);
        resolve({ code, stdout, stderr });
      });
    });
  const ok = async (args: string[], input?: string): Promise<string> => {
    const r = await berth(args, input);
    assert.equal(r.code, 0, `berth ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "berth-cli-ctrd-"));
    cleanup.add(`temp dir ${tmp}`, () => removeTree(tmp));
    // run's pods log under /var/log/pods (run --rm removes them; a failed test may not)
    cleanup.add("run's log directories", async () => {
      await run("sh", ["-c", "rm -rf /var/log/pods/default_cli-ctrd-run*"]).catch(() => "");
    });
    cleanup.add(`bridge ${BRIDGE}`, async () => {
      if (existsSync(`/sys/class/net/${BRIDGE}`)) await run("ip", ["link", "del", BRIDGE]).catch(() => "");
    });
    await mkdir(join(tmp, "net.d"));
    const conflist = defaultConflist({
      name: "berth-cli-test",
      bridge: BRIDGE,
      subnet: SUBNET,
      dataDir: join(tmp, "ipam"),
      ipMasq: false,
      portmap: false,
      bandwidth: false,
    });
    await writeFile(join(tmp, "net.d", "10-berthcli.conflist"), JSON.stringify(conflist));
    const layer = await busyboxLayer();
    const registry = await startRegistry();
    cleanup.add("registry", () => registry.stop());
    // the pod's sandbox (pause) image sleeps; the one run uses has only a default command
    const config = { Env: ["PATH=/bin"], WorkingDir: "/" };
    await pushImage(
      registry.url,
      "cli/pause",
      "v1",
      buildImage([layer], { config: { ...config, Entrypoint: ["/bin/sleep", "infinity"] } }),
    );
    await pushImage(
      registry.url,
      "cli/busybox",
      "v1",
      buildImage([layer], { config: { ...config, Cmd: ["sh"] } }),
    );
    ref = `${registry.host}/cli/busybox:v1`;
    const c = await startContainerd(cleanup, registry.host, {
      cniConfDir: join(tmp, "net.d"),
      sandboxImage: `${registry.host}/cli/pause:v1`,
    });
    endpoint = `unix://${join(c.dir, "containerd.sock")}`;
    // Runs before containerd stops (cleanups run last-added first): no pod outlives the test.
    cleanup.add("pods", async () => {
      const { items } = await c.client.runtimeCall<{ items: Array<{ id: string }> }>("listPodSandbox", {});
      for (const p of items) {
        await c.client.runtimeCall("stopPodSandbox", { podSandboxId: p.id }).catch(() => {});
        await c.client.runtimeCall("removePodSandbox", { podSandboxId: p.id }).catch(() => {});
      }
    });
  });

  after(() => cleanup.runAll());

  it("version answers through the lite client (Go's HTTP/2 and HPACK on the other side)", async () => {
    const out = await ok(["version"]);
    assert.match(out, /^RuntimeName: +containerd$/m);
    assert.match(out, /^RuntimeApiVersion: +v1$/m);
  });

  it("pull and images", async () => {
    await ok(["pull", "-q", ref]);
    const images = await ok(["images", "-o", "json"]);
    assert.ok(
      (JSON.parse(images) as { images: Array<{ repoTags: string[] }> }).images.some((i) =>
        i.repoTags.includes(ref),
      ),
      images,
    );
  });

  it("runp, create, start, ps, pods, logs, exec, inspect, stop, rm, rmp", async () => {
    const pod = {
      metadata: { name: "cli-ctrd", namespace: "berth-test", uid: "cli-ctrd-1", attempt: 0 },
      log_directory: join(tmp, "logs"), // snake_case, as crictl accepts
      hostname: "cli-ctrd",
    };
    const container = {
      metadata: { name: "talker", attempt: 0 },
      image: { image: ref },
      command: ["sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 3600"],
      logPath: "talker.log",
    };
    await writeFile(join(tmp, "pod.json"), JSON.stringify(pod));
    await writeFile(join(tmp, "container.json"), JSON.stringify(container));
    const podId = (await ok(["runp", join(tmp, "pod.json")])).trim();
    assert.match(podId, /^[0-9a-f]{64}$/);
    const id = (await ok(["create", podId, join(tmp, "container.json"), join(tmp, "pod.json")])).trim();
    await ok(["start", id]);

    assert.match(await ok(["pods", "--name", "cli-ctrd", "-o", "wide"]), /Ready +cli-ctrd/);
    assert.equal((await ok(["ps", "-q", "--pod", podId, "--state", "running"])).trim(), id);
    // the pod's address is on this test's bridge
    const inspectp = JSON.parse(await ok(["inspectp", "-o", "json", podId])) as {
      status: { network: { ip: string } };
    };
    assert.match(inspectp.status.network.ip, /^10\.244\./);

    // the log is written by containerd's shim: wait for both lines, stderr apart
    let logs: Result = { code: null, stdout: "", stderr: "" };
    for (let i = 0; i < 50 && !logs.stderr.includes("to-stderr"); i++) {
      logs = await berth(["logs", id]);
      if (!logs.stderr.includes("to-stderr")) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(logs.stdout, "to-stdout\n");
    assert.equal(logs.stderr, "to-stderr\n");

    const exec = await berth(["exec", "-i", "talker", "--", "sh", "-c", "cat; hostname; exit 7"], "piped\n");
    assert.equal(exec.code, 7, exec.stderr);
    assert.equal(exec.stdout, "piped\ncli-ctrd\n");
    assert.equal((await ok(["exec", "-s", id, "echo", "sync"])).trim(), "sync");

    const inspect = JSON.parse(await ok(["inspect", "-o", "json", id])) as { status: { state: string } };
    assert.equal(inspect.status.state, "CONTAINER_RUNNING");

    await ok(["stop", "--timeout-seconds", "1", id]);
    assert.match(await ok(["ps", "-a", "--pod", podId]), /Exited/);
    await ok(["rm", id]);
    assert.equal((await ok(["ps", "-a", "-q", "--pod", podId])).trim(), "");
    await ok(["rmp", "-f", podId]);
    assert.equal((await ok(["pods", "-q", "--name", "cli-ctrd"])).trim(), "");
    // a missing object is NotFound, exit 1
    const missing = await berth(["rm", "deadbeef"]);
    assert.equal(missing.code, 1);
  });

  it("run --rm streams the output, passes the exit code on and leaves nothing", async () => {
    const r = await berth([
      "run",
      "--rm",
      "--name",
      "cli-ctrd-run",
      ref,
      "sh",
      "-c",
      "echo ran; echo oops >&2; exit 3",
    ]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, "ran\n");
    assert.equal(r.stderr, "oops\n");
    assert.equal((await ok(["pods", "-q", "--name", "cli-ctrd-run"])).trim(), "");
    // -i: stdin piped in, and what it printed before the attach connected
    const i = await berth(
      ["run", "--rm", "-i", "--name", "cli-ctrd-runi", ref, "sh", "-c", "echo early; sleep 0.5; cat; exit 4"],
      "piped\n",
    );
    assert.equal(i.code, 4, i.stderr);
    assert.equal(i.stdout, "early\npiped\n");
  });

  it("run -t (a terminal, no stdin) shows the output and passes the exit code on", async () => {
    const t = await berth(["run", "-t", "--rm", "--name", "cli-ctrd-runt", ref, "echo", "hi"]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout.replace(/\r\n/g, "\n"), "hi\n");
    assert.equal((await ok(["pods", "-q", "--name", "cli-ctrd-runt"])).trim(), "");
    const e = await berth(["run", "-t", "--rm", "--name", "cli-ctrd-runt3", ref, "sh", "-c", "exit 3"]);
    assert.equal(e.code, 3, e.stderr);
    // what it printed before the attach connected, once, in order (the log lost its \r)
    const lines = Array.from({ length: 20 }, (_, i) => `early-${i}`);
    const script = `for l in ${lines.join(" ")}; do echo $l; done; sleep 1; echo late; exit 6`;
    const l = await berth(["run", "-t", "--rm", "--name", "cli-ctrd-runtl", ref, "sh", "-c", script]);
    assert.equal(l.code, 6, l.stderr);
    assert.equal(l.stdout, [...lines, "late", ""].join("\r\n"));
    // the same line over and over, before and after the attach: each one once
    const ys = "i=0; while [ $i -lt 200 ]; do echo y; i=$((i+1)); done; sleep 0.3; echo y; echo y";
    for (const flag of ["-i", "-t"]) {
      const r = await berth(["run", flag, "--rm", "--name", "cli-ctrd-runy", ref, "sh", "-c", ys]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split(/\r?\n/).filter((y) => y === "y").length, 202, `${flag}: ${r.stdout}`);
    }
  });
});
