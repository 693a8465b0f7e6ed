import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CheckpointStore } from "./checkpoint.js";

describe("CheckpointStore", () => {
  it("writes only when changed, atomically, and loads what it wrote", async () => {
    const dir = await mkdtemp(join(tmpdir(), "collector-cp-"));
    try {
      const a = new CheckpointStore(dir);
      await a.load();
      await a.flush();
      assert.deepEqual(await readdir(dir), []);
      const position = { path: "/x.log", dev: 1, ino: 2, fp: "ab", fpLen: 2, offset: 10 };
      a.set("p/stdio/c1", { position });
      a.set("p/stdio/c2", { done: true });
      await a.flush();
      assert.deepEqual(await readdir(dir), ["checkpoints.json"]);
      const b = new CheckpointStore(dir);
      await b.load();
      assert.deepEqual(b.get("p/stdio/c1")?.position, position);
      assert.equal(b.get("p/stdio/c2")?.done, true);
      b.delete("p/stdio/c2");
      await b.stop();
      assert.deepEqual(Object.keys(JSON.parse(await readFile(a.file, "utf8")).sources), ["p/stdio/c1"]);
      await writeFile(a.file, '{"version":9}');
      await assert.rejects(new CheckpointStore(dir).load(), /not a berth-collector checkpoint/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
