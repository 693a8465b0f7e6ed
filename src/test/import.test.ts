/** Offline import through berth.v1.Images/Import, and the berth CLI against a real berthd. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { BerthdProcess } from "../tools/berthd-process.js";
import { busyboxLayer } from "../tools/busybox-image.js";
import { buildImage, buildLayer, dockerSaveArchive, ociArchive, tarOf } from "../tools/oci-builder.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const run = promisify(execFile);
const BERTH = new URL("../bin/berth.js", import.meta.url).pathname;

describe("image import and the berth CLI", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let dir: string;
  const cli = (...args: string[]) =>
    run(process.execPath, [BERTH, "--runtime-endpoint", `unix://${berthd.socket}`, ...args]);

  before(async () => {
    berthd = await BerthdProcess.start();
    dir = await mkdtemp(join(tmpdir(), "berth-import-"));
  });
  after(async () => {
    await berthd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("imports an OCI archive with its name annotation, from busybox-static", async () => {
    const image = buildImage([await busyboxLayer()], { config: { Cmd: ["/bin/sh"] } });
    const file = join(dir, "busybox.oci.tar");
    await writeFile(file, await ociArchive([{ image, name: "docker.io/berth/busybox:1" }]));
    const res = await berthd.client.importImage(file);
    assert.equal(res.images.length, 1);
    assert.equal(res.images[0]?.id, image.configDigest);
    assert.deepEqual(res.images[0]?.repoTags, ["docker.io/berth/busybox:1"]);
    const st = await berthd.client.imageStatus("berth/busybox:1");
    assert.equal(st.image?.id, image.configDigest);
  });

  it("imports a docker save tarball (uncompressed layers, synthesized manifest)", async () => {
    const tars = [
      await tarOf([{ name: "a.txt", content: "a" }]),
      await tarOf([{ name: "b.txt", content: "b" }]),
    ];
    const layers = await Promise.all(
      [[{ name: "a.txt", content: "a" }], [{ name: "b.txt", content: "b" }]].map((e) =>
        buildLayer(e, "none"),
      ),
    );
    const image = buildImage(layers, { docker: true });
    const file = join(dir, "save.tar");
    await writeFile(file, await dockerSaveArchive([{ image, tags: ["saved/app:2"], tars }]));
    const res = await berthd.client.importImage(file);
    assert.deepEqual(res.images[0]?.repoTags, ["docker.io/saved/app:2"]);
    assert.equal(res.images[0]?.id, image.configDigest);
    const { images } = await berthd.client.listImages("docker.io/saved/app:2");
    assert.equal(images.length, 1);
  });

  it("imports an OCI layout directory through the CLI, tagging it", async () => {
    const image = buildImage([await buildLayer([{ name: "hello", content: "world" }])]);
    const layout = join(dir, "layout");
    await mkdir(join(layout, "blobs/sha256"), { recursive: true });
    await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const desc = {
      mediaType: image.manifest.mediaType,
      digest: image.manifestDigest,
      size: image.manifestBytes.length,
    };
    await writeFile(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [desc] }));
    const blobs: Array<[string, Buffer]> = [
      [image.manifestDigest, image.manifestBytes],
      [image.configDigest, image.configBytes],
      ...image.layers.map((l): [string, Buffer] => [l.descriptor.digest, l.blob]),
    ];
    for (const [d, b] of blobs) await writeFile(join(layout, "blobs/sha256", d.slice(7)), b);
    const { stdout } = await cli("image", "import", "--tag", "local/dir:v1", layout);
    assert.match(stdout, /Imported docker\.io\/local\/dir:v1/);
    const { stdout: list } = await cli("images");
    assert.match(list, /docker\.io\/local\/dir\s+v1\s+[0-9a-f]{13}/);
  });

  it("rejects an archive whose blob does not match its name, leaving no image", async () => {
    const image = buildImage([await buildLayer([{ name: "x", content: "x" }])]);
    const wrong = "0".repeat(64);
    const archive = await tarOf([
      { name: "oci-layout", content: "{}" },
      {
        name: "index.json",
        content: JSON.stringify({
          schemaVersion: 2,
          manifests: [{ mediaType: image.manifest.mediaType, digest: `sha256:${wrong}`, size: 2 }],
        }),
      },
      { name: `blobs/sha256/${wrong}`, content: image.manifestBytes },
    ]);
    const file = join(dir, "bad.tar");
    await writeFile(file, archive);
    const before = (await berthd.client.listImages()).images.length;
    await assert.rejects(berthd.client.importImage(file), { code: status.DATA_LOSS });
    assert.equal((await berthd.client.listImages()).images.length, before);
  });

  it("rejects something that is not an image archive", async () => {
    const file = join(dir, "junk.tar");
    await writeFile(file, await tarOf([{ name: "readme.txt", content: "hi" }]));
    await assert.rejects(berthd.client.importImage(file), { code: status.INVALID_ARGUMENT });
  });

  it("rejects a docker save manifest.json of the wrong shape with INVALID_ARGUMENT", async () => {
    for (const manifest of ["[null]", '[{"Config": 7}]', '[{"Config": "c.json", "Layers": "l.tar"}]']) {
      const file = join(dir, "odd-save.tar");
      await writeFile(file, await tarOf([{ name: "manifest.json", content: manifest }]));
      await assert.rejects(berthd.client.importImage(file), { code: status.INVALID_ARGUMENT }, manifest);
    }
  });

  it("keeps images across a SIGKILL and restart", async () => {
    const before = (await berthd.client.listImages()).images.map((i) => i.id).sort();
    assert.ok(before.length >= 3);
    await berthd.kill("SIGKILL");
    await berthd.launch();
    const afterIds = (await berthd.client.listImages()).images.map((i) => i.id).sort();
    assert.deepEqual(afterIds, before);
  });

  it("berth version, info, inspecti, imagefsinfo, rmi", async () => {
    assert.match((await cli("version")).stdout, /RuntimeName:\s+berth/);
    assert.equal(JSON.parse((await cli("info")).stdout).status.conditions[0].type, "RuntimeReady");
    const inspect = JSON.parse((await cli("inspecti", "berth/busybox:1")).stdout);
    assert.deepEqual(inspect.info.imageSpec.config.Cmd, ["/bin/sh"]);
    assert.ok(JSON.parse((await cli("imagefsinfo")).stdout).imageFilesystems[0].usedBytes.value > 0);
    assert.match((await cli("rmi", "berth/busybox:1")).stdout, /Deleted/);
    assert.equal((await berthd.client.imageStatus("berth/busybox:1")).image, undefined);
    await assert.rejects(cli("rmi", "berth/busybox:1"), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /no such image/);
      return true;
    });
  });

  it("berth reports an unreachable endpoint clearly", async () => {
    await assert.rejects(
      run(process.execPath, [
        BERTH,
        "--runtime-endpoint",
        `unix://${dir}/nothing.sock`,
        "--timeout",
        "2",
        "version",
      ]),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /nothing\.sock/);
        return true;
      },
    );
  });
});
