/**
 * Pulls that must fail cleanly: corrupted blobs, lying configs, hostile layers, auth, and a
 * berthd killed in the middle of a pull. Each must leave no image, snapshot or blob behind.
 * And pulls that must end in bounded time: a client deadline against a trickling registry, a
 * registry that never answers, SIGTERM during a stuck pull; credentials never reach the log.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { sha256 } from "../image/digest.js";
import { BerthdProcess } from "../tools/berthd-process.js";
import { type BuiltImage, buildImage, buildLayer } from "../tools/oci-builder.js";
import { pushImage } from "../tools/push-image.js";
import {
  pushBlob,
  pushManifest,
  type RegistryHandle,
  startRegistry,
  TOKEN_PASSWORD,
  TOKEN_USER,
} from "../tools/registry-server.js";
import {
  type SilentServer,
  startSilentServer,
  startTricklingRegistry,
  type TricklingRegistry,
} from "./harness/hostile-registry.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

/** Everything berthd keeps, apart from its lock file: must match after a failed pull. */
async function storeContents(
  root: string,
): Promise<{ blobs: string[]; snapshots: string[]; ingest: string[] }> {
  return {
    blobs: (await readdir(join(root, "content/blobs/sha256"))).sort(),
    snapshots: (await readdir(join(root, "snapshots"))).sort(),
    ingest: await readdir(join(root, "content/ingest")),
  };
}

