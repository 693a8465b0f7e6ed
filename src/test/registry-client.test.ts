/**
 * Integration: RegistryClient against a real Debian docker-registry (distribution 2.8) started by
 * the harness, with and without token auth. Fails loudly if docker-registry is not installed;
 * skipped only with BERTH_UNIT_ONLY=1.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { isBerthError } from "../common/errors.js";
import { DigestVerifier } from "../image/digest.js";
import { type ImageRef, parseReference } from "../image/reference.js";
import { RegistryClient } from "../image/registry/client.js";
import { MediaType } from "../image/registry/media-types.js";
import { parseImageConfig } from "../image/registry/oci.js";
import { defaultPlatform } from "../image/registry/platform.js";
import {
  type PushAuth,
  pushBlob,
  pushManifest,
  type RegistryHandle,
  startRegistry,
  type TestDescriptor,
} from "../tools/registry-server.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const skip = process.env["BERTH_UNIT_ONLY"] ? "BERTH_UNIT_ONLY is set" : false;
const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function tarGz(files: Record<string, string>): Promise<{ gz: Buffer; diffId: string }> {
  const p = pack();
  for (const [name, content] of Object.entries(files))
    p.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p as AsyncIterable<Buffer>) chunks.push(c);
  const tar = Buffer.concat(chunks);
  return { gz: gzipSync(tar), diffId: sha(tar) };
}

interface Pushed {
  digest: string;
  bytes: Buffer;
  size: number;
  mediaType: string;
  config: TestDescriptor;
  configBytes: Buffer;
  layer: TestDescriptor;
  layerBytes: Buffer;
}

/** Pushes config + one gzip'd layer + manifest; tagged when `tag` is given. */
async function pushImage(
  url: string,
  repo: string,
  tag: string | undefined,
  arch: { architecture: string; variant?: string },
  auth?: PushAuth,
  format: "oci" | "docker" = "oci",
): Promise<Pushed> {
  const layerType = format === "oci" ? MediaType.OciLayerGzip : MediaType.DockerLayerGzip;
  const { gz, diffId } = await tarGz({
    "etc/arch": `${arch.architecture}\n`,
    "hello.txt": `hello ${repo}\n`,
  });
  const layer = await pushBlob(url, repo, gz, auth, layerType);
  const configBytes = Buffer.from(
    JSON.stringify({
      ...arch,
      os: "linux",
      config: {
        Cmd: ["/bin/sh"],
        Env: ["PATH=/bin"],
        User: "1000",
        WorkingDir: "/",
        Labels: { arch: arch.architecture },
      },
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created_by: "test" }],
    }),
  );
  const config = await pushBlob(
    url,
    repo,
    configBytes,
    auth,
    format === "oci" ? MediaType.OciConfig : MediaType.DockerConfig,
  );
  const mediaType = format === "oci" ? MediaType.OciManifest : MediaType.DockerManifest;
  const bytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType, config, layers: [layer] }, null, 2),
  );
  const digest = sha(bytes);
  await pushManifest(url, repo, tag ?? digest, bytes, mediaType, auth);
  return { digest, bytes, size: bytes.length, mediaType, config, configBytes, layer, layerBytes: gz };
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const code = (c: string, re?: RegExp) => (e: unknown) => {
  assert.ok(isBerthError(e, c as never), `expected ${c}, got ${String(e)}`);
  if (re) assert.match((e as Error).message, re);
  return true;
};

