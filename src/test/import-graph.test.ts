/**
 * The folder layout is the architecture: imports go downward only. Reads the shipped sources
 * (not tests or test support) and checks the arrows between top-level folders of src/.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, normalize, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src");

/** The folders of Berth's own domain: none of them may reach up into the CRI layer or the seam. */
const DOMAIN = [
  "api",
  "common",
  "config",
  "container",
  "docker",
  "events",
  "image",
  "metrics",
  "network",
  "pod",
  "runtime",
  "runtime-spec",
  "stats",
  "store",
  "streaming",
];
const ABOVE_DOMAIN = ["cri", "backend", "daemon", "cli", "bin", "bench", "tools", "test"];

async function edges(): Promise<Array<{ file: string; from: string; to: string }>> {
  const out: Array<{ file: string; from: string; to: string }> = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (p !== join(SRC, "test") && p !== join(SRC, "api", "gen")) await walk(p);
        continue;
      }
      if (!e.name.endsWith(".ts") || e.name.endsWith(".test.ts") || /testutil|fixture/.test(e.name)) continue;
      const from = relative(SRC, p).split("/")[0] ?? "";
      for (const m of (await readFile(p, "utf8")).matchAll(/from "(\.[^"]+)"/g)) {
        const target = relative(SRC, normalize(join(dirname(p), m[1] ?? "")));
        const to = target.split("/")[0] ?? "";
        if (to !== from) out.push({ file: relative(SRC, p), from, to });
      }
    }
  };
  await walk(SRC);
  return out;
}

describe("import graph", () => {
  it("no domain folder imports the CRI layer, the backends, the daemon or the tools", async () => {
    const bad = (await edges()).filter((e) => DOMAIN.includes(e.from) && ABOVE_DOMAIN.includes(e.to));
    assert.deepEqual(bad, []);
  });

  it("common/ and store/ import nothing of Berth's above them; api/ only common/", async () => {
    const all = await edges();
    assert.deepEqual(
      all.filter((e) => e.from === "common"),
      [],
    );
    assert.deepEqual(
      all.filter((e) => e.from === "store" && e.to !== "common"),
      [],
    );
    assert.deepEqual(
      all.filter((e) => e.from === "api" && e.to !== "common"),
      [],
    );
  });

  it("the CRI handlers reach the domain only through the backend seam", async () => {
    const allowed = ["api", "backend", "common", "config", "streaming"];
    const bad = (await edges()).filter((e) => e.from === "cri" && !allowed.includes(e.to));
    assert.deepEqual(bad, []);
    const seam = (await edges()).filter(
      (e) => e.file === "backend/backend.ts" && !["api", "common", "streaming"].includes(e.to),
    );
    assert.deepEqual(seam, []);
  });
});