describe("pulls that fail leave nothing behind", { timeout: SUITE_TIMEOUT_MS }, () => {
  let registry: RegistryHandle;
  let berthd: BerthdProcess;
  let host: string;
  let empty: Awaited<ReturnType<typeof storeContents>>;

  before(async () => {
    registry = await startRegistry();
    host = registry.host;
    berthd = await BerthdProcess.start();
    empty = await storeContents(berthd.root);
  });
  after(async () => {
    await berthd?.stop();
    await registry?.stop();
  });

  async function assertClean(ref: string): Promise<void> {
    assert.equal((await berthd.client.imageStatus(ref)).image, undefined);
    assert.deepEqual(await storeContents(berthd.root), empty);
  }

  it("rejects a blob whose bytes do not match its digest (DATA_LOSS)", async () => {
    const img = buildImage([await buildLayer([{ name: "f", content: randomBytes(200_000) }])]);
    await pushImage(registry.url, "bad/corrupt", "v1", img);
    // Corrupt the registry's copy on disk: it now serves other bytes under the same digest.
    const hex = img.layers[0]!.descriptor.digest.slice(7);
    const data = join(registry.dir, "data/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const corrupted = Buffer.from(img.layers[0]!.blob);
    const at = corrupted.length - 20;
    corrupted.writeUInt8(corrupted.readUInt8(at) ^ 0xff, at);
    await writeFile(data, corrupted);
    const ref = `${host}/bad/corrupt:v1`;
    await assert.rejects(berthd.client.pullImage(ref), (err: { code: number; details: string }) => {
      assert.equal(err.code, status.DATA_LOSS);
      assert.match(err.details, /digest mismatch|does not match|corrupt|invalid/i);
      return true;
    });
    await assertClean(ref);
  });

  it("rejects a config whose diff_ids do not match the layers", async () => {
    const good = buildImage([await buildLayer([{ name: "f", content: "x" }])]);
    const lying = buildImage(good.layers, {});
    lying.config.rootfs.diff_ids = [sha256("something else")];
    const configBytes = Buffer.from(JSON.stringify(lying.config));
    const manifest = {
      ...lying.manifest,
      config: { ...lying.manifest.config, digest: sha256(configBytes), size: configBytes.length },
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    for (const l of good.layers) await pushBlob(registry.url, "bad/diffid", l.blob);
    await pushBlob(registry.url, "bad/diffid", configBytes);
    await pushManifest(registry.url, "bad/diffid", "v1", manifestBytes, manifest.mediaType);
    const ref = `${host}/bad/diffid:v1`;
    await assert.rejects(berthd.client.pullImage(ref), (err: { code: number; details: string }) => {
      assert.equal(err.code, status.DATA_LOSS, err.details);
      assert.match(err.details, /diff id/);
      return true;
    });
    await assertClean(ref);
  });

  it("rejects a layer that writes through a symlinked parent, and confines ../ names", async () => {
    const hostile = buildImage([
      await buildLayer([
        { name: "../../../../escape-berth-test", content: "confined" },
        { name: "link", type: "symlink", linkname: "/tmp" },
        { name: "link/escape-berth-test", content: "boom" },
      ]),
    ]);
    await pushImage(registry.url, "bad/hostile", "v1", hostile);
    const ref = `${host}/bad/hostile:v1`;
    await assert.rejects(berthd.client.pullImage(ref), (err: { code: number; details: string }) => {
      assert.equal(err.code, status.INVALID_ARGUMENT);
      assert.match(err.details, /symlink/);
      return true;
    });
    await assert.rejects(readdir("/tmp/escape-berth-test"), { code: "ENOENT" });
    await assertClean(ref);
  });

  it("rejects a manifest list that has no manifest for this platform", async () => {
    const other = buildImage([await buildLayer([{ name: "f", content: "x" }])], { architecture: "s390x" });
    await pushImage(registry.url, "bad/platform", undefined, other);
    const index = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {
          mediaType: other.manifest.mediaType,
          digest: other.manifestDigest,
          size: other.manifestBytes.length,
          platform: { os: "linux", architecture: "s390x" },
        },
      ],
    };
    await pushManifest(
      registry.url,
      "bad/platform",
      "v1",
      Buffer.from(JSON.stringify(index)),
      index.mediaType,
    );
    await assert.rejects(berthd.client.pullImage(`${host}/bad/platform:v1`), { code: status.NOT_FOUND });
    await assertClean(`${host}/bad/platform:v1`);
  });

  it("recovers from SIGKILL in the middle of a pull: no image, no partial content", async () => {
    const big: BuiltImage = buildImage([
      await buildLayer([{ name: "a", content: randomBytes(24 << 20) }], "none"),
      await buildLayer([{ name: "b", content: randomBytes(24 << 20) }], "none"),
    ]);
    await pushImage(registry.url, "big/image", "v1", big);
    const ref = `${host}/big/image:v1`;
    const pulling = berthd.client.pullImage(ref).catch((err: unknown) => err);
    // Wait until the download has started writing, then kill berthd outright.
    for (;;) {
      const ingest = await readdir(join(berthd.root, "content/ingest"));
      const snaps = await readdir(join(berthd.root, "snapshots"));
      if (ingest.length > 0 || snaps.some((s) => s.startsWith(".tmp-"))) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await berthd.kill("SIGKILL");
    assert.ok((await pulling) instanceof Error);
    await berthd.launch();
    await assertClean(ref);
    // And the pull works after the restart.
    assert.equal((await berthd.client.pullImage(ref)).imageRef, big.configDigest);
    await berthd.client.removeImage(ref);
    await assertClean(ref);
  });
});

describe("registry token authentication", { timeout: SUITE_TIMEOUT_MS }, () => {
  let registry: RegistryHandle;
  let berthd: BerthdProcess;
  let img: BuiltImage;

  before(async () => {
    registry = await startRegistry({ tokenAuth: true });
    berthd = await BerthdProcess.start();
    img = buildImage([await buildLayer([{ name: "secret.txt", content: "s3cr3t" }])]);
    const auth = { username: TOKEN_USER, password: TOKEN_PASSWORD };
    for (const l of img.layers) await pushBlob(registry.url, "private/app", l.blob, auth);
    await pushBlob(registry.url, "private/app", img.configBytes, auth);
    await pushManifest(registry.url, "private/app", "v1", img.manifestBytes, img.manifest.mediaType, auth);
  });
  after(async () => {
    await berthd?.stop();
    await registry?.stop();
  });

  it("pulls with username and password through the bearer token flow", async () => {
    const ref = `${registry.host}/private/app:v1`;
    const res = await berthd.client.pullImage(ref, { username: TOKEN_USER, password: TOKEN_PASSWORD });
    assert.equal(res.imageRef, img.configDigest);
    assert.ok((registry.tokenServer?.requests ?? 0) > 0);
    await berthd.client.removeImage(ref);
  });

  it("pulls with the CRI auth field (base64 user:password)", async () => {
    const auth = Buffer.from(`${TOKEN_USER}:${TOKEN_PASSWORD}`).toString("base64");
    const res = await berthd.client.pullImage(`${registry.host}/private/app:v1`, { auth });
    assert.equal(res.imageRef, img.configDigest);
  });

  it("fails with UNAUTHENTICATED on a wrong password and without credentials", async () => {
    const ref = `${registry.host}/private/app:v1`;
    await berthd.client.removeImage(ref);
    await assert.rejects(berthd.client.pullImage(ref, { username: TOKEN_USER, password: "wrong" }), {
      code: status.UNAUTHENTICATED,
    });
    await assert.rejects(berthd.client.pullImage(ref), (err: { code: number }) => {
      assert.ok([status.UNAUTHENTICATED, status.PERMISSION_DENIED].includes(err.code));
      return true;
    });
  });
});

/** Polls `check` every 100 ms until it holds; fails naming `what` after `timeoutMs`. */
async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what} (waited ${timeoutMs} ms)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Half-pulled leftovers: ingest files and unpublished snapshot directories. */
async function partialContent(root: string): Promise<string[]> {
  const ingest = await readdir(join(root, "content/ingest"));
  const tmp = (await readdir(join(root, "snapshots"))).filter((s) => s.startsWith(".tmp-"));
  return [...ingest.map((f) => `content/ingest/${f}`), ...tmp.map((d) => `snapshots/${d}`)];
}

