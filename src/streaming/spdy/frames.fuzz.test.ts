import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deflateRawSync } from "node:zlib";
import fc from "fast-check";
import { chunksOf, fuzzParams, mutatedBytes, typedOutcome } from "../../common/fuzz-testutil.js";
import { type Frame, FrameEncoder, FrameParser, type OutgoingFrame, SpdyProtocolError } from "./frames.js";
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderBlockError,
  HeaderCompressor,
  HeaderDecompressor,
  type SpdyHeaders,
} from "./headers.js";

const u32 = fc.nat({ max: 0xffffffff });
const id31 = fc.integer({ min: 1, max: 0x7fffffff });
const flags = fc.nat(255);
const headerName = fc.oneof(
  fc.constantFrom("streamtype", "port", "requestid", ":status", "__proto__", "constructor", "X-Mixed"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }),
);
const headerValue = fc.oneof(
  fc.constantFrom("stdin", "stdout", "error", "8080", ""),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.array(fc.string({ maxLength: 4 }), { minLength: 1, maxLength: 3 }).map((v) => v.join("\0")),
);
/** Header maps whose names stay distinct once lowercased (the encoder refuses duplicates). */
const headers = fc.array(fc.tuple(headerName, headerValue), { maxLength: 5 }).map((pairs) => {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [n, v] of pairs) {
    if (seen.has(n.toLowerCase())) continue;
    seen.add(n.toLowerCase());
    Object.defineProperty(out, n, { value: v, enumerable: true });
  }
  return out;
});

const frame: fc.Arbitrary<OutgoingFrame> = fc.oneof(
  fc.record({
    type: fc.constant("DATA" as const),
    streamId: id31,
    flags,
    data: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  }),
  fc.record({
    type: fc.constant("SYN_STREAM" as const),
    streamId: id31,
    associatedId: fc.nat(0x7fffffff),
    priority: fc.nat(7),
    slot: fc.nat(255),
    flags,
    headers,
  }),
  fc.record({
    type: fc.constantFrom("SYN_REPLY" as const, "HEADERS" as const),
    streamId: id31,
    flags,
    headers,
  }),
  fc.record({
    type: fc.constant("RST_STREAM" as const),
    streamId: id31,
    status: fc.integer({ min: 1, max: 0xffffffff }),
  }),
  fc.record({
    type: fc.constant("SETTINGS" as const),
    flags,
    settings: fc.array(fc.record({ id: fc.nat(0xffffff), flags, value: u32 }), { maxLength: 4 }),
  }),
  fc.record({ type: fc.constant("PING" as const), id: fc.integer({ min: 1, max: 0xffffffff }) }),
  fc.record({ type: fc.constant("GOAWAY" as const), lastGoodStreamId: fc.nat(0x7fffffff), status: u32 }),
  fc.record({ type: fc.constant("WINDOW_UPDATE" as const), streamId: fc.nat(0x7fffffff), delta: id31 }),
);

const lowered = (h: Record<string, unknown>): SpdyHeaders =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), String(v)]));

/** The frame a parser must deliver for an encoded `f`. */
function expected(f: OutgoingFrame): unknown {
  switch (f.type) {
    case "SYN_STREAM":
      return {
        type: f.type,
        streamId: f.streamId,
        associatedId: f.associatedId ?? 0,
        priority: f.priority ?? 0,
        slot: f.slot ?? 0,
        flags: f.flags,
        headers: lowered(f.headers),
      };
    case "SYN_REPLY":
    case "HEADERS":
      return { ...f, headers: lowered(f.headers) };
    case "SETTINGS":
      return { ...f, settings: f.settings.map((x) => ({ ...x })) };
    default:
      return { ...f }; // fast-check may build it with a null prototype
  }
}

/** A parsed frame as a plain object (header maps have a null prototype). */
function plain(f: Frame): unknown {
  return "headers" in f ? { ...f, headers: { ...f.headers } } : f;
}

function encodeAll(frames: readonly OutgoingFrame[]): Buffer {
  const enc = new FrameEncoder();
  return Buffer.concat(frames.map((f) => enc.encode(f)));
}

/** Frames within what the wire format can say. */
function checkFrame(f: Frame): void {
  if ("streamId" in f) assert.ok(Number.isInteger(f.streamId) && f.streamId >= 0 && f.streamId <= 0x7fffffff);
  if (f.type === "DATA" || f.type === "SYN_STREAM" || f.type === "SYN_REPLY" || f.type === "HEADERS") {
    assert.ok(f.streamId > 0);
  }
  if ("headers" in f) for (const v of Object.values(f.headers)) assert.equal(typeof v, "string");
}

/**
 * Pushes `chunks` into a fresh parser: either every chunk is taken, or a SpdyProtocolError ends
 * it and then sticks (the same error for every later push).
 */
