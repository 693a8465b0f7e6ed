import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { BerthError, isBerthError } from "../../common/errors.js";
import {
  anyJsonText,
  fuzzParams,
  hostileJsonText,
  hostileKey,
  mutatedBytes,
  mutatedJson,
  typedOutcome,
} from "../../common/fuzz-testutil.js";
import { isDigest } from "../reference.js";
import { MediaType } from "./media-types.js";
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  parseImageConfig,
  parseIndex,
  parseManifest,
  sniffManifestMediaType,
} from "./oci.js";

const hex = (n: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: n, maxLength: n });
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);
const text = fc.string({ maxLength: 12 });
const key = fc.oneof(text, hostileKey);
const stringMap = fc.dictionary(key, text, { maxKeys: 3 });
const strings = fc.array(text, { maxLength: 3 });
const mediaType = fc.oneof(
  fc.constantFrom(...Object.values(MediaType)),
  fc.string({ minLength: 1, maxLength: 12 }),
);

const platform = fc.record(
  {
    architecture: text,
    os: text,
    variant: text,
    "os.version": text,
    "os.features": strings,
    features: strings,
  },
  { requiredKeys: ["architecture", "os"] },
);
const descriptor = fc.record(
  {
    mediaType,
    digest,
    size: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
    urls: strings,
    annotations: stringMap,
    platform,
    artifactType: text,
  },
  { requiredKeys: ["mediaType", "digest", "size"] },
);
const manifestType = fc.constantFrom(MediaType.OciManifest, MediaType.DockerManifest);
const indexType = fc.constantFrom(MediaType.OciIndex, MediaType.DockerManifestList);

