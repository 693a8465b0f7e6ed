/**
 * The native reading path (native/log_ndjson.c through ndjson-assembler.ts) against the JS
 * path it replaces (assemble() + decodeCriLine/decodeRawLine + ndjsonBuffer): the same bytes,
 * clean points, record counts and content lengths, over randomized and adversarial chunks
 * (escapes, invalid UTF-8, CR, P/F parts of both streams interleaved and cut by the chunk's
 * end, long lines, odd timestamps) and over whole files read by FileTail in small chunks.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, mock } from "node:test";
import { native } from "../common/native.js";
import { assemble } from "./assembler.js";
import { DEFAULT_TAIL_OPTIONS, FileTail, type TailOptions } from "./file-tail.js";
import { decodeCriLine, decodeRawLine } from "./line-format.js";
import { ndjsonBuffer, tagsSuffix } from "./ndjson.js";
import { ndjsonAssembler } from "./ndjson-assembler.js";

/** A small seeded PRNG (mulberry32): failures can be replayed by their seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const TIMES = [
  "2026-12-06T03:23:46.123456789Z", // conmon / CRI-O
  "2026-12-06T03:23:46.1234567Z", // containerd: trailing zeros trimmed
  "2026-12-06T03:23:46.12Z",
  "2026-12-06T03:23:46Z",
  "2026-12-06T03:23:47.000000001Z",
  "2026-12-06T05:23:46.123456789+02:00", // offset forms
  "2026-12-05T22:53:46.5-04:30",
  "2026-12-31T23:59:59.999999999-01:00", // next year in UTC
  "2024-02-29T12:00:00.1Z",
  "1970-01-01T00:00:00Z",
  "1969-12-31T23:59:59.999999999Z",
  "0001-01-01T00:00:00.000000001Z",
  "9999-12-31T23:59:59.999999999Z",
  "2026-12-06T03:23:46.1234567891234Z", // more than nine digits: cut
];
/** Not CRI times (the line is then not a CRI line), and ones Date.parse decides (a bail). */
const ODD_TIMES = [
  "2026-12-06T03:23:46.Z",
  "2026-12-06T03:23:46.123z",
  "2026-12-06 03:23:46.123Z",
  "2026-12-06T03:23:46.123+0200",
  "2026-12-06T03:23:46.123+02:00:00",
  "2026-12-6T03:23:46.123Z",
  "2026-13-06T03:23:46Z",
  "2026-02-30T03:23:46Z",
  "2026-04-31T00:00:00Z",
  "2026-12-06T24:00:00Z",
  "2026-12-06T23:60:00Z",
  "2026-12-06T23:59:60Z",
  "2026-12-06T03:23:46+24:00",
  "0000-01-01T00:00:00+01:00",
  "9999-12-31T23:59:59-01:00",
  "２026-12-06T03:23:46Z",
  "",
  "x",
];

/** Content bytes: ASCII, escapes, controls, valid and ill-formed UTF-8, long runs. */
function content(r: Rng, max: number): Buffer {
  const parts: Buffer[] = [];
  const n = r.int(max);
  let len = 0;
  while (len < n) {
    let b: Buffer;
    switch (r.int(14)) {
      case 0:
        b = Buffer.from(r.pick(['"', "\\", "\t", "\r", "\b", "\f", "\u0000", "\u001f", "\u007f", "/"]));
        break;
      case 1:
        b = Buffer.from([r.int(0x20)]);
        break;
      case 2:
        b = Buffer.from(r.pick(["é", "€", "😀", "\u2028", "\ufeff", "\uffff", "ü"]));
        break;
      case 3: // ill-formed: surrogates, overlongs, out of range, lone continuation, truncated
        b = Buffer.from(
          r.pick([
            [0xed, 0xa0, 0x80],
            [0xed, 0xbf, 0xbf],
            [0xc0, 0x80],
            [0xc1, 0xbf],
            [0xe0, 0x80, 0x80],
            [0xe0, 0x9f, 0xbf],
            [0xf0, 0x80, 0x80, 0x80],
            [0xf4, 0x90, 0x80, 0x80],
            [0xf5, 0x80],
            [0xff],
            [0x80],
            [0xbf, 0xbf],
            [0xe2, 0x82],
            [0xf0, 0x9f, 0x98],
            [0xf0, 0x9f],
            [0xe2],
            [0xc3],
          ]),
        );
        break;
      case 4:
        b = Buffer.from([0x80 + r.int(0x80)]);
        break;
      case 5:
        b = Buffer.from("x".repeat(r.int(40)));
        break;
      default: {
        const s = "GET /api/v1/items 200 bytes in 12 ms user=alice ";
        const at = r.int(s.length);
        b = Buffer.from(s.slice(at, at + 1 + r.int(s.length)));
      }
    }
    parts.push(b);
    len += b.length;
  }
  return Buffer.concat(parts);
}

