/**
 * `berth run` on a pod network (a test-only CNI bridge, berthcli0, 10.254.0.0/24): the pod gets
 * an IP, a port is published, and a run that fails after its pod was made leaves no pod and no
 * IP address allocated (the leak users saw: a Ready pod with an IP after a failed run).
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { removeAllPods, runtimeClient, sleep } from "./harness/cri.js";
import { httpGet, importBusybox, startPodEnv } from "./harness/pod-env.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const run = promisify(execFile);
const BERTH = new URL("../bin/berth.cjs", import.meta.url).pathname;
const IMAGE = "docker.io/berth/busybox:clinet";
const BRIDGE = "berthcli0";
const SUBNET = "10.254.0.0/24";

describe("berth run on a pod network", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let dir: string;
  let rt: ReturnType<typeof runtimeClient>;

  const berth = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [BERTH, "-r", `unix://${berthd.socket}`, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      p.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  /** IPs host-local has handed out (one file per address). */
  const allocated = async () =>
    (await readdir(join(dir, "ipam", "berth-cli")).catch(() => [] as string[])).filter((f) =>
      /^\d+\.\d+\.\d+\.\d+$/.test(f),
    );

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-cli-net-"));
    berthd = await startPodEnv({ dir, network: { name: "berth-cli", bridge: BRIDGE, subnet: SUBNET } });
    rt = runtimeClient(berthd.socket);
    await importBusybox(berthd, dir, IMAGE);
  });

  after(async () => {
    if (rt) await removeAllPods(rt);
    rt?.client.close();
    await berthd?.stop();
    await run("ip", ["link", "del", BRIDGE]).catch(() => {});
    await run("sh", ["-c", "rm -rf /var/log/pods/default_clinet-*"]);
    await rm(dir, { recursive: true, force: true });
  });

  it("a run gets a pod IP; --rm gives it back", async () => {
    const r = await berth([
      "run",
      "--rm",
      "--name",
      "clinet-ip",
      IMAGE,
      "sh",
      "-c",
      "ip -4 -o addr show eth0",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /inet 10\.254\.0\.\d+\//);
    assert.deepEqual(await allocated(), []);
  });

  it("publishes a port (-p) to a detached run", async () => {
    const r = await berth([
      "run",
      "-d",
      "--name",
      "clinet-web",
      "-p",
      "127.0.0.1:18931:8080",
      IMAGE,
      "sh",
      "-c",
      "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    assert.equal(r.code, 0, r.stderr);
    let body = "";
    for (let i = 0; i < 50 && body === ""; i++) {
      body = await httpGet("http://127.0.0.1:18931/index.html").catch(() => "");
      if (body === "") await sleep(100);
    }
    assert.equal(body, "published\n");
    assert.equal((await allocated()).length, 1, "the running pod holds one address");
    assert.equal((await berth(["rmp", "-f", "clinet-web"])).code, 0);
    assert.deepEqual(await allocated(), []);
  });

  it("a run that fails after its pod was made leaves no pod and no IP", async () => {
    for (const [args, code] of [
      [["run", "--name", "clinet-nobin", IMAGE, "/no/such/binary"], 127],
      [["run", "--name", "clinet-badwd", "-w", "/etc/passwd", IMAGE, "true"], 125],
    ] as const) {
      const r = await berth([...args]);
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.stderr.split("\n").filter(Boolean).length, 1, r.stderr);
      const { items } = await rt.call<{ items: unknown[] }>("listPodSandbox", {});
      assert.deepEqual(items, []);
      assert.deepEqual(await allocated(), []);
    }
  });
});