// Generous bounds: they only prove berthd no longer waits out the old 60–300 s.
const ANSWER_WITHIN_MS = 15_000;

describe("pulls that are cancelled, stuck or carry credentials", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let trickling: TricklingRegistry;
  let silent: SilentServer;
  let img: BuiltImage;

  before(async () => {
    // Uncompressed and random: at one byte a second the layer never completes.
    img = buildImage([await buildLayer([{ name: "slow", content: randomBytes(64 << 10) }], "none")]);
    trickling = await startTricklingRegistry(img, {
      repo: "slow/app",
      tags: ["v1"],
      trickle: [img.layers[0]!.descriptor.digest],
    });
    silent = await startSilentServer();
    berthd = await BerthdProcess.start({ toml: "[image]\nresponse_header_timeout_seconds = 1\n" });
  });
  after(async () => {
    await berthd?.stop();
    await trickling?.stop();
    await silent?.stop();
  });

  it("refuses credentials in a reference (INVALID_ARGUMENT) and never logs secrets", async () => {
    const ref = "user:pass@127.0.0.1:5000/x:y";
    await assert.rejects(berthd.client.pullImage(ref), (err: { code: number; details: string }) => {
      assert.equal(err.code, status.INVALID_ARGUMENT);
      assert.match(err.details, /credentials are not allowed in an image reference/);
      assert.doesNotMatch(err.details, /pass/);
      return true;
    });
    assert.equal((await berthd.client.imageStatus(ref)).image, undefined);
    // A CRI AuthConfig is not logged either (the silent registry fails the pull, not the auth).
    const secret = `hunter2-${randomBytes(6).toString("hex")}`;
    const auth = {
      username: "user",
      password: secret,
      auth: Buffer.from(`user:${secret}`).toString("base64"),
    };
    await assert.rejects(berthd.client.pullImage(`${silent.host}/x/y:z`, auth), { code: status.UNAVAILABLE });
    const out = berthd.output;
    assert.match(out, /PullImage failed/, "the failures are logged");
    assert.doesNotMatch(out, /pass/);
    assert.ok(!out.includes(secret) && !out.includes(auth.auth), "the AuthConfig is not logged");
  });

  it("fails with UNAVAILABLE within the response header timeout against a registry that never answers", async () => {
    const before = silent.connections;
    const started = Date.now();
    await assert.rejects(
      berthd.client.pullImage(`${silent.host}/never/answers:v1`),
      (err: { code: number; details: string }) => {
        assert.equal(err.code, status.UNAVAILABLE, err.details);
        assert.match(err.details, /did not answer within 1 s/);
        return true;
      },
    );
    assert.ok(Date.now() - started < ANSWER_WITHIN_MS, `answered after ${Date.now() - started} ms`);
    assert.equal(silent.connections - before, 1, "a timeout is not retried");
  });

  it("answers DEADLINE_EXCEEDED on the client's deadline and stops downloading from a trickling registry", async () => {
    const ref = `${trickling.host}/slow/app:v1`;
    const started = Date.now();
    await assert.rejects(berthd.client.pullImage(ref, undefined, 2000), { code: status.DEADLINE_EXCEEDED });
    assert.ok(Date.now() - started < ANSWER_WITHIN_MS);
    const downloads = [...trickling.downloads];
    assert.ok(downloads.length > 0, "the layer download had started");
    await waitFor(
      () => downloads.every((d) => d.closedAt !== undefined),
      10_000,
      "berthd kept the trickling download open after the deadline",
    );
    await waitFor(
      async () => (await partialContent(berthd.root)).length === 0,
      10_000,
      "partial content left",
    );
    assert.equal((await berthd.client.imageStatus(ref)).image, undefined);
    // Only the one try: no retry after the deadline.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(trickling.downloads.length, downloads.length, "berthd retried after the deadline");
  });

  it("keeps a layer download shared with another pull going when one of the pulls gives up", async () => {
    // Two tags of one image: two pulls, one layer download (the unpack is shared by chain id).
    const shared = buildImage([await buildLayer([{ name: "shared", content: randomBytes(4096) }], "none")]);
    const slow = await startTricklingRegistry(shared, {
      repo: "shared/app",
      tags: ["a", "b"],
      trickle: [shared.layers[0]!.descriptor.digest],
      intervalMs: 100,
      releaseAfterMs: 4000,
    });
    try {
      // The impatient pull starts the download; the patient one joins it, then the first gives up.
      const impatient = berthd.client.pullImage(`${slow.host}/shared/app:a`, undefined, 2500);
      await waitFor(() => slow.downloads.length > 0, 10_000, "the layer download did not start");
      const patient = berthd.client.pullImage(`${slow.host}/shared/app:b`);
      await assert.rejects(impatient, { code: status.DEADLINE_EXCEEDED });
      assert.equal((await patient).imageRef, shared.configDigest);
      assert.equal(slow.downloads.length, 1, "one download, not restarted");
      assert.equal(slow.downloads[0]!.bytesSent, shared.layers[0]!.blob.length);
      await berthd.client.removeImage(shared.configDigest);
      assert.deepEqual(await partialContent(berthd.root), []);
    } finally {
      await slow.stop();
    }
  });

  it("exits promptly on SIGTERM during a stuck pull, leaving no partial content", async () => {
    const seen = trickling.downloads.length;
    const pulling = berthd.client.pullImage(`${trickling.host}/slow/app:v1`).then(
      () => undefined,
      (err: { code: number }) => err,
    );
    await waitFor(() => trickling.downloads.length > seen, 10_000, "the layer download did not start");
    const started = Date.now();
    const exited = berthd.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      exited.then((code) => ({ code })),
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), 30_000);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === undefined) {
      await berthd.kill("SIGKILL");
      assert.fail("berthd did not exit within 30 s of SIGTERM");
    }
    assert.equal(outcome.code, 0);
    assert.ok(Date.now() - started < ANSWER_WITHIN_MS, `exited after ${Date.now() - started} ms`);
    const err = await pulling;
    assert.ok(err !== undefined && [status.UNAVAILABLE, status.CANCELLED].includes(err.code), String(err));
    assert.deepEqual(await partialContent(berthd.root), []);
    await waitFor(
      () => trickling.downloads.every((d) => d.closedAt !== undefined),
      5000,
      "a download connection stayed open",
    );
    assert.doesNotMatch(berthd.output, /pass/);
  });
});
