import assert from "node:assert/strict";
import { describe, it } from "node:test";
import zlib from "node:zlib";
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  type Frame,
  FrameEncoder,
  FrameParser,
  type OutgoingFrame,
  SpdyProtocolError,
} from "./frames.js";
import {
  adler32,
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderCompressor,
  HeaderDecompressor,
  headerValues,
  SPDY3_DICTIONARY,
  SPDY3_DICTIONARY_ID,
} from "./headers.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

function parseAll(bytes: Buffer, chunk = bytes.length, opts = {}): Frame[] {
  const frames: Frame[] = [];
  const p = new FrameParser((f) => frames.push(f), opts);
  for (let i = 0; i < bytes.length; i += chunk) p.push(bytes.subarray(i, i + chunk));
  assert.equal(p.pendingBytes, 0);
  return frames;
}

/** A reference zlib context like Go's zlib.Writer: one Deflate stream, Flush() = Z_SYNC_FLUSH. */
async function referenceCompress(blocks: Buffer[]): Promise<Buffer[]> {
  const d = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 });
  const out: Buffer[] = [];
  let acc: Buffer[] = [];
  d.on("data", (c: Buffer) => acc.push(c));
  for (const b of blocks) {
    await new Promise<void>((resolve) => {
      d.write(b);
      d.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve());
    });
    out.push(Buffer.concat(acc));
    acc = [];
  }
  d.close();
  return out;
}

/** A reference streaming Inflate (like Go's zlib reader kept for the connection). */
async function referenceDecompress(blocks: Buffer[]): Promise<Buffer[]> {
  const inf = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  const out: Buffer[] = [];
  let acc: Buffer[] = [];
  inf.on("data", (c: Buffer) => acc.push(c));
  for (const b of blocks) {
    await new Promise<void>((resolve, reject) => {
      inf.once("error", reject);
      inf.write(b);
      inf.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        inf.off("error", reject);
        resolve();
      });
    });
    out.push(Buffer.concat(acc));
    acc = [];
  }
  inf.close();
  return out;
}

