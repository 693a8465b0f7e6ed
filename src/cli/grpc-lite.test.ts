import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { decodeStrings, unaryCall } from "./grpc-lite.js";
import { HpackDecoder, huffmanDecode } from "./hpack.js";

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ""), "hex");

describe("HPACK decoder (RFC 7541 Appendix C)", () => {
  it("decodes Huffman strings", () => {
    assert.equal(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")).toString(), "www.example.com");
    assert.equal(huffmanDecode(hex("a8eb 1064 9cbf")).toString(), "no-cache");
    assert.equal(huffmanDecode(hex("6402")).toString(), "302");
    assert.throws(() => huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f400")), /padding/);
  });

  it("keeps the dynamic table across a connection's blocks (C.4, Huffman requests)", () => {
    const d = new HpackDecoder();
    assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ]);
    assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")), [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ]);
    assert.deepEqual(d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")), [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ]);
  });

  it("evicts from a small table (C.5: 256 bytes)", () => {
    const d = new HpackDecoder(256);
    const first = hex(
      "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    );
    assert.equal(d.decode(first)[0]![1], "302");
    // Second response: ":status 307" pushes ":status 302" out; index 63..65 are the rest.
    assert.deepEqual(d.decode(hex("4803 3330 37c1 c0bf")), [
      [":status", "307"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["location", "https://www.example.com"],
    ]);
    assert.throws(() => d.decode(hex("ff00")), /no table entry/);
    assert.throws(() => d.decode(hex("4003 6162")), /past the block's end/);
  });
});

describe("lite gRPC client against grpc-js", () => {
  let dir = "";
  let server: grpc.Server;
  let endpoint = "";
  const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
  const method = (path: string) => ({ path, requestStream: false, responseStream: false, ...rawCodec() });
  const rawCodec = () => ({
    requestSerialize: raw.serialize,
    requestDeserialize: raw.deserialize,
    responseSerialize: raw.serialize,
    responseDeserialize: raw.deserialize,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-lite-"));
    server = new grpc.Server();
    server.addService(
      {
        Echo: method("/t.T/Echo"),
        Fail: method("/t.T/Fail"),
        Big: method("/t.T/Big"),
      } as grpc.ServiceDefinition,
      {
        Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
          cb(null, call.request),
        Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
          cb({ code: grpc.status.NOT_FOUND, details: 'container "x/ü" not found: 100%' }),
        Big: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
          cb(null, Buffer.alloc(300_000, 7)),
      },
    );
    endpoint = `unix://${join(dir, "s.sock")}`;
    await new Promise<void>((res, rej) =>
      server.bindAsync(endpoint, grpc.ServerCredentials.createInsecure(), (err) => (err ? rej(err) : res())),
    );
  });

  after(async () => {
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it("sends a message and reads the reply, twice over fresh connections", async () => {
    for (const text of ["v1", "x".repeat(1000)]) {
      const body = Buffer.concat([
        Buffer.from([0x0a]),
        Buffer.from([...varint(text.length)]),
        Buffer.from(text),
      ]);
      const reply = await unaryCall(endpoint, "/t.T/Echo", body, 10_000);
      assert.equal(decodeStrings(reply).get(1), text);
    }
  });

  it("reads a reply past the 64 KiB flow-control window", async () => {
    const reply = await unaryCall(endpoint, "/t.T/Big", Buffer.alloc(0), 10_000);
    assert.equal(reply.length, 300_000);
    assert.ok(reply.every((b) => b === 7));
  });

  it("passes the status code and the (percent-decoded) message on", async () => {
    await assert.rejects(unaryCall(endpoint, "/t.T/Fail", Buffer.alloc(0), 10_000), {
      code: 5,
      details: 'container "x/ü" not found: 100%',
    });
    await assert.rejects(unaryCall(endpoint, "/t.T/Nope", Buffer.alloc(0), 10_000), { code: 12 });
  });

  it("names a socket nobody listens on", async () => {
    await assert.rejects(
      unaryCall(`unix://${join(dir, "none.sock")}`, "/t.T/Echo", Buffer.alloc(0), 10_000),
      {
        code: 14,
        details: /No connection established.*ENOENT/,
      },
    );
  });
});

function* varint(n: number): Generator<number> {
  while (n >= 0x80) {
    yield (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  yield n;
}
