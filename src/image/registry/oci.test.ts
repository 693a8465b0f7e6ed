import assert from "node:assert/strict";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import { isBerthError } from "../../common/errors.js";
import { computeDigest, DigestVerifier, verifyBytes } from "../digest.js";
import { MediaType } from "./media-types.js";
import { parseImageConfig, parseIndex, parseManifest, sniffManifestMediaType } from "./oci.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const manifest = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: { mediaType: MediaType.OciConfig, digest: D1, size: 10 },
  layers: [{ mediaType: MediaType.OciLayerGzip, digest: D2, size: 20, annotations: { a: "b" } }],
  annotations: { "org.opencontainers.image.ref.name": "x" },
};
const invalid = (re: RegExp) => (e: unknown) =>
  isBerthError(e, "InvalidArgument") && re.test((e as Error).message);

test("parseManifest accepts OCI and Docker schema 2", () => {
  const m = parseManifest(JSON.stringify(manifest), MediaType.OciManifest);
  assert.equal(m.config.digest, D1);
  assert.equal(m.layers[0]?.size, 20);
  assert.deepEqual(m.layers[0]?.annotations, { a: "b" });
  const docker = { ...manifest, mediaType: MediaType.DockerManifest };
  assert.equal(
    parseManifest(Buffer.from(JSON.stringify(docker)), MediaType.DockerManifest).mediaType,
    MediaType.DockerManifest,
  );
  const noMt: Record<string, unknown> = { ...manifest };
  delete noMt["mediaType"];
  assert.equal(parseManifest(JSON.stringify(noMt), MediaType.OciManifest).layers.length, 1);
});

test("parseManifest rejects garbage with clear messages", () => {
  assert.throws(() => parseManifest("<html>", MediaType.OciManifest), invalid(/not valid JSON/));
  assert.throws(() => parseManifest("[]", MediaType.OciManifest), invalid(/must be a JSON object/));
  assert.throws(
    () => parseManifest(JSON.stringify({ ...manifest, schemaVersion: 3 }), MediaType.OciManifest),
    invalid(/schemaVersion/),
  );
  assert.throws(
    () => parseManifest(JSON.stringify({ ...manifest, config: undefined }), MediaType.OciManifest),
    invalid(/config must be a JSON object/),
  );
  assert.throws(
    () => parseManifest(JSON.stringify({ ...manifest, layers: {} }), MediaType.OciManifest),
    invalid(/layers must be an array/),
  );
  assert.throws(
    () =>
      parseManifest(
        JSON.stringify({ ...manifest, layers: [{ mediaType: "x", digest: "sha256:zz", size: 1 }] }),
        MediaType.OciManifest,
      ),
    invalid(/layers\[0\]\.digest/),
  );
  assert.throws(
    () =>
      parseManifest(
        JSON.stringify({ ...manifest, layers: [{ mediaType: "x", digest: D1, size: -1 }] }),
        MediaType.OciManifest,
      ),
    invalid(/layers\[0\]\.size must be a non-negative integer/),
  );
  assert.throws(
    () => parseManifest(JSON.stringify(manifest), MediaType.DockerManifest),
    invalid(/does not match/),
  );
  assert.throws(
    () => parseManifest(JSON.stringify(manifest), MediaType.OciIndex),
    invalid(/unsupported media type/),
  );
  assert.throws(
    () => parseManifest(JSON.stringify({ schemaVersion: 1, name: "x" }), MediaType.OciManifest),
    (e: unknown) => isBerthError(e, "Unimplemented") && /schema 1/.test((e as Error).message),
  );
  assert.throws(
    () => parseManifest("{}", MediaType.DockerSchema1Signed),
    (e: unknown) => isBerthError(e, "Unimplemented"),
  );
});

