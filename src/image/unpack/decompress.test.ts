import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { Readable, type Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { isBerthError } from "../../common/errors.js";
import { applyLayer } from "./apply.js";
import {
  decompressorFor,
  detectCompression,
  LAYER_MEDIA_TYPES,
  layerCompression,
  sniffingDecompressor,
} from "./decompress.js";
import { buildTar, chunked, type Sandbox, sandbox } from "./tar-fixture.js";

/** The decompressor for a layer media type. */
const decompressor = (mediaType: string) => decompressorFor(layerCompression(mediaType));

const OCI = "application/vnd.oci.image.layer.v1.tar";

/** Compresses with the zstd CLI (`apt-get install zstd`). */
function zstd(input: Buffer, ...args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn("zstd", ["-q", "-c", ...args, "-"], { stdio: ["pipe", "pipe", "inherit"] });
    const out: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`zstd exited ${code}`)),
    );
    child.stdin.end(input);
  });
}

/** Runs `input` through `transform` (in `chunkSize` pieces), optionally with a slow consumer. */
async function run(transform: Transform, input: Buffer, chunkSize = 1000, slow = false): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, done) {
      out.push(chunk);
      if (slow) setTimeout(done, 0);
      else done();
    },
  });
  await pipeline(chunked(input, chunkSize), transform, sink);
  return Buffer.concat(out);
}

describe("layer media types", () => {
  it("maps every OCI and Docker layer media type", () => {
    assert.equal(layerCompression(OCI), "none");
    assert.equal(layerCompression(`${OCI}+gzip`), "gzip");
    assert.equal(layerCompression(`${OCI}+zstd`), "zstd");
    assert.equal(layerCompression("application/vnd.oci.image.layer.nondistributable.v1.tar"), "none");
    assert.equal(layerCompression("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"), "gzip");
    assert.equal(layerCompression("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"), "zstd");
    assert.equal(layerCompression("application/vnd.docker.image.rootfs.diff.tar.gzip"), "gzip");
    assert.equal(layerCompression("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"), "gzip");
    assert.equal(LAYER_MEDIA_TYPES.length, 9);
  });

  it("rejects anything else with InvalidArgument", () => {
    for (const mediaType of ["application/vnd.oci.image.manifest.v1+json", `${OCI}+bzip2`, ""]) {
      assert.throws(
        () => layerCompression(mediaType),
        (err) => isBerthError(err, "InvalidArgument"),
      );
    }
  });
});

describe("decompressorFor", () => {
  const payload = randomBytes(300_000);

  it("gunzips gzip layers, incl. multi-member streams", async () => {
    const gz = Buffer.concat([gzipSync(payload.subarray(0, 1000)), gzipSync(payload.subarray(1000))]);
    assert.ok((await run(decompressor(`${OCI}+gzip`), gz)).equals(payload));
  });

  it("decompresses zstd layers, incl. multi-frame streams and small chunks", async () => {
    const z = Buffer.concat([await zstd(payload.subarray(0, 5)), await zstd(payload.subarray(5), "-19")]);
    assert.ok((await run(decompressor(`${OCI}+zstd`), z, 7)).equals(payload));
    const text = Buffer.from("layer ".repeat(200_000));
    assert.ok((await run(decompressor(`${OCI}+zstd`), await zstd(text), 65536, true)).equals(text));
  });

  it("passes uncompressed layers through", async () => {
    assert.ok((await run(decompressor(OCI), payload)).equals(payload));
  });

  it("reports corrupt and truncated zstd as DataLoss", async () => {
    const z = await zstd(payload);
    const corrupt = Buffer.from(z);
    corrupt.fill(0xff, 4, 12); // frame header (fzstd does not verify content checksums)
    for (const bad of [corrupt, z.subarray(0, z.length - 100)]) {
      await assert.rejects(run(decompressor(`${OCI}+zstd`), bad), (err) => isBerthError(err, "DataLoss"));
    }
  });
});

describe("compression sniffing", () => {
  let box: Sandbox;
  before(async () => {
    box = await sandbox();
  });
  after(async () => {
    await box.cleanup();
  });

  it("detects gzip, zstd (incl. skippable frames) and plain data by magic", () => {
    assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0])), "gzip");
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), "zstd");
    assert.equal(detectCompression(Buffer.from([0x5a, 0x2a, 0x4d, 0x18])), "zstd");
    assert.equal(detectCompression(Buffer.from("etc/passwd\0")), "none");
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5])), "none");
    assert.equal(detectCompression(Buffer.alloc(0)), "none");
  });

  it("sniffingDecompressor decodes whatever it is given, with backpressure", async () => {
    for (const [chunkSize, size] of [
      [1, 5_000],
      [3, 20_000],
      [4096, 500_000],
    ] as const) {
      const payload = randomBytes(size);
      for (const [kind, input] of [
        ["plain", payload],
        ["gzip", gzipSync(payload)],
        ["zstd", await zstd(payload)],
      ] as const) {
        const out = await run(sniffingDecompressor(), input, chunkSize, chunkSize === 4096);
        assert.ok(out.equals(payload), `${kind} in chunks of ${chunkSize}`);
      }
    }
  });

  it("sniffingDecompressor handles inputs shorter than the magic", async () => {
    assert.deepEqual(await run(sniffingDecompressor(), Buffer.alloc(0)), Buffer.alloc(0));
    assert.deepEqual(await run(sniffingDecompressor(), Buffer.from("ab")), Buffer.from("ab"));
  });

  it("sniffingDecompressor fails on corrupt gzip", async () => {
    const gz = gzipSync(randomBytes(10_000));
    gz.fill(0, 30, 60);
    await assert.rejects(run(sniffingDecompressor(), gz));
  });

  it("feeds applyLayer from gzip and zstd layers", async () => {
    const tarball = await buildTar([{ name: "etc/os-release", data: "ID=berth\n", mode: 0o644 }]);
    for (const [i, blob] of [gzipSync(tarball), await zstd(tarball)].entries()) {
      const dir = path.join(box.root, `layer${i}`);
      await mkdir(dir);
      const source = Readable.from([blob]).pipe(
        i === 0 ? decompressor(`${OCI}+gzip`) : sniffingDecompressor(),
      );
      const result = await applyLayer(source, dir);
      assert.equal(await readFile(path.join(dir, "etc/os-release"), "utf8"), "ID=berth\n");
      assert.deepEqual(result, { bytes: 9, inodes: 2, xattrsSkipped: 0 });
    }
  });
});
