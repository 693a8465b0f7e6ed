import assert from "node:assert/strict";
import { test } from "node:test";
import { noteStreamed } from "./memory.js";

const MiB = 1024 * 1024;

test("noteStreamed frees dead Buffers once 4 MiB have streamed, before V8 would on its own", () => {
  // 16 MiB of Buffers with next to no other allocation: V8 itself would not collect them yet
  // (its young generation is nowhere near full, and it waits for 32 MiB of such Buffers).
  for (let i = 0; i < 256; i++) Buffer.allocUnsafe(64 * 1024).fill(1);
  const before = process.memoryUsage().arrayBuffers;
  assert.ok(before > 12 * MiB, `dead Buffers still held before: ${before}`);
  noteStreamed(3 * MiB);
  assert.ok(process.memoryUsage().arrayBuffers > 12 * MiB, "3 MiB streamed: no collection yet");
  noteStreamed(1 * MiB);
  const after = process.memoryUsage().arrayBuffers;
  assert.ok(after < 4 * MiB, `dead Buffers freed: ${before} -> ${after} bytes`);
});
