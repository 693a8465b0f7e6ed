import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Gunzip } from "./gunzip.js";

async function gunzip(input: Buffer, chunkSize: number, stage = new Gunzip()): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunkSize) chunks.push(input.subarray(i, i + chunkSize));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    stage,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(Buffer.from(c));
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

describe("Gunzip (ISA-L)", () => {
  const random = randomBytes(200_000);
  // Compresses ~1000:1, so one input chunk fills many output buffers.
  const zeros = Buffer.alloc(3_000_000);

  it("inflates whatever the chunk boundaries", async () => {
    const gz = gzipSync(random);
    for (const size of [1, 7, 4096, 65_536, gz.length]) {
      assert.ok((await gunzip(gz, size)).equals(random), `chunks of ${size}`);
    }
    const gzZeros = gzipSync(zeros);
    assert.ok((await gunzip(gzZeros, gzZeros.length)).equals(zeros));
  });

  it("keeps up across many batches and jobs, and hashes both sides when asked", async () => {
    // Several MiB in socket-sized pieces: input waits while a job runs, jobs fill the output.
    const big = Buffer.concat([randomBytes(2_500_000), zeros, randomBytes(1_000_000)]);
    const gz = Buffer.concat([gzipSync(big.subarray(0, 3_000_000)), gzipSync(big.subarray(3_000_000))]);
    const seen: number[] = [];
    const stage = new Gunzip({ digests: true, onOutput: (n) => seen.push(n) });
    assert.ok((await gunzip(gz, 65_536, stage)).equals(big));
    assert.equal(stage.size, gz.length);
    assert.deepEqual(stage.digests, {
      input: `sha256:${createHash("sha256").update(gz).digest("hex")}`,
      output: `sha256:${createHash("sha256").update(big).digest("hex")}`,
    });
    assert.equal(
      seen.reduce((a, b) => a + b, 0),
      big.length,
    );
    assert.throws(() => new Gunzip().digests, /no digests/);
  });

  it("inflates no further ahead than its reader takes", async () => {
    // 16 MiB of zeros from ~16 KiB of gzip, read slowly: without back-pressure it would all be
    // queued at once.
    const gz = gzipSync(Buffer.alloc(16 * 1024 * 1024));
    const stage = new Gunzip();
    let most = 0;
    let total = 0;
    await pipeline(
      Readable.from([gz]),
      stage,
      new Writable({
        highWaterMark: 1,
        write(c: Buffer, _e, cb) {
          total += c.length;
          most = Math.max(most, stage.readableLength);
          setTimeout(cb, 1);
        },
      }),
    );
    assert.equal(total, 16 * 1024 * 1024);
    assert.ok(most <= 1024 * 1024, `queued ${most} bytes ahead of the reader`);
  });

  it("takes members one after another, split anywhere, and zero padding after them", async () => {
    const parts = [
      random.subarray(0, 10),
      Buffer.alloc(0),
      random.subarray(10, 150_000),
      zeros.subarray(0, 5),
    ];
    const gz = Buffer.concat([...parts.map((p) => gzipSync(p)), Buffer.alloc(100)]);
    const want = Buffer.concat(parts);
    for (const size of [1, 13, 1000, gz.length]) {
      assert.ok((await gunzip(gz, size)).equals(want), `chunks of ${size}`);
    }
  });

  it("refuses what is not whole, valid gzip", async () => {
    const gz = gzipSync(random);
    const badCrc = Buffer.from(gz);
    badCrc[badCrc.length - 6] = (badCrc[badCrc.length - 6] ?? 0) ^ 0xff;
    const garbageAfter = Buffer.concat([gz, Buffer.from("not gzip")]);
    for (const [what, input, message] of [
      ["truncated", gz.subarray(0, gz.length - 3), /unexpected end of file/],
      ["wrong CRC", badCrc, /incorrect data check/],
      ["not gzip", Buffer.from("plain text, not gzip at all"), /incorrect header check/],
      ["garbage after a member", garbageAfter, /incorrect header check|unexpected end of file/],
      ["empty", Buffer.alloc(0), /unexpected end of file/],
    ] as const) {
      await assert.rejects(gunzip(input, 4096), message, what);
    }
  });
});
