import assert from "node:assert/strict";
import {
  appendFile,
  copyFile,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  truncate,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { DEFAULT_TAIL_OPTIONS, FileTail, type TailOptions } from "./file-tail.js";
import { decodeRawLine } from "./line-format.js";

const OPTS: TailOptions = {
  ...DEFAULT_TAIL_OPTIONS,
  decode: decodeRawLine,
  rotationGraceMs: 0,
  chunkBytes: 64,
};
const lines = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `line-${from + i}\n`).join("");

/** Reads everything available now, acking each batch. */
async function drain(t: FileTail, final = false): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const b = await t.next(final);
    if (!b) return out;
    out.push(...b.records.map((r) => r.fields["content"]!));
    await t.ack(b);
  }
}
const seq = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line-${from + i}`);

describe("FileTail", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "collector-tail-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("waits for a file that appears later, then follows it as it grows", async () => {
    const p = join(dir, "later.log");
    const t = new FileTail(p, OPTS);
    await t.open();
    assert.deepEqual(await drain(t), []);
    await writeFile(p, lines(0, 10));
    assert.deepEqual(await drain(t), seq(0, 10));
    await appendFile(p, lines(10, 20));
    assert.deepEqual(await drain(t), seq(10, 20));
    await t.close();
  });

  it("rename-and-create: finishes the renamed file, then reads the new one from its start", async () => {
    const p = join(dir, "rot.log");
    await writeFile(p, lines(0, 5));
    const t = new FileTail(p, OPTS);
    await t.open();
    assert.deepEqual(await drain(t), seq(0, 5));
    await appendFile(p, lines(5, 8)); // written before the rename, not read yet
    await rename(p, `${p}.20261206-000001`);
    await appendFile(`${p}.20261206-000001`, lines(8, 10)); // the writer had not reopened yet
    await writeFile(p, lines(10, 15));
    assert.deepEqual(await drain(t), seq(5, 15));
    await t.close();
  });

  it("two rotations between looks: the middle file is read too, in order", async () => {
    const p = join(dir, "rot2.log");
    await writeFile(p, lines(0, 3));
    const t = new FileTail(p, OPTS);
    await t.open();
    assert.deepEqual(await drain(t), seq(0, 3));
    await appendFile(p, lines(3, 5));
    await rename(p, `${p}.1`);
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(p, lines(5, 8));
    await rename(p, `${p}.2`);
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(p, lines(8, 10));
    assert.deepEqual(await drain(t), seq(3, 10));
    await t.close();
  });

  it("fromOldestRotated: a log rotated before it was first opened is read from its first file", async () => {
    const p = join(dir, "early.log");
    await writeFile(`${p}.20261206-000001`, lines(0, 3));
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(`${p}.20261206-000002`, lines(3, 6));
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(p, lines(6, 8));
    const t = new FileTail(p, { ...OPTS, fromOldestRotated: true });
    await t.open();
    assert.deepEqual(await drain(t), seq(0, 8));
    await t.close();
  });

  it("copytruncate: a shrunk file is read again from its start", async () => {
    const p = join(dir, "trunc.log");
    await writeFile(p, lines(0, 10));
    const t = new FileTail(p, OPTS);
    await t.open();
    assert.deepEqual(await drain(t), seq(0, 10));
    await truncate(p, 0);
    await appendFile(p, lines(10, 12));
    assert.deepEqual(await drain(t), seq(10, 12));
    await t.close();
  });

  it("copytruncate with lines not read yet: they are read from the copy, then the file from 0", async () => {
    const p = join(dir, "copytrunc.log");
    await writeFile(p, lines(0, 10));
    const t = new FileTail(p, OPTS);
    await t.open();
    assert.deepEqual(await drain(t), seq(0, 10));
    await appendFile(p, lines(10, 20)); // not read before logrotate copies and truncates
    await copyFile(p, `${p}.1`);
    await truncate(p, 0);
    await appendFile(p, lines(20, 25));
    assert.deepEqual(await drain(t), seq(10, 25));
    await t.close();
  });

  it("copytruncate during a write burst: every line once, in order", async () => {
    const p = join(dir, "burst.log");
    await writeFile(p, "");
    const t = new FileTail(p, { ...OPTS, chunkBytes: 256 });
    await t.open();
    const got: string[] = [];
    let writing = true;
    const reader = (async () => {
      for (;;) {
        const final = !writing;
        const b = await t.next(final);
        if (!b && final) return;
        if (b) {
          for (const r of b.records) got.push(r.fields["content"]!);
          await t.ack(b);
        }
        // A reader slower than the writer: there is unread data at each rotation.
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    for (let i = 0; i < 3000; i += 10) {
      await appendFile(p, lines(i, i + 10));
      // logrotate's copytruncate (rotate 2), twice during the burst: the reader is still
      // in the first copy when the second one is made.
      if (i === 1000 || i === 2000) {
        if (i === 2000) await rename(`${p}.1`, `${p}.2`);
        await copyFile(p, `${p}.1`);
        await truncate(p, 0);
      }
    }
    writing = false;
    await reader;
    await t.close();
    assert.deepEqual(got, seq(0, 3000));
  });

  it("json-file rotation during a burst (x.log -> .1 -> .2 ...), opened mid-burst: every line once, in order", async () => {
    const p = join(dir, "json-burst.log");
    await writeFile(p, "");
    // Docker's json-file rotation (no max-file here, so nothing is deleted), in a thread of its
    // own so renames land between the reader's readdir, stat and open, as dockerd's do.
    const writer = new Worker(
      `const { appendFileSync, renameSync, writeFileSync } = require("node:fs");
       const { workerData: { p, total } } = require("node:worker_threads");
       let rotations = 0;
       for (let i = 0; i < total; i += 10) {
         let chunk = "";
         for (let j = i; j < i + 10; j++) chunk += "line-" + j + "\\n";
         appendFileSync(p, chunk);
         if (i % 100 === 90) {
           for (let k = rotations; k >= 1; k--) renameSync(p + "." + k, p + "." + (k + 1));
           renameSync(p, p + ".1");
           writeFileSync(p, "");
           rotations++;
         }
       }`,
      { eval: true, workerData: { p, total: 6000 } },
    );
    let writing = true;
    const done = new Promise<void>((resolve, reject) => {
      writer.once("error", reject);
      writer.once("exit", () => {
        writing = false;
        resolve();
      });
    });
    // Opened once the log has rotated, while the writer goes on rotating.
    while (writing && !(await readdir(dir)).includes("json-burst.log.2"))
      await new Promise((r) => setTimeout(r, 1));
    const t = new FileTail(p, { ...OPTS, chunkBytes: 256, fromOldestRotated: true });
    await t.open();
    const got: string[] = [];
    for (;;) {
      const final = !writing;
      const b = await t.next(final);
      if (!b && final) break;
      if (b) {
        for (const r of b.records) got.push(r.fields["content"]!);
        await t.ack(b);
      } else await new Promise((r) => setTimeout(r, 1));
    }
    await done;
    await t.close();
    assert.deepEqual(got, seq(0, 6000));
  });

  it("tailBytes: with no position, starts at the first line within the last bytes", async () => {
    const p = join(dir, "tail.log");
    await writeFile(p, lines(0, 100));
    const text = await readFile(p, "utf8");
    const t = new FileTail(p, OPTS);
    await t.open(undefined, 50);
    const from = text.slice(0, text.indexOf("\n", text.length - 51) + 1).split("\n").length - 1;
    assert.ok(from > 90 && from < 100);
    assert.deepEqual(await drain(t), seq(from, 100));
    await t.close();
    const small = new FileTail(p, OPTS);
    await small.open(undefined, 1 << 20); // a file smaller than the tail is read whole
    assert.deepEqual(await drain(small), seq(0, 100));
    await small.close();
  });

  it("truncated and rewritten past the old offset: the changed first bytes tell", async () => {
    const p = join(dir, "trunc2.log");
    await writeFile(p, lines(0, 3));
    const t = new FileTail(p, OPTS);
    await t.open();
    assert.deepEqual(await drain(t), seq(0, 3));
    await writeFile(p, lines(100, 110));
    assert.deepEqual(await drain(t), seq(100, 110));
    await t.close();
  });

  it("restarts from a committed position, also when the file was rotated meanwhile", async () => {
    const p = join(dir, "restart.log");
    await writeFile(p, lines(0, 10));
    const t = new FileTail(p, OPTS);
    await t.open();
    const b = await t.next();
    assert.ok(b);
    await t.ack(b);
    const pos = t.position()!;
    const got = b.records.length;
    await t.close();
    await rename(p, `${p}.20261206-000002`);
    await writeFile(p, lines(10, 12));
    const t2 = new FileTail(p, OPTS);
    await t2.open(pos);
    assert.deepEqual(await drain(t2), seq(got, 12));
    await t2.close();
  });

  it("an unknown position (file replaced) starts the path from 0; final closes an open last line", async () => {
    const p = join(dir, "gone.log");
    await writeFile(p, "a\nb");
    const t = new FileTail(p, OPTS);
    await t.open({ path: p, dev: 1, ino: 1, fp: "x", fpLen: 1, offset: 99 });
    assert.deepEqual(await drain(t), ["a"]);
    assert.deepEqual(await drain(t, true), ["b"]);
    await t.close();
  });
});