describe("RegistryClient against a real registry", { skip, timeout: SUITE_TIMEOUT_MS }, () => {
  let reg: RegistryHandle | undefined;
  let client: RegistryClient | undefined;
  let amd64: Pushed;
  let arm64: Pushed;
  let docker: Pushed;
  let index: { digest: string; bytes: Buffer };
  const ref = (s: string): ImageRef => parseReference(`${reg!.host}/${s}`);

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient({ retryBaseDelayMs: 10 });
    amd64 = await pushImage(reg.url, "test/app", "v1", { architecture: "amd64" });
    arm64 = await pushImage(reg.url, "test/app", undefined, { architecture: "arm64", variant: "v8" });
    docker = await pushImage(reg.url, "test/app", "docker", { architecture: "amd64" }, undefined, "docker");
    const indexBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          {
            mediaType: amd64.mediaType,
            digest: amd64.digest,
            size: amd64.size,
            platform: { os: "linux", architecture: "amd64" },
          },
          {
            mediaType: arm64.mediaType,
            digest: arm64.digest,
            size: arm64.size,
            platform: { os: "linux", architecture: "arm64", variant: "v8" },
          },
        ],
      }),
    );
    index = {
      digest: await pushManifest(reg.url, "test/app", "multi", indexBytes, MediaType.OciIndex),
      bytes: indexBytes,
    };
    // Same image as docker.io/library/busybox:v1 for the mirror test.
    await pushImage(reg.url, "library/busybox", "v1", { architecture: "amd64" });
  });

  after(async () => {
    await client?.close();
    await reg?.stop();
  });

  test("manifest by tag and by digest", async () => {
    const byTag = await client!.getManifest(ref("test/app:v1"));
    assert.equal(byTag.digest, amd64.digest);
    assert.equal(byTag.mediaType, MediaType.OciManifest);
    assert.deepEqual(byTag.bytes, amd64.bytes);
    const byDigest = await client!.getManifest(ref(`test/app@${arm64.digest}`));
    assert.equal(byDigest.digest, arm64.digest);
    assert.deepEqual(byDigest.bytes, arm64.bytes);
    const both = await client!.getManifest(ref(`test/app:v1@${arm64.digest}`));
    assert.equal(both.digest, arm64.digest, "the digest wins over the tag");
    const dockerType = await client!.getManifest(ref("test/app:docker"));
    assert.equal(dockerType.mediaType, MediaType.DockerManifest);
    assert.equal(dockerType.digest, docker.digest);
  });

  test("index: platform resolution", async () => {
    const top = await client!.getManifest(ref("test/app:multi"));
    assert.equal(top.mediaType, MediaType.OciIndex);
    assert.equal(top.digest, index.digest);

    const a = await client!.resolveImage(ref("test/app:multi"), {
      platform: { os: "linux", architecture: "amd64" },
    });
    assert.equal(a.digest, index.digest);
    assert.equal(a.index?.digest, index.digest);
    assert.equal(a.manifest.digest, amd64.digest);
    assert.equal(a.manifest.parsed.config.digest, amd64.config.digest);

    const b = await client!.resolveImage(ref("test/app:multi"), {
      platform: { os: "linux", architecture: "arm64" },
    });
    assert.equal(b.manifest.digest, arm64.digest);
    assert.equal(b.manifest.parsed.layers[0]?.digest, arm64.layer.digest);

    const host = await client!.resolveImage(ref("test/app:multi"));
    assert.equal(host.platform.architecture, defaultPlatform().architecture);
    if (["amd64", "arm64"].includes(defaultPlatform().architecture)) {
      assert.equal(
        host.manifest.digest,
        defaultPlatform().architecture === "amd64" ? amd64.digest : arm64.digest,
      );
    }

    await assert.rejects(
      client!.resolveImage(ref("test/app:multi"), { platform: { os: "linux", architecture: "s390x" } }),
      code("NotFound", /no manifest for platform linux\/s390x in index/),
    );

    const single = await client!.resolveImage(ref("test/app:v1"));
    assert.equal(single.index, undefined);
    assert.equal(single.digest, amd64.digest);
  });

  test("blob streaming with verification; config buffer", async () => {
    const stream = await client!.fetchBlob(ref("test/app"), amd64.layer);
    const verifier = new DigestVerifier(amd64.layer.digest, amd64.layer.size);
    const out = new PassThrough();
    const [, data] = await Promise.all([pipeline(stream, verifier, out), collect(out)]);
    assert.deepEqual(data, amd64.layerBytes);
    assert.equal(verifier.digest, amd64.layer.digest);

    const { bytes, config } = await client!.fetchImageConfig(ref("test/app"), amd64.config);
    assert.deepEqual(bytes, amd64.configBytes);
    assert.equal(config.config?.User, "1000");
    assert.deepEqual(parseImageConfig(bytes).rootfs.diff_ids.length, 1);

    // parallel downloads over the shared agent
    const all = await Promise.all(
      [amd64, arm64, docker]
        .flatMap((p) => [p.layer, p.config])
        .map((d) => client!.fetchBlobBuffer(ref("test/app"), d, 1 << 20)),
    );
    assert.equal(all.length, 6);
  });

  test("a corrupted expected digest fails verification", async () => {
    const wrong = `sha256:${"e".repeat(64)}`;
    const stream = await client!.fetchBlob(ref("test/app"), amd64.layer);
    await assert.rejects(
      pipeline(stream, new DigestVerifier(wrong, amd64.layer.size), new PassThrough().resume()),
      code("DataLoss", new RegExp(`^digest mismatch for ${wrong}: got ${amd64.layer.digest}$`)),
    );
    // asking the registry for a digest it does not have
    await assert.rejects(
      client!.fetchBlob(ref("test/app"), { digest: wrong, size: amd64.layer.size }),
      code("NotFound", /blob unknown/),
    );
    // manifest digest that does not exist
    await assert.rejects(client!.getManifest(ref(`test/app@${wrong}`)), code("NotFound", /manifest unknown/));
    // wrong size in the descriptor
    await assert.rejects(
      client!.fetchBlobBuffer(
        ref("test/app"),
        { digest: amd64.config.digest, size: amd64.config.size - 1 },
        1 << 20,
      ),
      code("DataLoss", /size mismatch/),
    );
  });

  test("a missing tag or repository → NotFound", async () => {
    await assert.rejects(client!.getManifest(ref("test/app:nope")), code("NotFound", /^manifest unknown: /));
    await assert.rejects(client!.getManifest(ref("test/none:v1")), code("NotFound"));
  });

  test("docker.io mirror keeps the library/ path", async () => {
    const c = new RegistryClient({ hosts: { mirrors: { "docker.io": { endpoints: [reg!.url] } } } });
    try {
      const r = await c.resolveImage(parseReference("busybox:v1"), {
        platform: { os: "linux", architecture: "amd64" },
      });
      assert.equal(r.manifest.parsed.layers.length, 1);
    } finally {
      await c.close();
    }
  });
});

