import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import fc from "fast-check";
import { BerthError, isBerthError } from "../../common/errors.js";
import {
  applyByteEdits,
  type ByteEdit,
  byteEdit,
  chunksOf,
  fuzzParams,
  typedOutcome,
  typedOutcomeAsync,
  withinMs,
} from "../../common/fuzz-testutil.js";
import { applyLayer } from "./apply.js";
import { buildTar, type FixtureEntry, listTree, sandbox } from "./tar-fixture.js";
import { createLayerExtract, entryMeta, type LayerHeader, parseRawPax } from "./tar-header.js";
import { normalizeEntryName } from "./tree.js";

// tar-stream's own PAX decoder, which parseRawPax must agree with (not in its package exports).
const require = createRequire(import.meta.url);
const { decodePax } = require(path.join(path.dirname(require.resolve("tar-stream")), "headers.js")) as {
  decodePax(buf: Buffer): Record<string, string>;
};

const paxKey = fc.oneof(
  fc.constantFrom("path", "linkpath", "size", "uid", "gid", "mtime", "atime", "SCHILY.xattr.user.a"),
  fc.string({ maxLength: 6 }).map((s) => `SCHILY.xattr.${s}`),
  fc.string({ maxLength: 6 }),
);
const paxValue = fc.oneof(
  fc.constantFrom("0", "1000", "4294967294", "4294967295", "-1", "1.5", "1e3", "", "99999999999999999999"),
  fc.constantFrom("1600000000.123456789", "-1600000000", "NaN", " 1", "0x10", "1".repeat(25)),
  fc.string({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b).toString("latin1")),
);

/** PAX records `<len> <key>=<value>\n` with correct lengths, as Buffer. */
function paxRecords(records: [string, Buffer][]): Buffer {
  return Buffer.concat(
    records.map(([k, v]) => {
      const body = Buffer.concat([Buffer.from(` ${k}=`), v, Buffer.from("\n")]);
      let len = body.length + 1;
      while (String(len).length + body.length !== len) len++;
      return Buffer.concat([Buffer.from(String(len)), body]);
    }),
  );
}
const paxBlock = fc
  .array(
    fc.tuple(
      paxKey,
      paxValue.map((v) => Buffer.from(v, "latin1")),
    ),
    { maxLength: 5 },
  )
  .map(paxRecords);

const number = fc.oneof(
  fc.integer({ min: -2, max: 0x1_0000_0000 }),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 0.5, 2 ** 53, 0o7777, 0o177777),
);
const header: fc.Arbitrary<LayerHeader> = fc.record(
  {
    name: fc.string(),
    uid: number,
    gid: number,
    mode: number,
    mtime: fc.oneof(fc.date(), fc.constant(new Date(Number.NaN))),
    pax: fc.oneof(
      fc.constant(null),
      fc.dictionary(paxKey, paxValue, { maxKeys: 4 }),
      paxBlock.map((b) => decodePax(b)),
    ),
  },
  { requiredKeys: ["name"] },
);

const entryName = fc.oneof(
  fc.constantFrom(
    "a",
    "a/b",
    "dir/",
    "../up",
    "/abs/x",
    ".wh.a",
    "d/.wh..wh..opq",
    ".wh..wh.x",
    ".",
    "./",
    "..",
    "",
  ),
  fc.string({ unit: fc.constantFrom("a", "/", ".", "..", ".wh.", "é", "\0"), maxLength: 8 }),
  fc.string({ unit: fc.constant("a"), minLength: 90, maxLength: 260 }).map((s) => `long/${s}`),
);
const fixtureEntry: fc.Arbitrary<FixtureEntry> = fc.record(
  {
    name: entryName,
    type: fc.constantFrom("file", "directory", "symlink", "link", "fifo", "character-device"),
    data: fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: fc.nat(70000),
    linkname: entryName,
    devmajor: fc.nat(300),
    devminor: fc.nat(300),
    pax: fc.dictionary(paxKey, paxValue, { maxKeys: 3 }),
  },
  { requiredKeys: ["name", "type"] },
);
/** Valid layer tarballs built with tar-stream (NUL in names aside, which the packer refuses). */
const validTar = fc
  .array(fixtureEntry, { minLength: 1, maxLength: 5 })
  .map((entries) => entries.map((e) => ({ ...e, name: e.name.replaceAll("\0", "") || "x" })));