/** A CRI log line (with its newline, CRLF sometimes), or something that is not one. */
function criLine(r: Rng): Buffer {
  const body = content(r, r.next() < 0.05 ? 3000 : 120);
  const roll = r.next();
  if (roll < 0.04) return Buffer.concat([body, Buffer.from("\n")]); // not CRI at all
  const time = roll < 0.07 ? r.pick(ODD_TIMES) : r.pick(TIMES);
  const stream =
    r.next() < 0.03 ? r.pick(["stdin", "stdou", "STDOUT", "stdoutx"]) : r.pick(["stdout", "stderr"]);
  const tag = r.next() < 0.03 ? r.pick(["X", "PF", "p", ""]) : r.next() < 0.4 ? "P" : "F";
  const sep = r.next() < 0.03 ? r.pick(["", "\t", "  "]) : " ";
  const nl = r.next() < 0.05 ? "\r\n" : "\n";
  if (r.next() < 0.03) return Buffer.from(`${time} ${stream} ${tag}${nl}`); // empty content
  return Buffer.concat([Buffer.from(`${time} ${stream} ${tag}${sep}`), body, Buffer.from(nl)]);
}

const TAG_SETS: Array<Record<string, string>> = [
  {},
  Object.freeze({
    _container_name_: "web",
    _pod_name_: "web-7d9c8b6f5-x2x9q",
    _namespace_: "default",
    _image_name_: "registry.example.com/web:1.4.2",
  }),
  Object.freeze({ __path__: '/var/log/a "b"\\c.log', "ключ\n": "значение 😀", _source_: "x" }),
];

const FIXED_NOW = 1_765_000_000_123;

interface Case {
  chunk: Buffer;
  format: 0 | 1;
  force: boolean;
  maxRecordBytes: number;
  tags: Record<string, string>;
  ignoreStdout: boolean;
  ignoreStderr: boolean;
}

interface Result {
  ndjson: Buffer;
  consumed: number;
  count: number;
  units: number;
}

function viaJs(c: Case): Result {
  const r = assemble(c.chunk, {
    decode: c.format === 0 ? decodeCriLine : decodeRawLine,
    maxRecordBytes: c.maxRecordBytes,
    force: c.force,
  });
  const records = r.records.filter(
    (x) => !((c.ignoreStdout && x.source === "stdout") || (c.ignoreStderr && x.source === "stderr")),
  );
  let units = 0;
  for (const x of records) {
    x.tags = c.tags;
    units += x.fields["content"]!.length;
  }
  return { ndjson: ndjsonBuffer(records), consumed: r.consumed, count: records.length, units };
}

function viaNative(c: Case): Result | null {
  const info = new Float64Array(4);
  const skip = (c.ignoreStdout ? 1 : 0) | (c.ignoreStderr ? 2 : 0);
  const out = native().logNdjson(
    c.chunk,
    c.format,
    c.force,
    c.maxRecordBytes,
    tagsSuffix(c.tags),
    skip,
    Date.now(),
    info,
  );
  return out && { ndjson: out, consumed: info[0]!, count: info[1]!, units: info[2]! };
}

function randomCase(r: Rng): Case {
  const format = r.next() < 0.8 ? 0 : 1;
  const lines: Buffer[] = [];
  const n = 1 + r.int(40);
  for (let i = 0; i < n; i++)
    lines.push(format === 0 ? criLine(r) : Buffer.concat([content(r, 200), Buffer.from("\n")]));
  let chunk = Buffer.concat(lines);
  if (r.next() < 0.5) chunk = chunk.subarray(0, r.int(chunk.length + 1)); // cut mid-line
  return {
    chunk,
    format,
    force: r.next() < 0.3,
    maxRecordBytes: r.next() < 0.3 ? 1 + r.int(300) : 1024 * 1024,
    tags: r.pick(TAG_SETS),
    ignoreStdout: r.next() < 0.15,
    ignoreStderr: r.next() < 0.15,
  };
}

function assertSame(c: Case, js: Result, nat: Result, what: string): void {
  if (!nat.ndjson.equals(js.ndjson)) {
    const a = js.ndjson.toString("latin1");
    const b = nat.ndjson.toString("latin1");
    let at = 0;
    while (a[at] === b[at]) at++;
    assert.fail(
      `${what}: output differs at byte ${at}:\n js:     ${JSON.stringify(a.slice(Math.max(0, at - 60), at + 60))}\n native: ${JSON.stringify(b.slice(Math.max(0, at - 60), at + 60))}\n chunk: ${JSON.stringify(c.chunk.toString("latin1").slice(0, 2000))}`,
    );
  }
  assert.deepEqual(
    { consumed: nat.consumed, count: nat.count, units: nat.units },
    { consumed: js.consumed, count: js.count, units: js.units },
    what,
  );
}

