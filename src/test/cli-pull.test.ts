/**
 * Pull progress end to end: berth.v1 PullProgress beside a PullImage from a real registry, and
 * `berth pull` / `berth run` as a user sees them (bars on a pty, plain lines otherwise, -q).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { PullProgressRequest, type PullProgressResponse } from "../api/gen/berth/v1/berth.js";
import { BerthdProcess } from "../tools/berthd-process.js";
import { busyboxLayer } from "../tools/busybox-image.js";
import { type BuiltImage, buildImage, buildLayer } from "../tools/oci-builder.js";
import { pushImage } from "../tools/push-image.js";
import { type RegistryHandle, startRegistry } from "../tools/registry-server.js";
import { removeAllPods, runtimeClient } from "./harness/cri.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const BERTH = new URL("../bin/berth.cjs", import.meta.url).pathname;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("berth pull progress", { timeout: SUITE_TIMEOUT_MS }, () => {
  let registry: RegistryHandle;
  let berthd: BerthdProcess;
  let image: BuiltImage;
  let host: string;

  const run = (cmd: string, args: string[]): Promise<Result> =>
    new Promise((resolve) => {
      const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      p.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  const berth = (args: string[]) => run(process.execPath, [BERTH, "-r", `unix://${berthd.socket}`, ...args]);
  const onPty = (args: string[]) =>
    run("script", [
      "-qec",
      `stty cols 100 rows 30; ${[process.execPath, BERTH, "-r", `unix://${berthd.socket}`, ...args].join(" ")}`,
      "/dev/null",
    ]);

  before(async () => {
    registry = await startRegistry();
    host = new URL(registry.url).host;
    // busybox and 8 MB that does not compress: enough bytes to see them move
    image = buildImage(
      [await busyboxLayer(), await buildLayer([{ name: "blob", content: randomBytes(8 << 20) }], "none")],
      { config: { Cmd: ["/bin/sh"] } },
    );
    for (const tag of ["rpc", "tty", "plain", "quiet", "run"])
      await pushImage(registry.url, "test/cli", tag, image);
    berthd = await BerthdProcess.start();
  });

  after(async () => {
    const rt = berthd ? runtimeClient(berthd.socket) : undefined;
    if (rt) await removeAllPods(rt);
    rt?.client.close();
    await berthd?.stop();
    await registry?.stop();
  });

  const removeImage = async () => {
    // each case pulls the layers afresh
    for (const tag of ["rpc", "tty", "plain", "quiet", "run"])
      await berthd.client.removeImage(`${host}/test/cli:${tag}`).catch(() => {});
  };

  it("PullProgress reports each layer's bytes while PullImage runs, then done", async () => {
    const ref = `${host}/test/cli:rpc`;
    const stream = berthd.client.berth.pullProgress(
      PullProgressRequest.fromPartial({ image: ref, intervalMs: 50 }),
    );
    const messages: PullProgressResponse[] = [];
    stream.on("data", (m: PullProgressResponse) => messages.push(m));
    const ended = new Promise((resolve) => stream.on("end", resolve));
    await berthd.client.pullImage(ref);
    await ended;
    assert.ok(messages.length >= 2, `${messages.length} messages`);
    assert.equal(messages.at(-1)?.done, true);
    const last = messages.at(-2)!;
    assert.deepEqual(
      last.layers.map((l) => [l.digest, l.size]),
      image.manifest.layers.map((l) => [l.digest, BigInt(l.size)]),
    );
    for (const l of last.layers)
      assert.ok(l.state === "done" || l.downloaded <= l.size, `${l.digest} ${l.state} ${l.downloaded}`);
    // nothing in flight: the stream ends without a message once its wait is over
    await removeImage();
  });

  it("berth pull draws a bar a layer on a terminal, plain lines otherwise, nothing with -q", async () => {
    const tty = await onPty(["pull", `${host}/test/cli:tty`]);
    assert.equal(tty.code, 0, tty.stdout);
    for (const l of image.manifest.layers)
      assert.match(tty.stdout, new RegExp(`${l.digest.slice(7, 19)} {2}\\[=+\\] done`), tty.stdout);
    assert.match(tty.stdout, /Pulled .*test\/cli:tty in [\d.]+s/);
    const plain = await berth(["pull", `${host}/test/cli:plain`]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(
      plain.stderr,
      new RegExp(`^Pulling ${host}/test/cli:plain\\nPulled ${host}/test/cli:plain in [\\d.]+s\\n$`),
    );
    assert.equal(plain.stdout, `Image is up to date for ${image.configDigest}\n`);
    await removeImage();
    const quiet = await berth(["pull", "-q", `${host}/test/cli:quiet`]);
    assert.deepEqual(quiet, { code: 0, stdout: "", stderr: "" });
  });

  it("berth run pulls an image that is missing, then runs it", async () => {
    await removeImage();
    const r = await berth([
      "run",
      "--rm",
      "--network",
      "host",
      "--name",
      "clitest-pull",
      `${host}/test/cli:run`,
      "echo",
      "pulled",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "pulled\n");
    assert.match(r.stderr, /^Pulling .*\nPulled .* in [\d.]+s\n$/);
    const never = await berth([
      "run",
      "--pull",
      "always",
      "--rm",
      "--network",
      "host",
      "--name",
      "clitest-pull2",
      `${host}/test/cli:run`,
      "true",
    ]);
    assert.equal(never.code, 0, never.stderr);
    assert.match(never.stderr, /^Pulling /);
  });
});