describe("RegistryClient against a real registry with token auth", {
  skip,
  timeout: SUITE_TIMEOUT_MS,
}, () => {
  let reg: RegistryHandle | undefined;
  const clients: RegistryClient[] = [];
  let image: Pushed;
  const newClient = (opts: ConstructorParameters<typeof RegistryClient>[0] = {}) => {
    const c = new RegistryClient({ retryBaseDelayMs: 10, ...opts });
    clients.push(c);
    return c;
  };
  const ref = (s: string): ImageRef => parseReference(`${reg!.host}/${s}`);

  before(async () => {
    reg = await startRegistry({ tokenAuth: true });
    image = await pushImage(reg.url, "private/app", "v1", { architecture: "amd64" }, reg.auth);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await reg?.stop();
  });

  test("pull with credentials works; the token is reused", async () => {
    const c = newClient();
    const auth = { username: reg!.auth!.username, password: reg!.auth!.password };
    const before = reg!.tokenServer!.requests;
    const r = await c.resolveImage(ref("private/app:v1"), { auth });
    assert.equal(r.digest, image.digest);
    const layer = await c.fetchBlobBuffer(ref("private/app"), image.layer, 1 << 20, { auth });
    assert.deepEqual(layer, image.layerBytes);
    await c.fetchBlobBuffer(ref("private/app"), image.config, 1 << 20, { auth });
    assert.equal(reg!.tokenServer!.requests - before, 1, "one token for the whole pull");
  });

  test("credentials from the hosts config", async () => {
    const c = newClient({
      hosts: { configs: { [reg!.host]: { auth: { username: "berth", password: "secret" } } } },
    });
    assert.equal((await c.getManifest(ref("private/app:v1"))).digest, image.digest);
  });

  test("wrong password → Unauthenticated", async () => {
    await assert.rejects(
      newClient().getManifest(ref("private/app:v1"), { auth: { username: "berth", password: "wrong" } }),
      code("Unauthenticated", /rejected the credentials/),
    );
  });

  test("anonymous → Unauthenticated", async () => {
    await assert.rejects(
      newClient().getManifest(ref("private/app:v1")),
      code("Unauthenticated", /no credentials/),
    );
  });
});