/** Ustar header fields: [offset, length]. */
const FIELDS: [number, number][] = [
  [0, 100], // name
  [100, 8], // mode
  [108, 8], // uid
  [116, 8], // gid
  [124, 12], // size
  [136, 12], // mtime
  [156, 1], // typeflag
  [157, 100], // linkname
  [257, 8], // magic + version
  [329, 8], // devmajor
  [337, 8], // devminor
  [345, 155], // prefix
];
const fieldValue = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => Buffer.from(b)),
  fc.bigInt({ min: 0n, max: 2n ** 40n }).map((n) => Buffer.from(`${n.toString(8)}\0`)),
  // base-256 (GNU): 0x80 or 0xff (negative) then big-endian bytes
  fc
    .tuple(fc.constantFrom(0x80, 0xff), fc.uint8Array({ minLength: 11, maxLength: 11 }))
    .map(([b, rest]) => Buffer.from([b, ...rest])),
  fc.constantFrom(..."0123456789LKxXgAS\0 ").map((c) => Buffer.from(c)),
);
interface FieldEdit {
  block: number;
  field: number;
  value: Buffer;
}
const fieldEdit: fc.Arbitrary<FieldEdit> = fc.record({
  block: fc.nat(),
  field: fc.nat(FIELDS.length - 1),
  value: fieldValue,
});

/** Offsets of the 512-byte blocks that carry a ustar magic: the headers of a packed archive. */
function headerOffsets(tar: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 512 <= tar.length; off += 512) {
    if (tar.toString("latin1", off + 257, off + 262) === "ustar") out.push(off);
  }
  return out;
}

/** Overwrites header fields and recomputes the checksums, so the edits reach the field decoders. */
function editFields(tar: Buffer, edits: readonly FieldEdit[]): Buffer {
  const out = Buffer.from(tar);
  const offsets = headerOffsets(out);
  if (offsets.length === 0) return out;
  for (const e of edits) {
    const off = offsets[e.block % offsets.length]!;
    const [at, len] = FIELDS[e.field]!;
    out.fill(0, off + at, off + at + len);
    e.value.copy(out, off + at, 0, Math.min(len, e.value.length));
    out.fill(0x20, off + 148, off + 156);
    let sum = 0;
    for (let i = off; i < off + 512; i++) sum += out[i]!;
    out.write(`${sum.toString(8).padStart(6, "0")}\0 `, off + 148, "latin1");
  }
  return out;
}

/** Valid tarballs with header fields rewritten (checksums fixed), then maybe raw byte edits too. */
const mutatedTar = fc.record({
  entries: validTar,
  fields: fc.array(fieldEdit, { maxLength: 3 }),
  bytes: fc.array(byteEdit, { maxLength: 2 }),
});
async function build(m: {
  entries: FixtureEntry[];
  fields: FieldEdit[];
  bytes: ByteEdit[];
}): Promise<Buffer> {
  return applyByteEdits(editFields(await buildTar(m.entries), m.fields), m.bytes);
}

/** Checks what entryMeta accepted. */
function checkMeta(h: LayerHeader): void {
  const m = typedOutcome(() => entryMeta(h, "x"), BerthError);
  if (!m) return;
  for (const id of [m.uid, m.gid]) assert.ok(Number.isInteger(id) && id >= 0 && id <= 0xfffffffe, String(id));
  assert.ok(Number.isInteger(m.mode) && m.mode >= 0 && m.mode <= 0o7777);
  assert.ok(Number.isFinite(m.mtime) && Number.isFinite(m.atime) && m.atime >= m.mtime);
}

/**
 * Feeds `chunks` through the layer extractor, checking every header on the way as applyLayer
 * would; settles when the archive ends or the extractor fails (any error: applyLayer wraps those
 * into DataLoss), and must settle.
 */
