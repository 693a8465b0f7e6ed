import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { RecordStore } from "./record-store.js";

test("init loads every record, reports unreadable ones and removes leftover temp files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-records-"));
  try {
    const ids = Array.from({ length: 100 }, (_, i) => `id${String(i).padStart(3, "0")}`);
    for (const id of ids) await writeFile(join(dir, `${id}.json`), JSON.stringify({ id, name: `n-${id}` }));
    await writeFile(join(dir, "torn.json"), '{"id": "torn", "na');
    await writeFile(join(dir, "id007.json.tmp-123"), "half a write");
    const store = new RecordStore<{ id: string; name: string }>(dir, "pod");
    assert.deepEqual(await store.init(), ["torn.json"]);
    assert.deepEqual(
      store
        .list()
        .map((r) => r.id)
        .sort(),
      ids,
    );
    assert.equal(store.get("id042")?.name, "n-id042");
    assert.ok(!(await readdir(dir)).some((f) => f.includes(".tmp-")));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