test("parseIndex", () => {
  const idx = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      {
        mediaType: MediaType.OciManifest,
        digest: D1,
        size: 5,
        platform: { os: "linux", architecture: "arm", variant: "v7" },
      },
      { mediaType: MediaType.OciManifest, digest: D2, size: 6 },
    ],
  };
  const parsed = parseIndex(JSON.stringify(idx), MediaType.OciIndex);
  assert.deepEqual(parsed.manifests[0]?.platform, { os: "linux", architecture: "arm", variant: "v7" });
  assert.equal(parsed.manifests[1]?.platform, undefined);
  const list = { ...idx, mediaType: MediaType.DockerManifestList };
  assert.equal(parseIndex(JSON.stringify(list), MediaType.DockerManifestList).manifests.length, 2);
  assert.throws(
    () => parseIndex(JSON.stringify({ ...idx, manifests: null }), MediaType.OciIndex),
    invalid(/manifests must be an array/),
  );
  assert.throws(
    () =>
      parseIndex(
        JSON.stringify({ ...idx, manifests: [{ ...idx.manifests[0], platform: { os: "linux" } }] }),
        MediaType.OciIndex,
      ),
    invalid(/platform\.architecture must be a string/),
  );
});

test("sniffManifestMediaType", () => {
  assert.equal(sniffManifestMediaType(JSON.stringify(manifest)), MediaType.OciManifest);
  assert.equal(
    sniffManifestMediaType(JSON.stringify({ schemaVersion: 2, manifests: [] })),
    MediaType.OciIndex,
  );
  assert.equal(
    sniffManifestMediaType(JSON.stringify({ schemaVersion: 2, config: {}, layers: [] })),
    MediaType.OciManifest,
  );
  assert.throws(() => sniffManifestMediaType("{}"), invalid(/cannot tell/));
  assert.throws(() => sniffManifestMediaType("nope"), invalid(/not valid JSON/));
});

test("parseImageConfig: full, Docker-style nulls, and errors", () => {
  const cfg = parseImageConfig(
    JSON.stringify({
      architecture: "arm64",
      os: "linux",
      variant: "v8",
      created: "2024-01-01T00:00:00Z",
      config: {
        User: "1000:1000",
        Env: ["PATH=/bin"],
        Cmd: ["sh"],
        Entrypoint: null,
        WorkingDir: "/work",
        ExposedPorts: { "80/tcp": {} },
        Volumes: { "/data": {} },
        Labels: { a: "b" },
        StopSignal: "SIGQUIT",
        Hostname: "ignored",
      },
      rootfs: { type: "layers", diff_ids: [D1, D2] },
      history: [
        { created_by: "x", empty_layer: true },
        { created: "2024", author: "me", comment: "c" },
      ],
      container_config: { ignored: true },
    }),
  );
  assert.deepEqual(cfg.config, {
    User: "1000:1000",
    Env: ["PATH=/bin"],
    Cmd: ["sh"],
    WorkingDir: "/work",
    ExposedPorts: { "80/tcp": {} },
    Volumes: { "/data": {} },
    Labels: { a: "b" },
    StopSignal: "SIGQUIT",
  });
  assert.deepEqual(cfg.rootfs.diff_ids, [D1, D2]);
  assert.equal(cfg.variant, "v8");
  assert.equal(cfg.history?.length, 2);
  assert.equal(cfg.history?.[0]?.empty_layer, true);

  const base = { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } };
  assert.equal(parseImageConfig(JSON.stringify({ ...base, config: null, history: null })).config, undefined);
  assert.throws(
    () => parseImageConfig(JSON.stringify({ ...base, rootfs: undefined })),
    invalid(/rootfs must be a JSON object/),
  );
  assert.throws(
    () => parseImageConfig(JSON.stringify({ ...base, rootfs: { type: "x", diff_ids: [] } })),
    invalid(/rootfs.type/),
  );
  assert.throws(
    () => parseImageConfig(JSON.stringify({ ...base, rootfs: { type: "layers", diff_ids: ["x"] } })),
    invalid(/diff_ids\[0\]/),
  );
  assert.throws(
    () => parseImageConfig(JSON.stringify({ ...base, os: undefined })),
    invalid(/os must be a string/),
  );
  assert.throws(
    () => parseImageConfig(JSON.stringify({ ...base, config: { Env: "A=B" } })),
    invalid(/config.Env must be an array/),
  );
  assert.throws(
    () => parseImageConfig(JSON.stringify({ ...base, config: { Cmd: [1] } })),
    invalid(/config.Cmd\[0\] must be a string/),
  );
  assert.throws(
    () => parseImageConfig(JSON.stringify({ ...base, config: { Labels: { a: 1 } } })),
    invalid(/config.Labels/),
  );
  assert.throws(() => parseImageConfig("{"), invalid(/not valid JSON/));
});