/** A valid manifest document and the media type it is served as. */
const manifestDoc = manifestType.chain((mt) =>
  fc.tuple(
    fc.constant(mt),
    fc.record(
      {
        schemaVersion: fc.constant(2),
        mediaType: fc.constant(mt),
        config: descriptor,
        layers: fc.array(descriptor, { maxLength: 3 }),
        artifactType: text,
        subject: descriptor,
        annotations: stringMap,
      },
      { requiredKeys: ["schemaVersion", "config", "layers"] },
    ),
  ),
);
const indexDoc = indexType.chain((mt) =>
  fc.tuple(
    fc.constant(mt),
    fc.record(
      {
        schemaVersion: fc.constant(2),
        mediaType: fc.constant(mt),
        manifests: fc.array(descriptor, { maxLength: 3 }),
        artifactType: text,
        subject: descriptor,
        annotations: stringMap,
      },
      { requiredKeys: ["schemaVersion", "manifests"] },
    ),
  ),
);
const configDoc = fc.record(
  {
    architecture: fc.string({ minLength: 1, maxLength: 8 }),
    os: fc.string({ minLength: 1, maxLength: 8 }),
    variant: text,
    "os.version": text,
    "os.features": strings,
    created: text,
    author: text,
    rootfs: fc.record({ type: fc.constant("layers"), diff_ids: fc.array(digest, { maxLength: 3 }) }),
    config: fc.record(
      {
        User: text,
        Env: strings,
        Cmd: strings,
        Entrypoint: strings,
        WorkingDir: text,
        ExposedPorts: fc.dictionary(key, fc.constant({}), { maxKeys: 3 }),
        Volumes: fc.dictionary(key, fc.constant({}), { maxKeys: 3 }),
        Labels: stringMap,
        StopSignal: text,
        ArgsEscaped: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    history: fc.array(
      fc.record(
        { created: text, created_by: text, author: text, comment: text, empty_layer: fc.boolean() },
        { requiredKeys: [] },
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: ["architecture", "os", "rootfs"] },
);

function checkDescriptor(d: Descriptor): void {
  assert.ok(isDigest(d.digest), d.digest);
  assert.ok(Number.isSafeInteger(d.size) && d.size >= 0);
  assert.ok(typeof d.mediaType === "string" && d.mediaType !== "");
}

/** What a parser accepted is well-formed, and parses back to itself from its JSON. */
function checkManifest(m: ImageManifest): void {
  checkDescriptor(m.config);
  m.layers.forEach(checkDescriptor);
  if (m.subject) checkDescriptor(m.subject);
  assert.deepEqual(parseManifest(JSON.stringify(m), m.mediaType), m);
}
function checkIndex(i: ImageIndex): void {
  i.manifests.forEach(checkDescriptor);
  if (i.subject) checkDescriptor(i.subject);
  assert.deepEqual(parseIndex(JSON.stringify(i), i.mediaType), i);
}
function checkConfig(c: ImageConfig): void {
  assert.ok(c.rootfs.diff_ids.every(isDigest));
  assert.deepEqual(parseImageConfig(JSON.stringify(c)), c);
}

/** Every parser on `bytes`: a value that passes the checks above, or a BerthError. */
function parseAll(bytes: Buffer, mt: string): void {
  const m = typedOutcome(() => parseManifest(bytes, mt), BerthError);
  if (m) checkManifest(m);
  const i = typedOutcome(() => parseIndex(bytes, mt), BerthError);
  if (i) checkIndex(i);
  const c = typedOutcome(() => parseImageConfig(bytes), BerthError);
  if (c) checkConfig(c);
  const sniffed = typedOutcome(() => sniffManifestMediaType(bytes), BerthError);
  if (sniffed !== undefined) assert.ok(typeof sniffed === "string" && sniffed !== "");
}

describe("OCI document parsers (fuzz)", () => {
  it("accept valid manifests, indexes and configs, which round-trip through JSON", () => {
    fc.assert(
      fc.property(manifestDoc, indexDoc, configDoc, ([mt, m], [it, i], c) => {
        checkManifest(parseManifest(JSON.stringify(m), mt));
        checkIndex(parseIndex(Buffer.from(JSON.stringify(i)), it));
        checkConfig(parseImageConfig(JSON.stringify(c)));
        assert.equal(
          sniffManifestMediaType(JSON.stringify(m)),
          "mediaType" in m ? mt : MediaType.OciManifest,
        );
      }),
      fuzzParams(),
    );
  });

  it("arbitrary bytes and JSON: a value or a BerthError", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.oneof(anyJsonText, fc.json()).map((s) => Buffer.from(s)),
        ),
        fc.oneof(manifestType, indexType, mediaType),
        parseAll,
      ),
      fuzzParams(),
    );
  });

  it("mutated valid documents: a well-formed value or a BerthError", () => {
    const doc = fc.oneof(
      manifestDoc,
      indexDoc,
      configDoc.map((c) => [MediaType.OciConfig, c] as const),
    );
    fc.assert(
      fc.property(
        doc.chain(([mt, d]) =>
          fc.tuple(
            fc.constant(mt),
            fc.oneof(mutatedJson(fc.constant(d)), mutatedBytes(fc.constant(Buffer.from(JSON.stringify(d))))),
          ),
        ),
        ([mt, bytes]) => parseAll(bytes, mt),
      ),
      fuzzParams(),
    );
  });

  it("hostile values in every field: a value or a BerthError", () => {
    const fields = [
      "schemaVersion",
      "mediaType",
      "config",
      "layers",
      "manifests",
      "subject",
      "annotations",
      "rootfs",
      "architecture",
      "history",
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fields), hostileJsonText, manifestType, (field, value, mt) => {
        const base = {
          schemaVersion: 2,
          config: { mediaType: "x", digest: `sha256:${"a".repeat(64)}`, size: 1 },
          layers: [],
          manifests: [],
          rootfs: { type: "layers", diff_ids: [] },
          architecture: "amd64",
          os: "linux",
        };
        const doc = JSON.stringify({ ...base, [field]: "\u0000hole" }).replace('"\\u0000hole"', value);
        parseAll(Buffer.from(doc), mt);
      }),
      fuzzParams(),
    );
  });

  it("rejection messages stay short whatever the document holds", () => {
    const huge = "x".repeat(1_000_000);
    const cases: [(s: string) => unknown, unknown][] = [
      [parseManifest, { schemaVersion: huge }],
      [parseIndex, { schemaVersion: [huge] }],
      [parseImageConfig, { rootfs: { type: huge } }],
    ];
    for (const [parse, doc] of cases) {
      assert.throws(
        () => parse(JSON.stringify(doc)),
        (e: unknown) => isBerthError(e, "InvalidArgument") && e.message.length < 1000,
      );
    }
  });
});
