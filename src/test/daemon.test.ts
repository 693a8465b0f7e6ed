/** berthd as a process: the socket, Version/Status, UNIMPLEMENTED RPCs, config errors, restarts. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { grpcAddress } from "../api/client.js";
import { CheckpointContainerRequest, RuntimeServiceClient } from "../api/gen/runtime/v1/api.js";
import { BERTH_VERSION } from "../common/version.js";
import { BERTHD, BerthdProcess } from "../tools/berthd-process.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

function runBerthd(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BERTHD, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d: Buffer) => (output += d.toString()));
    p.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
    p.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("berthd daemon", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  before(async () => {
    berthd = await BerthdProcess.start();
  });
  after(async () => {
    await berthd?.stop();
  });

  it("answers Version with berth's name and versions", async () => {
    const v = await berthd.client.version();
    assert.equal(v.runtimeName, "berth");
    assert.equal(v.runtimeVersion, BERTH_VERSION);
    assert.equal(v.runtimeApiVersion, "v1");
  });

  it("reports RuntimeReady, and NetworkReady false with a reason when no CNI config exists", async () => {
    const s = await berthd.client.status(true);
    const cond = Object.fromEntries((s.status?.conditions ?? []).map((c) => [c.type, c]));
    assert.equal(cond["RuntimeReady"]?.status, true);
    assert.equal(cond["NetworkReady"]?.status, false);
    assert.ok(cond["NetworkReady"]?.reason);
    assert.equal(JSON.parse(s.info["config"] ?? "{}").root, berthd.root);
  });

  it("answers CheckpointContainer of an unknown container with NOT_FOUND, not a hang", async () => {
    const client = new RuntimeServiceClient(grpcAddress(berthd.socket), credentials.createInsecure());
    try {
      const err = await new Promise<{ code?: number }>((resolve) => {
        client.checkpointContainer(
          CheckpointContainerRequest.fromPartial({ containerId: "x", location: "/tmp/x.tar" }),
          new Metadata(),
          { deadline: Date.now() + 10_000 },
          (e) => resolve(e ?? {}),
        );
      });
      assert.equal(err.code, status.NOT_FOUND);
    } finally {
      client.close();
    }
  });

  it("creates its socket with mode 0600", async () => {
    assert.equal((await stat(berthd.socket)).mode & 0o777, 0o600);
  });

  it("refuses to start a second daemon on the same socket or root", async () => {
    const r = await runBerthd(["--config", berthd.configPath]);
    assert.notEqual(r.code, 0);
    assert.match(r.output, /already serving|locked/);
    // The first daemon is unharmed.
    assert.equal((await berthd.client.version()).runtimeName, "berth");
  });

  it("rejects a config with an unknown key, naming it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-cfg-"));
    try {
      const file = join(dir, "berth.toml");
      await writeFile(file, `root = "${dir}/root"\n[image]\nmax_concurrent_download = 3\n`);
      const r = await runBerthd(["--config", file]);
      assert.equal(r.code, 1);
      assert.match(r.output, /unknown key "image\.max_concurrent_download"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("replaces a stale socket after SIGKILL and serves again", async () => {
    assert.equal(await berthd.kill("SIGKILL"), null);
    await stat(berthd.socket); // the stale socket file is still there
    await berthd.launch();
    assert.equal((await berthd.client.version()).runtimeName, "berth");
  });

  it("shuts down cleanly on SIGTERM", async () => {
    assert.equal(await berthd.kill("SIGTERM"), 0);
    await berthd.launch();
  });
});
