import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type FrameError, lengthPrefixed, MessageDecoder } from "./framing.js";
import { encodeGrpcMessage, parseGrpcTimeout } from "./status.js";

describe("MessageDecoder", () => {
  const messages = [Buffer.from("first"), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from("last")];
  const wire = Buffer.concat(messages.map(lengthPrefixed));

  it("cuts messages out of chunks split anywhere", () => {
    for (const size of [1, 3, 5, 6, 4096, wire.length]) {
      const d = new MessageDecoder(1 << 20);
      const got: Buffer[] = [];
      for (let i = 0; i < wire.length; i += size) got.push(...d.push(wire.subarray(i, i + size)));
      assert.deepEqual(got, messages, `chunks of ${size}`);
      assert.equal(d.partial, false);
    }
  });

  it("knows a stream that stopped inside a message", () => {
    const d = new MessageDecoder(1 << 20);
    assert.deepEqual(d.push(wire.subarray(0, 8)), []);
    assert.equal(d.partial, true);
  });

  it("refuses a message over the limit from its prefix alone, and a compressed one", () => {
    const d = new MessageDecoder(100);
    assert.throws(
      () => d.push(lengthPrefixed(Buffer.alloc(101)).subarray(0, 5)),
      (e: FrameError) => e.kind === "too-large",
    );
    const compressed = lengthPrefixed(Buffer.from("x"));
    compressed[0] = 1;
    assert.throws(
      () => new MessageDecoder(100).push(compressed),
      (e: FrameError) => e.kind === "compressed",
    );
  });
});

describe("grpc-message and grpc-timeout", () => {
  it("percent-encodes what is not printable ASCII, and %", () => {
    assert.equal(encodeGrpcMessage("plain text: ok"), "plain text: ok");
    assert.equal(encodeGrpcMessage("100% ü\n"), "100%25 %C3%BC%0A");
    assert.equal(decodeURIComponent(encodeGrpcMessage("ünï ✓ 5%")), "ünï ✓ 5%");
  });

  it("reads every unit, and nothing else", () => {
    assert.equal(parseGrpcTimeout(undefined), Number.POSITIVE_INFINITY);
    assert.equal(parseGrpcTimeout("2H"), 7_200_000);
    assert.equal(parseGrpcTimeout("3M"), 180_000);
    assert.equal(parseGrpcTimeout("5S"), 5000);
    assert.equal(parseGrpcTimeout("250m"), 250);
    assert.equal(parseGrpcTimeout("1500u"), 1.5);
    assert.equal(parseGrpcTimeout("2000000n"), 2);
    for (const bad of ["", "5", "S", "123456789S", "1.5S", "5s", "-1S"])
      assert.equal(parseGrpcTimeout(bad), undefined, bad);
  });
});