describe("native NDJSON path", () => {
  before(() => {
    // Lines without their own time get "now": the same now for both paths.
    mock.method(Date, "now", () => FIXED_NOW);
  });
  after(() => mock.restoreAll());

  it("writes what the JS path writes, over randomized and adversarial chunks", () => {
    let compared = 0;
    let bailed = 0;
    let records = 0;
    for (let seed = 1; seed <= 4000; seed++) {
      const c = randomCase(rng(seed));
      const js = viaJs(c);
      const nat = viaNative(c);
      if (!nat) {
        bailed++;
        continue;
      }
      assertSame(c, js, nat, `seed ${seed}`);
      compared++;
      records += js.count;
    }
    // Odd times are in ~3% of lines: most chunks must have been compared, not bailed.
    assert.ok(compared > 2500, `compared ${compared}, bailed ${bailed}`);
    assert.ok(records > 20_000, `only ${records} records compared`);
  });

  it("decodes every 1-, 2-, 3- and 4-byte sequence as Buffer.toString does", () => {
    const bytes: number[] = [];
    for (let a = 0x80; a < 0x100; a++) {
      for (const b of [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff]) {
        for (const c of [0x80, 0xbf, 0x41]) bytes.push(0x61, a, b, c, 0x80, 0x62);
      }
    }
    for (let a = 0; a < 0x80; a++) bytes.push(a);
    const chunk = Buffer.concat([
      Buffer.from("2026-12-06T03:23:46.1Z stdout F "),
      Buffer.from(bytes),
      Buffer.from("\n"),
    ]);
    const c: Case = {
      chunk,
      format: 0,
      force: false,
      maxRecordBytes: 1 << 20,
      tags: {},
      ignoreStdout: false,
      ignoreStderr: false,
    };
    assertSame(c, viaJs(c), viaNative(c)!, "all sequences");
  });

  it("hands back a chunk with a time only Date.parse reads exactly; the assembler then takes the JS path", () => {
    const c: Case = {
      chunk: Buffer.from("2026-02-30T03:23:46Z stdout F odd day\n2026-12-06T03:23:46Z stderr F x\n"),
      format: 0,
      force: false,
      maxRecordBytes: 1 << 20,
      tags: TAG_SETS[1]!,
      ignoreStdout: false,
      ignoreStderr: false,
    };
    assert.equal(viaNative(c), null);
    const asm = ndjsonAssembler({ ...c, decode: decodeCriLine })!;
    const r = asm(c.chunk, false);
    const js = viaJs(c);
    assert.ok(r.ndjson?.ndjson.equals(js.ndjson));
    assert.match(js.ndjson.toString(), /"_time_":"2026-03-02T03:23:46.000000000Z"/);
  });

  describe("whole files through FileTail in small chunks", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "collector-ndjson-native-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    /** Everything a FileTail reads from `path` to its end, as NDJSON, with its final offset. */
    async function readAll(path: string, opts: TailOptions, useNative: boolean) {
      const tags = TAG_SETS[1]!;
      const assembler = useNative
        ? ndjsonAssembler({ ...opts, tags, ignoreStdout: false, ignoreStderr: false })
        : undefined;
      if (useNative) assert.ok(assembler);
      const t = new FileTail(path, assembler ? { ...opts, assembler } : opts);
      await t.open();
      const out: Buffer[] = [];
      const batches: number[] = [];
      for (;;) {
        const b = await t.next(true);
        if (!b) break;
        if (b.ndjson) out.push(b.ndjson.ndjson);
        else {
          for (const r of b.records) r.tags = tags;
          out.push(ndjsonBuffer(b.records));
        }
        batches.push(b.position.offset);
        await t.ack(b);
      }
      await t.close();
      return { ndjson: Buffer.concat(out), batches };
    }

    for (const seed of [11, 12, 13, 14, 15, 16]) {
      it(`seed ${seed}: the same records and the same commit points`, async () => {
        const r = rng(seed);
        const lines: Buffer[] = [];
        // Long P/F runs of both streams interleaved: records span chunks, chunks grow.
        for (let i = 0; i < 600; i++) {
          const stream = r.pick(["stdout", "stderr"]);
          const tag = r.next() < 0.5 ? "P" : "F";
          const body = r.next() < 0.1 ? content(r, 5000) : content(r, 100);
          lines.push(
            Buffer.concat([Buffer.from(`${r.pick(TIMES)} ${stream} ${tag} `), body, Buffer.from("\n")]),
          );
        }
        const path = join(dir, `f${seed}.log`);
        await writeFile(path, Buffer.concat(lines));
        const opts: TailOptions = {
          ...DEFAULT_TAIL_OPTIONS,
          decode: decodeCriLine,
          rotationGraceMs: 0,
          chunkBytes: 512 + r.int(2048),
          maxChunkBytes: 16 * 1024,
          maxRecordBytes: r.next() < 0.5 ? 4096 : 1 << 20,
        };
        const js = await readAll(path, opts, false);
        const nat = await readAll(path, opts, true);
        assert.ok(js.ndjson.length > 10_000);
        assert.deepEqual(nat.batches, js.batches);
        assert.ok(nat.ndjson.equals(js.ndjson), "NDJSON differs");
      });
    }
  });
});
