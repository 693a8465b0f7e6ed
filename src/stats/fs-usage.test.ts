import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { link, lstat, mkdir, mkdtemp, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { DirUsageCache, dirUsage } from "./fs-usage.js";

const run = promisify(execFile);

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-fsusage-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function du(path: string, ...flags: string[]): Promise<bigint> {
  const { stdout } = await run("du", ["-s", ...flags, path]);
  return BigInt(stdout.split(/\s+/)[0] ?? "x");
}

describe("dirUsage", () => {
  it("counts blocks and inodes once per hardlinked inode, without following symlinks", async () => {
    const root = join(dir, "tree");
    await mkdir(join(root, "sub"), { recursive: true });
    await mkdir(join(root, "empty"));
    await writeFile(join(root, "a.bin"), Buffer.alloc(256 * 1024, 7));
    await link(join(root, "a.bin"), join(root, "sub", "hard.bin"));
    await writeFile(join(root, "sub", "c"), "x");
    await symlink("/usr", join(root, "usr-link")); // a big tree that must not be walked
    await symlink("sub", join(root, "dir-link"));

    const u = await dirUsage(root);
    // root, empty, sub, a.bin (= sub/hard.bin), sub/c, usr-link, dir-link
    assert.equal(u.inodes, 7n);
    assert.equal(u.bytes, await du(root, "-B1"), "matches du's allocated bytes");
    assert.equal(u.inodes, await du(root, "--inodes"), "matches du's inode count");
    const a = await lstat(join(root, "a.bin"), { bigint: true });
    assert.ok(a.blocks * 512n >= 256n * 1024n);
    assert.ok(u.bytes < 2n * a.blocks * 512n, "the hardlinked file is counted once");

    const narrow = await dirUsage(root, { concurrency: 1 });
    assert.deepEqual(narrow, u, "same result with a single outstanding call");
  });

  it("is zero for a missing directory and counts a lone file", async () => {
    assert.deepEqual(await dirUsage(join(dir, "nope")), { bytes: 0n, inodes: 0n });
    const f = join(dir, "lone");
    await writeFile(f, "hello");
    const u = await dirUsage(f);
    assert.equal(u.inodes, 1n);
  });

  it("tolerates files and directories vanishing mid-walk", async () => {
    const root = join(dir, "churn");
    await mkdir(root);
    let stop = false;
    const churn = (async () => {
      for (let i = 0; !stop; i++) {
        const d = join(root, `d${i % 20}`);
        await mkdir(d, { recursive: true });
        await writeFile(join(d, "f"), "data");
        await rm(join(root, `d${(i + 10) % 20}`), { recursive: true, force: true });
        await writeFile(join(root, `f${i % 50}`), "x").catch(() => {});
        await unlink(join(root, `f${(i + 25) % 50}`)).catch(() => {});
      }
    })();
    try {
      for (let i = 0; i < 30; i++) {
        const u = await dirUsage(root);
        assert.ok(u.inodes >= 1n);
      }
    } finally {
      stop = true;
      await churn;
    }
  });
});

describe("DirUsageCache", () => {
  it("reuses results within the ttl and shares an in-flight walk", async () => {
    let now = 0n;
    let walks = 0;
    const cache = new DirUsageCache({
      ttlNs: 10n,
      now: () => now,
      measure: async () => {
        walks++;
        await new Promise((r) => setTimeout(r, 10));
        return { bytes: BigInt(walks), inodes: 1n };
      },
    });
    const [x, y] = await Promise.all([cache.get("/d"), cache.get("/d")]);
    assert.equal(walks, 1);
    assert.deepEqual(x, { bytes: 1n, inodes: 1n, timestampNs: 0n });
    assert.equal(y, x);
    now = 9n;
    assert.equal((await cache.get("/d")).bytes, 1n, "fresh");
    now = 10n;
    assert.deepEqual(await cache.get("/d"), { bytes: 2n, inodes: 1n, timestampNs: 10n }, "expired");
    cache.forget("/d");
    assert.equal(cache.size, 0);
    assert.equal((await cache.get("/d")).bytes, 3n);
  });

  it("does not keep a walk that was forgotten while running", async () => {
    const cache = new DirUsageCache({ measure: async () => ({ bytes: 1n, inodes: 1n }) });
    const p = cache.get("/gone");
    cache.forget("/gone");
    await p;
    assert.equal(cache.size, 0);
  });

  it("walks real directories by default", async () => {
    const cache = new DirUsageCache();
    const u = await cache.get(join(dir, "tree"));
    assert.equal(u.inodes, 7n);
    assert.ok(u.timestampNs > 0n);
  });
});
