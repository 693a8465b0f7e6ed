/**
 * PullImage end to end: a real docker-registry on 127.0.0.1, a real berthd, images the test
 * builds itself; unpacked snapshots checked byte for byte and through a real overlay mount.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { lstat, mkdtemp, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { MNT_DETACH, native } from "../common/native.js";
import { BerthdProcess } from "../tools/berthd-process.js";
import {
  type BuiltImage,
  buildImage,
  buildIndex,
  buildLayer,
  type Entry,
  goArch,
} from "../tools/oci-builder.js";
import { pushImage, pushIndex } from "../tools/push-image.js";
import { type RegistryHandle, startRegistry } from "../tools/registry-server.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const MTIME = new Date("2023-05-06T07:08:09Z");
// VFS capability v2, effective, permitted = CAP_NET_RAW (bit 13).
const CAP_NET_RAW = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const TOOL = randomBytes(100_000);

const layer1: Entry[] = [
  { name: "etc/", type: "directory", mode: 0o755 },
  { name: "etc/hello.txt", content: "hello\n", uid: 1000, gid: 1001, mtime: MTIME },
  { name: "bin/", type: "directory" },
  { name: "bin/tool", content: TOOL, mode: 0o4755 },
  { name: "bin/tool-link", type: "link", linkname: "bin/tool", mode: 0o4755 },
  { name: "bin/sh", type: "symlink", linkname: "/bin/busybox" },
  {
    name: "bin/ping",
    content: "ping",
    mode: 0o755,
    pax: { "SCHILY.xattr.security.capability": CAP_NET_RAW.toString("latin1") },
  },
  { name: "dev/", type: "directory" },
  { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
  { name: "run/fifo", type: "fifo", mode: 0o600 },
  { name: "data/opq/old.txt", content: "old" },
  { name: "data/gone.txt", content: "gone" },
];
const layer2: Entry[] = [
  { name: "data/.wh.gone.txt", content: "" },
  { name: "data/opq/.wh..wh..opq", content: "" },
  { name: "data/opq/new.txt", content: "new" },
];
const layer3: Entry[] = [{ name: "etc/hello.txt", content: "hello again\n" }];

interface Verbose {
  layers: Array<{ chainId: string; digest: string }>;
  imageSpec: { config: { Cmd?: string[] } };
}

describe("PullImage from a real registry", { timeout: SUITE_TIMEOUT_MS }, () => {
  let registry: RegistryHandle;
  let berthd: BerthdProcess;
  let image: BuiltImage;
  let host: string;

  before(async () => {
    registry = await startRegistry();
    host = new URL(registry.url).host;
    image = buildImage(
      [await buildLayer(layer1, "gzip"), await buildLayer(layer2, "zstd"), await buildLayer(layer3, "none")],
      { config: { Cmd: ["/bin/sh"], User: "1000:1000" } },
    );
    await pushImage(registry.url, "test/multi", "v1", image);
    berthd = await BerthdProcess.start({
      toml: `[registry.mirrors."registry.k8s.io"]\nendpoints = ["${registry.url}"]\n`,
    });
  });

  after(async () => {
    await berthd?.stop();
    await registry?.stop();
  });

  const snapshotDir = (chainId: string) => join(berthd.root, "snapshots", chainId.slice(7), "fs");

  async function verbose(ref: string): Promise<Verbose> {
    const res = await berthd.client.imageStatus(ref, true);
    return JSON.parse(res.info["info"] ?? "{}") as Verbose;
  }

  it("pulls a multi-layer image and reports it", async () => {
    const ref = `${host}/test/multi:v1`;
    const res = await berthd.client.pullImage(ref);
    assert.equal(res.imageRef, image.configDigest);
    const st = await berthd.client.imageStatus(ref);
    assert.ok(st.image);
    assert.equal(st.image.id, image.configDigest);
    assert.deepEqual(st.image.repoTags, [ref]);
    assert.deepEqual(st.image.repoDigests, [`${host}/test/multi@${image.manifestDigest}`]);
    assert.equal(st.image.uid?.value, 1000n);
    const expectedSize =
      image.manifestBytes.length +
      image.configBytes.length +
      image.layers.reduce((n, l) => n + l.blob.length, 0);
    assert.equal(st.image.size, BigInt(expectedSize));
    const list = await berthd.client.listImages();
    assert.deepEqual(
      list.images.map((i) => i.id),
      [image.configDigest],
    );
    const v = await verbose(ref);
    assert.deepEqual(v.imageSpec.config.Cmd, ["/bin/sh"]);
    assert.equal(v.layers.length, 3);
  });

  it("unpacks layer 1 byte for byte: owners, modes, mtimes, links, devices, xattrs", async () => {
    const v = await verbose(`${host}/test/multi:v1`);
    const fs1 = snapshotDir(v.layers[0]!.chainId);
    assert.equal(await readFile(join(fs1, "etc/hello.txt"), "utf8"), "hello\n");
    const hello = await stat(join(fs1, "etc/hello.txt"));
    assert.equal(hello.uid, 1000);
    assert.equal(hello.gid, 1001);
    assert.equal(hello.mode & 0o7777, 0o644);
    assert.equal(hello.mtime.getTime(), MTIME.getTime());
    assert.deepEqual(await readFile(join(fs1, "bin/tool")), TOOL);
    const tool = await stat(join(fs1, "bin/tool"));
    assert.equal(tool.mode & 0o7777, 0o4755);
    assert.equal((await stat(join(fs1, "bin/tool-link"))).ino, tool.ino);
    assert.equal(await readlink(join(fs1, "bin/sh")), "/bin/busybox");
    assert.deepEqual(await native().lgetxattr(join(fs1, "bin/ping"), "security.capability"), CAP_NET_RAW);
    const dev = await lstat(join(fs1, "dev/null"));
    assert.ok(dev.isCharacterDevice());
    assert.equal(dev.rdev, (1 << 8) | 3);
    assert.ok((await lstat(join(fs1, "run/fifo"))).isFIFO());
  });

  it("turns OCI whiteouts into overlayfs whiteouts (zstd layer)", async () => {
    const v = await verbose(`${host}/test/multi:v1`);
    const fs2 = snapshotDir(v.layers[1]!.chainId);
    const gone = await lstat(join(fs2, "data/gone.txt"));
    assert.ok(gone.isCharacterDevice());
    assert.equal(gone.rdev, 0);
    assert.deepEqual(
      await native().lgetxattr(join(fs2, "data/opq"), "trusted.overlay.opaque"),
      Buffer.from("y"),
    );
    assert.deepEqual((await readdir(join(fs2, "data"))).sort(), ["gone.txt", "opq"]);
    assert.deepEqual(await readdir(join(fs2, "data/opq")), ["new.txt"]);
  });

  it("stacks into the right root filesystem under a real overlay mount", async () => {
    const v = await verbose(`${host}/test/multi:v1`);
    const lower = [...v.layers]
      .reverse()
      .map((l) => snapshotDir(l.chainId))
      .join(":");
    const mnt = await mkdtemp(join(tmpdir(), "berth-ovl-"));
    await native().mount("overlay", mnt, "overlay", 0, `lowerdir=${lower}`);
    try {
      assert.equal(await readFile(join(mnt, "etc/hello.txt"), "utf8"), "hello again\n");
      assert.deepEqual(await readdir(join(mnt, "data")), ["opq"]);
      assert.deepEqual(await readdir(join(mnt, "data/opq")), ["new.txt"]);
      assert.deepEqual(await readFile(join(mnt, "bin/tool")), TOOL);
    } finally {
      await native().umount2(mnt, MNT_DETACH);
      await rm(mnt, { recursive: true, force: true });
    }
  });

  it("keeps verified blobs in the content store and nothing in ingest", async () => {
    const blobs = await readdir(join(berthd.root, "content/blobs/sha256"));
    for (const l of image.layers) assert.ok(blobs.includes(l.descriptor.digest.slice(7)));
    assert.ok(blobs.includes(image.configDigest.slice(7)));
    assert.deepEqual(await readdir(join(berthd.root, "content/ingest")), []);
  });

  it("pulls through a configured mirror but lists the name that was asked for", async () => {
    await berthd.client.pullImage("registry.k8s.io/test/multi:v1");
    const st = await berthd.client.imageStatus("registry.k8s.io/test/multi:v1");
    assert.equal(st.image?.id, image.configDigest);
    assert.ok(st.image?.repoTags.includes("registry.k8s.io/test/multi:v1"));
    assert.ok(st.image?.repoDigests.includes(`registry.k8s.io/test/multi@${image.manifestDigest}`));
  });

  it("pulls by digest", async () => {
    const ref = `${host}/test/multi@${image.manifestDigest}`;
    const res = await berthd.client.pullImage(ref);
    assert.equal(res.imageRef, image.configDigest);
    assert.equal((await berthd.client.imageStatus(ref)).image?.id, image.configDigest);
  });

  it("chooses this node's platform from a multi-platform index", async () => {
    const mine = buildImage([await buildLayer([{ name: "arch", content: goArch() }])]);
    const other = buildImage([await buildLayer([{ name: "arch", content: "other" }])], {
      architecture: goArch() === "arm64" ? "amd64" : "arm64",
    });
    const index = buildIndex([
      { image: other, platform: { os: "linux", architecture: other.config.architecture } },
      { image: mine, platform: { os: "linux", architecture: goArch() } },
    ]);
    await pushIndex(registry.url, "test/multiarch", "latest", index, [other, mine]);
    const res = await berthd.client.pullImage(`${host}/test/multiarch`);
    assert.equal(res.imageRef, mine.configDigest);
    const st = await berthd.client.imageStatus(`${host}/test/multiarch:latest`);
    assert.deepEqual(st.image?.repoDigests, [`${host}/test/multiarch@${index.digest}`]);
  });

  it("shares one pull between concurrent requests for the same image", async () => {
    const img = buildImage([await buildLayer([{ name: "big", content: randomBytes(4 << 20) }])]);
    await pushImage(registry.url, "test/concurrent", "v1", img);
    const ref = `${host}/test/concurrent:v1`;
    const results = await Promise.all([1, 2, 3, 4].map(() => berthd.client.pullImage(ref)));
    assert.deepEqual(
      results.map((r) => r.imageRef),
      [1, 2, 3, 4].map(() => img.configDigest),
    );
    const pulledLines = berthd.output
      .split("\n")
      .filter((l) => l.includes('"image pulled"') && l.includes("test/concurrent"));
    assert.equal(pulledLines.length, 1);
  });

  it("answers unknown images, tags and registries with the right codes", async () => {
    await assert.rejects(berthd.client.pullImage(`${host}/test/multi:nope`), { code: status.NOT_FOUND });
    await assert.rejects(berthd.client.pullImage(`${host}/test/missing:v1`), { code: status.NOT_FOUND });
    await assert.rejects(berthd.client.pullImage("UPPERCASE"), { code: status.INVALID_ARGUMENT });
    await assert.rejects(berthd.client.pullImage(""), { code: status.INVALID_ARGUMENT });
    await assert.rejects(berthd.client.pullImage("127.0.0.1:1/x:y"), { code: status.UNAVAILABLE });
    const st = await berthd.client.imageStatus("docker.io/library/never-pulled:1");
    assert.equal(st.image, undefined);
  });

  it("reports image filesystem usage", async () => {
    const info = await berthd.client.imageFsInfo();
    const fs = info.imageFilesystems[0];
    assert.ok(fs);
    assert.equal(fs.fsId?.mountpoint, join(berthd.root, "snapshots"));
    assert.ok((fs.usedBytes?.value ?? 0n) > BigInt(TOOL.length));
    assert.ok((fs.inodesUsed?.value ?? 0n) > 10n);
  });

  it("removes an image by tag and collects its snapshots and blobs", async () => {
    const ref = `${host}/test/concurrent:v1`;
    const v = await verbose(ref);
    const snap = snapshotDir(v.layers[0]!.chainId);
    await stat(snap);
    await berthd.client.removeImage(ref);
    assert.equal((await berthd.client.imageStatus(ref)).image, undefined);
    await assert.rejects(stat(snap), { code: "ENOENT" });
    const blobs = await readdir(join(berthd.root, "content/blobs/sha256"));
    assert.ok(!blobs.includes(v.layers[0]!.digest.slice(7)));
    // Idempotent: removing it again is fine.
    await berthd.client.removeImage(ref);
  });

  it("untags only when the image has other tags", async () => {
    const id = image.configDigest;
    const tags = (await berthd.client.imageStatus(id)).image?.repoTags ?? [];
    assert.ok(tags.length >= 2, `expected 2 tags, got ${tags}`);
    await berthd.client.removeImage("registry.k8s.io/test/multi:v1");
    const after = (await berthd.client.imageStatus(id)).image;
    assert.ok(after);
    assert.ok(!after.repoTags.includes("registry.k8s.io/test/multi:v1"));
  });
});