test("DigestVerifier passes data through and checks digest + size", async () => {
  const data = Buffer.from("hello layer");
  const digest = computeDigest(data);
  const chunks: Buffer[] = [];
  const out = new PassThrough();
  out.on("data", (c: Buffer) => chunks.push(c));
  const v = new DigestVerifier(digest, data.length);
  await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), v, out);
  assert.deepEqual(Buffer.concat(chunks), data);
  assert.equal(v.digest, digest);
  assert.equal(v.bytesReceived, data.length);

  const wrong = `sha256:${"0".repeat(64)}`;
  await assert.rejects(
    pipeline(Readable.from([data]), new DigestVerifier(wrong, data.length), new PassThrough().resume()),
    (e: unknown) =>
      isBerthError(e, "DataLoss") && (e as Error).message === `digest mismatch for ${wrong}: got ${digest}`,
  );
  await assert.rejects(
    pipeline(Readable.from([data]), new DigestVerifier(digest, data.length + 1), new PassThrough().resume()),
    (e: unknown) => isBerthError(e, "DataLoss") && /size mismatch/.test((e as Error).message),
  );
  await assert.rejects(
    pipeline(Readable.from([data]), new DigestVerifier(digest, 2), new PassThrough().resume()),
    (e: unknown) => isBerthError(e, "DataLoss") && /got more than that/.test((e as Error).message),
  );
  assert.throws(
    () => new DigestVerifier("md5:abc"),
    (e: unknown) => isBerthError(e, "InvalidArgument"),
  );
});

test("verifyBytes", () => {
  const data = Buffer.from("x");
  verifyBytes(data, computeDigest(data), 1);
  verifyBytes(data, computeDigest(data, "sha512"));
  assert.throws(
    () => verifyBytes(data, D1),
    (e: unknown) => isBerthError(e, "DataLoss") && /digest mismatch for/.test((e as Error).message),
  );
  assert.throws(
    () => verifyBytes(data, computeDigest(data), 2),
    (e: unknown) => isBerthError(e, "DataLoss"),
  );
});

test("a hostile value in a rejection message: no stack overflow, a short message", () => {
  const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
  const short = (e: unknown) => isBerthError(e, "InvalidArgument") && (e as Error).message.length < 500;
  assert.throws(() => parseManifest(`{"schemaVersion":${deep}}`), short);
  assert.throws(() => parseIndex(`{"schemaVersion":"${"x".repeat(100_000)}"}`), short);
  assert.throws(() => parseImageConfig(`{"rootfs":{"type":${deep}}}`), short);
});

test('parseImageConfig keeps a "__proto__" port or volume as a key, not as the prototype', () => {
  const doc = {
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [] },
    config: { ExposedPorts: { ["__proto__"]: { x: 1 }, "80/tcp": {} } },
  };
  const ports = parseImageConfig(JSON.stringify(doc)).config?.ExposedPorts ?? {};
  assert.deepEqual(Object.keys(ports), ["__proto__", "80/tcp"]);
  assert.equal(Object.getPrototypeOf(ports), Object.prototype);
});

test("parseImageConfig drops what an ExposedPorts or Volumes value holds (the spec's empty object)", () => {
  const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
  const doc = `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
    "config":{"Volumes":{"/v":{"x":${deep}}},"ExposedPorts":{"80/tcp":null}}}`;
  const c = parseImageConfig(doc);
  assert.deepEqual(c.config?.Volumes, { "/v": {} });
  assert.deepEqual(c.config?.ExposedPorts, { "80/tcp": {} });
  assert.equal(typeof JSON.stringify(c), "string");
});
