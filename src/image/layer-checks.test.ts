import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { ContentStore } from "./content-store.js";
import { sha256 } from "./digest.js";
import type { LayerSpec } from "./layer.js";
import { layerChecks } from "./layer-checks.js";
import type { Compression } from "./unpack/decompress.js";

const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

function spec(blob: Buffer, tar: Buffer, over: Partial<LayerSpec> = {}): LayerSpec {
  const diffId = sha256(tar);
  return { digest: sha256(blob), size: blob.length, mediaType: GZIP, diffId, chainId: diffId, ...over };
}

/** Runs `blob` (in 64 KiB pieces) through the checks; the tar that came out, and commit()'s outcome. */
async function run(
  layer: LayerSpec,
  blob: Buffer,
  compression: Compression,
  store?: ContentStore,
): Promise<{ tar: Buffer; committed: Promise<void> }> {
  const checks = layerChecks(layer, compression, store);
  const pieces: Buffer[] = [];
  for (let i = 0; i < blob.length; i += 65_536) pieces.push(blob.subarray(i, i + 65_536));
  const out: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out.push(Buffer.from(c));
      cb();
    },
  });
  await pipeline([Readable.from(pieces), ...checks.stages, sink]);
  const committed = checks.commit().catch(async (err: unknown) => {
    await checks.abort();
    throw err;
  });
  return { tar: Buffer.concat(out), committed };
}

describe("layer checks", () => {
  let dir: string;
  let store: ContentStore;
  // Several of the gzip stage's batches, so digests span jobs.
  const tar = Buffer.concat([randomBytes(1_500_000), Buffer.alloc(1_000_000, "log line\n")]);
  const blob = gzipSync(tar);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-layer-checks-"));
    store = new ContentStore(dir);
    await store.init();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("passes a gzip layer whose digest, size and diff id match, and stores the blob", async () => {
    const layer = spec(blob, tar);
    const { tar: got, committed } = await run(layer, blob, "gzip", store);
    await committed;
    assert.ok(got.equals(tar));
    assert.ok((await readFile(store.path(layer.digest))).equals(blob));
    assert.deepEqual(await readdir(store.ingestDir), []);
  });

  it("passes a plain tar layer, hashed on the JS side, without storing it", async () => {
    const layer = spec(tar, tar, { mediaType: "application/vnd.oci.image.layer.v1.tar" });
    const { tar: got, committed } = await run(layer, tar, "none");
    await committed;
    assert.ok(got.equals(tar));
    assert.equal(await store.size(layer.digest), undefined);
  });

  for (const compression of ["gzip", "none"] as const) {
    const body = compression === "gzip" ? blob : tar;
    for (const [what, over, message] of [
      ["digest", { digest: sha256("other bytes") }, /digest mismatch/],
      ["size", { size: body.length + 1 }, /size mismatch/],
      ["diff id", { diffId: sha256("another tar") }, /does not match diff id/],
    ] as const) {
      for (const kept of [true, false]) {
        it(`refuses a ${compression} layer whose ${what} does not match (${kept ? "kept" : "not kept"}), storing nothing`, async () => {
          const layer = spec(body, tar, over);
          const own = new ContentStore(await mkdtemp(join(dir, "store-")));
          await own.init();
          const { committed } = await run(layer, body, compression, kept ? own : undefined);
          await assert.rejects(committed, (err: { code?: string; message: string }) => {
            assert.equal(err.code, "DataLoss");
            assert.match(err.message, message);
            return true;
          });
          assert.deepEqual(await readdir(own.blobsDir), []);
          assert.deepEqual(await readdir(own.ingestDir), []);
        });
      }
    }
  }
});