describe("SPDY/3 dictionary and header blocks", () => {
  it("has the exact SPDY/3 dictionary", () => {
    assert.equal(SPDY3_DICTIONARY.length, 1423);
    assert.equal(adler32(SPDY3_DICTIONARY), 0xe3c6a7c2);
    assert.equal(SPDY3_DICTIONARY_ID, 0xe3c6a7c2);
    assert.equal(SPDY3_DICTIONARY.subarray(0, 11).toString("latin1"), "\0\0\0\x07options");
    assert.equal(SPDY3_DICTIONARY.subarray(-6).toString("latin1"), "enq=0.");
  });

  it("adler32 matches zlib's (dictionary id in a zlib header)", () => {
    const data = Buffer.from(`${"x".repeat(10000)}abc`);
    const z = zlib.deflateSync(Buffer.from("q"), { dictionary: data });
    assert.equal(z.readUInt32BE(2), adler32(data));
  });

  it("round-trips name/value blocks, lowercasing and joining multi-values with NUL", () => {
    const block = encodeHeaderBlock({ StreamType: "stdout", port: 8080, multi: ["a", "b"] });
    const h = decodeHeaderBlock(block);
    assert.deepEqual({ ...h }, { streamtype: "stdout", port: "8080", multi: "a\0b" });
    assert.deepEqual(headerValues(h, "multi"), ["a", "b"]);
    assert.deepEqual(headerValues(h, "missing"), []);
    assert.equal(block.readUInt32BE(0), 3);
    assert.equal(block.readUInt32BE(4), "streamtype".length);
  });

  it("rejects truncated, trailing and duplicate blocks", () => {
    const block = encodeHeaderBlock({ a: "1", b: "2" });
    assert.throws(() => decodeHeaderBlock(block.subarray(0, block.length - 1)), /truncated/);
    assert.throws(() => decodeHeaderBlock(Buffer.concat([block, Buffer.from([0])])), /trailing/);
    const dup = Buffer.concat([hex("00000002"), block.subarray(4, 14), block.subarray(4, 14)]);
    assert.throws(() => decodeHeaderBlock(dup), /duplicate/);
    const huge = hex("00000001 7fffffff");
    assert.throws(() => decodeHeaderBlock(huge), /truncated/);
  });

  it("decodes many consecutive blocks produced by a Go-style single zlib stream", async () => {
    const headers = Array.from({ length: 300 }, (_, i) => ({
      streamtype: ["stdin", "stdout", "stderr", "error", "resize"][i % 5]!,
      requestid: String(i),
      port: String(1000 + i),
      ...(i % 50 === 7 ? { big: "y".repeat(70_000) + i } : {}),
    }));
    const compressed = await referenceCompress(headers.map((h) => encodeHeaderBlock(h)));
    assert.equal(compressed[0]!.readUInt32BE(2), SPDY3_DICTIONARY_ID); // 78 f9 e3c6a7c2 like Go
    assert.equal(compressed[0]![0], 0x78);
    const dec = new HeaderDecompressor();
    for (let i = 0; i < headers.length; i++) {
      assert.deepEqual({ ...dec.decompress(compressed[i]!) }, headers[i]);
    }
  });

  it("compresses consecutive blocks that a single streaming inflater (Go-style) decodes", async () => {
    const comp = new HeaderCompressor();
    const blocks = Array.from({ length: 300 }, (_, i) =>
      encodeHeaderBlock({
        streamtype: "stdout",
        requestid: String(i),
        z: i % 40 === 3 ? "q".repeat(50_000) : "",
      }),
    );
    const wire = blocks.map((b) => comp.compressBlock(b));
    assert.equal(wire[0]!.subarray(0, 6).toString("hex"), "78f9e3c6a7c2");
    for (const w of wire) assert.equal(w.subarray(-4).toString("hex"), "0000ffff");
    assert.ok(wire[5]!.length < blocks[5]!.length, "later blocks benefit from the shared context");
    const back = await referenceDecompress(wire);
    for (let i = 0; i < blocks.length; i++) assert.ok(back[i]!.equals(blocks[i]!), `block ${i}`);
    // and our own decompressor agrees
    const dec = new HeaderDecompressor();
    for (let i = 0; i < blocks.length; i++) assert.ok(dec.decompressBlock(wire[i]!).equals(blocks[i]!));
  });

  it("rejects a wrong dictionary, garbage and zlib bombs", () => {
    const other = zlib.deflateSync(encodeHeaderBlock({ a: "b" }), {
      dictionary: Buffer.from("nope"),
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    assert.throws(() => new HeaderDecompressor().decompressBlock(other), /unknown zlib dictionary/);
    assert.throws(() => new HeaderDecompressor().decompressBlock(hex("0102")), /invalid zlib header/);
    const comp = new HeaderCompressor();
    const bomb = comp.compress({ a: "z".repeat(2_000_000) });
    assert.throws(() => new HeaderDecompressor().decompress(bomb), /decompression failed/);
    // a failed context stays failed
    const d = new HeaderDecompressor();
    assert.throws(() =>
      d.decompressBlock(Buffer.concat([comp.compress({ a: "1" }).subarray(0, 6), hex("ffffffff")])),
    );
    assert.throws(() => d.decompressBlock(new HeaderCompressor().compress({})), /broken/);
  });
});

describe("SPDY/3.1 frames", () => {
  // Wire captures of a real SPDY/3 stack (node-spdy's parser tests).
  it("parses SPDY/3 wire vectors from another implementation", () => {
    const syn = parseAll(
      hex(
        "800300010000002c0000000100000000000078f9e3c6a7c202e50e507ab442a45a77d7105006b32a4804974d8cfa00000000ffff",
      ),
    );
    assert.equal(syn.length, 1);
    const s = syn[0]!;
    assert.equal(s.type, "SYN_STREAM");
    if (s.type !== "SYN_STREAM") return;
    assert.equal(s.streamId, 1);
    assert.equal(s.flags, 0);
    assert.equal(s.headers[":method"], "GET");
    assert.equal(s.headers[":path"], "/");

    const emptyReply = parseAll(hex("80030002010000140000000178f9e3c6a7c202a6230600000000ffff"));
    assert.deepEqual(
      emptyReply.map((f) => ({ ...f, headers: { ...(f as { headers: object }).headers } })),
      [{ type: "SYN_REPLY", streamId: 1, flags: FLAG_FIN, headers: {} }],
    );

    const reply = parseAll(
      hex(
        "8003000200000057000000013830e3c6a7c2004300bcff00000003000000057468657265000000057468657265" +
          "000000073a73746174757300000006323030204f4b000000083a76657273696f6e00000008485454502f312e31000000ffff",
      ),
    );
    assert.equal(reply[0]?.type, "SYN_REPLY");
    if (reply[0]?.type === "SYN_REPLY") {
      assert.deepEqual(
        { ...reply[0].headers },
        { there: "there", ":status": "200 OK", ":version": "HTTP/1.1" },
      );
    }
    assert.deepEqual(parseAll(hex("000000010100001157726974696e6720746f2073747265616d")), [
      { type: "DATA", streamId: 1, flags: FLAG_FIN, data: Buffer.from("Writing to stream") },
    ]);
    assert.deepEqual(parseAll(hex("8003000300000008000000010000000b")), [
      { type: "RST_STREAM", streamId: 1, status: 11 },
    ]);
    assert.deepEqual(parseAll(hex("800300040000000c000000010100000700000100")), [
      { type: "SETTINGS", flags: 0, settings: [{ flags: 1, id: 7, value: 256 }] },
    ]);
    assert.deepEqual(parseAll(hex("800300060000000400000001")), [{ type: "PING", id: 1 }]);
    assert.deepEqual(parseAll(hex("80030007000000080000000100000002")), [
      { type: "GOAWAY", lastGoodStreamId: 1, status: 2 },
    ]);
  });

  const sample: OutgoingFrame[] = [
    {
      type: "SYN_STREAM",
      streamId: 1,
      associatedId: 0,
      priority: 0,
      flags: 0,
      headers: { streamtype: "error", requestid: "0" },
    },
    {
      type: "SYN_STREAM",
      streamId: 3,
      associatedId: 1,
      priority: 7,
      slot: 0,
      flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
      headers: { streamtype: "stdin", port: "80" },
    },
    { type: "SYN_REPLY", streamId: 1, flags: 0, headers: {} },
    { type: "SYN_REPLY", streamId: 3, flags: FLAG_FIN, headers: { a: ["1", "2"] } },
    { type: "HEADERS", streamId: 3, flags: FLAG_FIN, headers: { trailer: "x" } },
    { type: "DATA", streamId: 1, flags: 0, data: Buffer.from("hello") },
    { type: "DATA", streamId: 0x7fffffff, flags: FLAG_FIN, data: Buffer.alloc(0) },
    { type: "DATA", streamId: 5, flags: 0, data: Buffer.alloc(200_000, 7) },
    { type: "RST_STREAM", streamId: 3, status: 5 },
    {
      type: "SETTINGS",
      flags: 1,
      settings: [
        { id: 7, flags: 1, value: 65536 },
        { id: 4, flags: 0, value: 100 },
      ],
    },
    { type: "SETTINGS", flags: 0, settings: [] },
    { type: "PING", id: 0xfffffffe },
    { type: "GOAWAY", lastGoodStreamId: 3, status: 0 },
    { type: "WINDOW_UPDATE", streamId: 0, delta: 0x7fffffff },
    { type: "WINDOW_UPDATE", streamId: 1, delta: 1 },
  ];

  function expected(f: OutgoingFrame): Frame {
    switch (f.type) {
      case "SYN_STREAM":
        return {
          type: "SYN_STREAM",
          streamId: f.streamId,
          associatedId: f.associatedId ?? 0,
          priority: f.priority ?? 0,
          slot: f.slot ?? 0,
          flags: f.flags,
          headers: decodeHeaderBlock(encodeHeaderBlock(f.headers)),
        };
      case "SYN_REPLY":
      case "HEADERS":
        return { ...f, headers: decodeHeaderBlock(encodeHeaderBlock(f.headers)) } as Frame;
      default:
        return f;
    }
  }

  it("round-trips every frame type in one chunk and byte by byte", () => {
    for (const chunk of [Number.MAX_SAFE_INTEGER, 1, 7, 4096]) {
      const enc = new FrameEncoder();
      const wire = Buffer.concat(sample.map((f) => enc.encode(f)));
      const frames = parseAll(wire, chunk === Number.MAX_SAFE_INTEGER ? wire.length : chunk);
      assert.equal(frames.length, sample.length);
      frames.forEach((f, i) => {
        assert.deepEqual(
          JSON.parse(JSON.stringify(f)),
          JSON.parse(JSON.stringify(expected(sample[i]!))),
          `frame ${i} (chunk ${chunk})`,
        );
      });
    }
  });

  it("lays out control frames like spdystream's framer", () => {
    const enc = new FrameEncoder();
    assert.equal(
      enc.encode({ type: "RST_STREAM", streamId: 3, status: 5 }).toString("hex"),
      "80030003000000080000000300000005",
    );
    assert.equal(enc.encode({ type: "PING", id: 2 }).toString("hex"), "800300060000000400000002");
    assert.equal(
      enc.encode({ type: "GOAWAY", lastGoodStreamId: 5, status: 1 }).toString("hex"),
      "80030007000000080000000500000001",
    );
    assert.equal(
      enc.encode({ type: "WINDOW_UPDATE", streamId: 1, delta: 65536 }).toString("hex"),
      "80030009000000080000000100010000",
    );
    assert.equal(
      enc.encode({ type: "DATA", streamId: 1, flags: FLAG_FIN, data: Buffer.from("ab") }).toString("hex"),
      "00000001010000026162",
    );
    const syn = enc.encode({ type: "SYN_STREAM", streamId: 1, priority: 2, flags: FLAG_FIN, headers: {} });
    assert.equal(
      syn.subarray(0, 18).toString("hex"),
      `80030001010000${(10 + syn.length - 18).toString(16)}00000001000000004000`,
    );
    assert.equal(syn.subarray(18, 24).toString("hex"), "78f9e3c6a7c2");
  });

  it("skips unknown control frames", () => {
    const enc = new FrameEncoder();
    const wire = Buffer.concat([hex("8003000a00000003abcdef"), enc.encode({ type: "PING", id: 1 })]);
    assert.deepEqual(parseAll(wire, 1), [{ type: "PING", id: 1 }]);
  });

  function fails(bytes: Buffer, re: RegExp, opts = {}): void {
    for (const chunk of [bytes.length, 1]) {
      const p = new FrameParser(() => {}, opts);
      assert.throws(
        () => {
          for (let i = 0; i < bytes.length; i += chunk) p.push(bytes.subarray(i, i + chunk));
        },
        (err: unknown) => err instanceof SpdyProtocolError && re.test(err.message),
      );
      assert.throws(() => p.push(Buffer.from([0])), SpdyProtocolError); // stays failed
    }
  }

  it("reports malformed input as protocol errors", () => {
    fails(hex("800200060000000400000001"), /unsupported SPDY version 2/);
    fails(hex("000000010000ffff"), /exceeds the limit 1024/, { maxFrameSize: 1024 });
    fails(hex("8003000600ffffff"), /exceeds the limit 1000/, { maxFrameSize: 1000 });
    fails(hex("8003000300000004 00000001"), /RST_STREAM frame with invalid length/);
    fails(hex("80030003000000080000000100000000"), /status 0/);
    fails(hex("800300060000000800000001 00000001"), /PING frame with invalid length/);
    fails(hex("80030004000000080000000200000000"), /SETTINGS length/);
    fails(hex("0000000000000001 61"), /stream 0/);
    fails(hex("80030001000000040000000100000000"), /SYN_STREAM frame with invalid length/);
    const enc = new FrameEncoder();
    const syn = enc.encode({
      type: "SYN_STREAM",
      streamId: 1,
      flags: 0,
      headers: { streamtype: "stdout", x: "y".repeat(64) },
    });
    // Truncate the compressed block inside the frame (length field adjusted).
    const cut = Buffer.from(syn.subarray(0, syn.length - 12));
    cut.writeUIntBE(cut.length - 8, 5, 3);
    fails(cut, /SYN_STREAM: .*truncated/);
    fails(Buffer.concat([hex("8003000100000010 00000001 00000000 0000"), hex("ffffffffffff")]), /SYN_STREAM/);
  });
});