async function extractAll(chunks: Buffer[]): Promise<number> {
  const extract = createLayerExtract();
  let entries = 0;
  extract.on("entry", (tarHeader, stream, next) => {
    const h = tarHeader as LayerHeader;
    entries++;
    checkMeta(h);
    const rel = typedOutcome(() => normalizeEntryName(h.name), BerthError);
    if (rel !== undefined) checkRel(rel);
    stream.on("error", () => {}); // the extractor fails too
    stream.resume();
    // As applyLayer: only a file's data is read to its end (tar-stream, like Go, gives other
    // types no data whatever their size field says, and never ends their stream then).
    if (h.type === "file" || h.type === "contiguous-file") stream.on("end", () => next());
    else next();
  });
  const done = new Promise<void>((resolve) => {
    extract.on("finish", resolve);
    extract.on("error", () => resolve());
  });
  Readable.from(chunks, { objectMode: false }).pipe(extract);
  await withinMs(done, 5000, "tar extract");
  return entries;
}

function checkRel(rel: string): void {
  if (rel === "") return;
  assert.ok(!rel.startsWith("/") && !rel.endsWith("/"), rel);
  for (const part of rel.split("/")) assert.ok(part !== "" && part !== "." && part !== "..", rel);
  assert.equal(normalizeEntryName(rel), rel);
}

describe("tar headers (fuzz)", () => {
  it("parseRawPax agrees with tar-stream's decodePax on keys and values", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)),
          paxBlock,
          fc
            .tuple(paxBlock, fc.array(byteEdit, { minLength: 1, maxLength: 3 }))
            .map(([b, e]) => applyByteEdits(b, e)),
        ),
        (buf) => {
          const raw = parseRawPax(buf);
          const decoded = decodePax(buf);
          // decodePax assigns into a plain object: "__proto__" never becomes a key there.
          const rawKeys = [...raw.keys()].filter((k) => k !== "__proto__");
          assert.deepEqual(new Set(rawKeys), new Set(Object.keys(decoded)));
          for (const k of rawKeys) assert.equal(raw.get(k)!.toString(), decoded[k]);
        },
      ),
      fuzzParams(),
    );
  });

  it("entryMeta: sane ownership, mode and times, or a BerthError", () => {
    fc.assert(fc.property(header, checkMeta), fuzzParams());
  });

  it("normalizeEntryName: a confined relative path, or InvalidArgument for NUL", () => {
    fc.assert(
      fc.property(fc.oneof(entryName, fc.string({ unit: "binary" })), (name) => {
        const rel = typedOutcome(() => normalizeEntryName(name), BerthError);
        if (rel === undefined) assert.ok(name.includes("\0"));
        else checkRel(rel);
      }),
      fuzzParams(),
    );
  });

  const cuts = fc.array(fc.nat(), { maxLength: 4 });

  it("the extractor on random bytes: settles, headers checked", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), cuts, async (bytes, at) => {
        await extractAll(chunksOf(Buffer.from(bytes), at));
      }),
      fuzzParams(),
    );
  });

  it("the extractor on mutated archives: settles, headers checked", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedTar, cuts, async (m, at) => {
        await extractAll(chunksOf(await build(m), at));
      }),
      fuzzParams(100),
    );
  });
});

describe("applyLayer on mutated archives (fuzz)", {
  skip: process.getuid?.() === 0 ? false : "needs root",
}, () => {
  it("applies or rejects with a BerthError, and never writes outside the snapshot", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedTar, async (m) => {
        const bytes = await build(m);
        const box = await sandbox();
        try {
          await withinMs(
            typedOutcomeAsync(() => applyLayer(Readable.from([bytes]), box.root), BerthError),
            10_000,
            "applyLayer",
          );
          assert.deepEqual((await readdir(box.base)).sort(), ["outside", "root"]);
          assert.deepEqual(await listTree(box.outside), []);
        } finally {
          await box.cleanup();
        }
      }),
      fuzzParams(40),
    );
  });

  it("a NUL in a name is InvalidArgument", () => {
    assert.throws(
      () => normalizeEntryName("a\0b"),
      (e: unknown) => isBerthError(e, "InvalidArgument"),
    );
  });
});