function parseChunks(chunks: Buffer[], opts = {}): { frames: Frame[]; error?: SpdyProtocolError } {
  const frames: Frame[] = [];
  const p = new FrameParser((f) => {
    checkFrame(f);
    frames.push(f);
  }, opts);
  for (const c of chunks) {
    try {
      p.push(c);
    } catch (err) {
      if (!(err instanceof SpdyProtocolError))
        throw new Error(`untyped error from push: ${String(err)}`, { cause: err });
      assert.throws(
        () => p.push(Buffer.from([0])),
        (e: unknown) => e === err,
      );
      return { frames, error: err };
    }
  }
  return { frames };
}

const cuts = fc.array(fc.nat(), { maxLength: 6 });

describe("SPDY header blocks (fuzz)", () => {
  it("encodeHeaderBlock / decodeHeaderBlock round-trip", () => {
    fc.assert(
      fc.property(headers, (h) => {
        assert.deepEqual({ ...decodeHeaderBlock(encodeHeaderBlock(h)) }, lowered(h));
      }),
      fuzzParams(),
    );
  });

  it("decodeHeaderBlock on arbitrary and mutated blocks: headers or HeaderBlockError", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
          mutatedBytes(headers.map(encodeHeaderBlock)),
        ),
        (b) => {
          const h = typedOutcome(() => decodeHeaderBlock(b), HeaderBlockError);
          if (h) for (const [k, v] of Object.entries(h)) assert.ok(k !== "" && typeof v === "string");
        },
      ),
      fuzzParams(),
    );
  });

  it("a compressor's blocks decompress to the same headers, in order", () => {
    fc.assert(
      fc.property(fc.array(headers, { minLength: 1, maxLength: 5 }), (list) => {
        const c = new HeaderCompressor();
        const d = new HeaderDecompressor();
        for (const h of list) assert.deepEqual({ ...d.decompress(c.compress(h)) }, lowered(h));
      }),
      fuzzParams(),
    );
  });

  it("mutated compressed blocks: headers or HeaderBlockError, and a failed context stays failed", () => {
    fc.assert(
      fc.property(
        fc.array(headers, { minLength: 1, maxLength: 3 }),
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 3 }),
        (list, which, flips) => {
          const c = new HeaderCompressor();
          const blocks = list.map((h) => c.compress(h));
          const i = which % blocks.length;
          const b = Buffer.from(blocks[i]!);
          for (const [at, bit] of flips) b[at % b.length]! ^= 1 << bit;
          blocks[i] = b;
          const d = new HeaderDecompressor();
          let failed = false;
          for (const block of blocks) {
            if (failed) {
              assert.throws(() => d.decompress(block), HeaderBlockError);
              continue;
            }
            failed = typedOutcome(() => d.decompress(block), HeaderBlockError) === undefined;
          }
        },
      ),
      fuzzParams(),
    );
  });

  it("a block inflating past the limit fails fast, without the whole output", () => {
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { finishFlush: 2 }); // Z_SYNC_FLUSH
    const head = Buffer.from([0x78, 0x01]); // no preset dictionary: allowed, then raw inflate
    const d = new HeaderDecompressor({ maxHeaderBlockSize: 1024 * 1024 });
    const start = performance.now();
    assert.throws(() => d.decompress(Buffer.concat([head, bomb])), HeaderBlockError);
    assert.ok(performance.now() - start < 2000);
  });
});

describe("SPDY frame parser (fuzz)", () => {
  it("encoded frames parse back to the same, however the bytes are chunked", () => {
    fc.assert(
      fc.property(fc.array(frame, { minLength: 1, maxLength: 6 }), cuts, (frames, at) => {
        const { frames: got, error } = parseChunks(chunksOf(encodeAll(frames), at));
        assert.equal(error, undefined);
        assert.deepEqual(got.map(plain), frames.map(expected));
      }),
      fuzzParams(),
    );
  });

  it("arbitrary bytes: frames or a SpdyProtocolError that sticks", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), cuts, (bytes, at) => {
        parseChunks(chunksOf(Buffer.from(bytes), at));
      }),
      fuzzParams(),
    );
  });

  it("mutated frame streams: frames or a SpdyProtocolError that sticks", () => {
    fc.assert(
      fc.property(
        mutatedBytes(fc.array(frame, { minLength: 1, maxLength: 5 }).map(encodeAll)),
        cuts,
        fc.option(fc.integer({ min: 0, max: 64 })),
        (bytes, at, maxFrameSize) => {
          parseChunks(chunksOf(bytes, at), maxFrameSize === null ? {} : { maxFrameSize });
        },
      ),
      fuzzParams(),
    );
  });

  it("a huge announced length is refused from the header alone", () => {
    const header = Buffer.from([0x80, 0x03, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff]);
    const { error, frames } = parseChunks([header], { maxFrameSize: 1024 });
    assert.ok(error instanceof SpdyProtocolError);
    assert.deepEqual(frames, []);
  });
});
