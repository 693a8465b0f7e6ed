import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import fc from "fast-check";
import { chunksOf, fuzzParams, mutatedString, withinMs } from "../common/fuzz-testutil.js";
import { encodeResize, parseResize, type TerminalSize } from "./remotecommand.js";

async function sizes(chunks: Buffer[]): Promise<TerminalSize[]> {
  const got: TerminalSize[] = [];
  await withinMs(
    (async () => {
      for await (const s of parseResize(Readable.from(chunks, { objectMode: false }))) got.push(s);
    })(),
    5000,
    "parseResize",
  );
  return got;
}

const size = fc.record({ width: fc.nat(0xffff), height: fc.nat(0xffff) }, { noNullPrototype: true });
const cuts = fc.array(fc.nat(), { maxLength: 8 });

describe("parseResize (fuzz)", () => {
  it("concatenated resize messages, however chunked, yield the same sizes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(size, { maxLength: 6 }), cuts, async (list, at) => {
        const bytes = Buffer.from(list.map(encodeResize).join(""));
        assert.deepEqual(await sizes(chunksOf(bytes, at)), list);
      }),
      fuzzParams(),
    );
  });

  it("arbitrary and mutated streams: ends, and yields only uint16 sizes", async () => {
    const valid = fc.array(size, { maxLength: 4 }).map((l) => l.map(encodeResize).join(""));
    const jsonish = fc.string({
      unit: fc.constantFrom(...'{}[]":,\\ 0159-.eWidthHg'),
      minLength: 1,
      maxLength: 4,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ unit: "binary" }), mutatedString(valid, jsonish), fc.json()),
        cuts,
        async (text, at) => {
          for (const s of await sizes(chunksOf(Buffer.from(text), at))) {
            for (const n of [s.width, s.height])
              assert.ok(Number.isInteger(n) && n >= 0 && n <= 0xffff, String(n));
          }
        },
      ),
      fuzzParams(),
    );
  });

  it("an object trickling in a byte at a time costs linear time", async () => {
    const text = `{"Width":"${"x".repeat(60_000)}`;
    const start = performance.now();
    assert.deepEqual(await sizes(chunksOf(Buffer.from(text), [...Array(text.length).keys()])), []);
    assert.ok(performance.now() - start < 3000, `${Math.round(performance.now() - start)} ms`);
  });

  it("skips sizes a uint16 cannot hold, and non-numbers", async () => {
    const text =
      '{"Width":[80],"Height":24}{"Width":70000,"Height":5}{"Width":1e10,"Height":1}{"Width":"80","Height":2}{"Width":3,"Height":4}';
    assert.deepEqual(await sizes([Buffer.from(text)]), [{ width: 3, height: 4 }]);
  });
});
