/**
 * Hostile layers: nothing may be created or modified outside the snapshot directory. Every test
 * unpacks into `base/root` and checks that `base` still holds only `root` and an untouched,
 * empty `outside`.
 */
import assert from "node:assert/strict";
import { lstat, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { isBerthError } from "../../common/errors.js";
import { native } from "../../common/native.js";
import { needsRoot } from "../../test/harness/skip.js";
import { applyLayer } from "./apply.js";
import { buildTar, chunked, type FixtureEntry, listTree, type Sandbox, sandbox } from "./tar-fixture.js";

/** Ownership, devices and trusted.* xattrs need root. */

describe("applyLayer on hostile layers", { skip: needsRoot() }, () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await sandbox();
  });
  afterEach(async () => {
    await box.cleanup();
  });

  const apply = async (entries: FixtureEntry[]) => applyLayer(chunked(await buildTar(entries)), box.root);
  const at = (rel: string) => path.join(box.root, rel);

  async function assertNothingOutside(): Promise<void> {
    assert.deepEqual((await readdir(box.base)).sort(), ["outside", "root"]);
    assert.deepEqual(await listTree(box.outside), []);
  }

  /** Unpacks `entries` into a fresh sandbox, expecting InvalidArgument mentioning `fragments`. */
  async function assertRejected(entries: FixtureEntry[], ...fragments: string[]): Promise<void> {
    await box.cleanup();
    box = await sandbox();
    await assert.rejects(apply(entries), (err: unknown) => {
      assert.ok(isBerthError(err, "InvalidArgument"), `expected InvalidArgument, got ${String(err)}`);
      for (const fragment of fragments) assert.match(err.message, new RegExp(escapeRegExp(fragment)));
      return true;
    });
    await assertNothingOutside();
  }

  it("confines ../, absolute and a/../../ names to the snapshot", async () => {
    await apply([
      { name: "../escape1", data: "1" },
      { name: "/abs/escape2", data: "2" },
      { name: "a/../../escape3", data: "3" },
      { name: "../../../../../../outside/escape4", data: "4" },
      { name: "../outside/", type: "directory" },
    ]);
    await assertNothingOutside();
    assert.equal(await readFile(at("escape1"), "utf8"), "1");
    assert.equal(await readFile(at("abs/escape2"), "utf8"), "2");
    assert.equal(await readFile(at("escape3"), "utf8"), "3");
    assert.equal(await readFile(at("outside/escape4"), "utf8"), "4");
    assert.deepEqual(await listTree(box.root), [
      "abs",
      "abs/escape2",
      "escape1",
      "escape3",
      "outside",
      "outside/escape4",
    ]);
  });

  it("rejects writing through a symlinked parent pointing outside", async () => {
    await assertRejected(
      [
        { name: "link", type: "symlink", linkname: box.outside },
        { name: "link/file", data: "pwned" },
      ],
      '"link/file"',
      'parent "link" is a symlink',
    );
  });

  it("rejects directories, devices and whiteouts through a symlinked parent", async () => {
    for (const entry of [
      { name: "l/sub/", type: "directory" },
      { name: "l/fifo", type: "fifo" },
      { name: "l/.wh.victim" },
      { name: "l/.wh..wh..opq" },
      { name: "l/ln", type: "symlink", linkname: "x" },
    ] satisfies FixtureEntry[]) {
      await assertRejected([{ name: "l", type: "symlink", linkname: "../outside" }, entry], "is a symlink");
      assert.equal(await native().lgetxattr(box.outside, "trusted.overlay.opaque"), null);
    }
  });

  it("rejects a symlinked parent even when it points inside", async () => {
    await assertRejected(
      [
        { name: "real/", type: "directory" },
        { name: "inside", type: "symlink", linkname: "real" },
        { name: "inside/file", data: "x" },
      ],
      'parent "inside" is a symlink',
    );
    assert.deepEqual(await listTree(at("real")), []);
  });

  it("rejects a symlinked grandparent", async () => {
    await assertRejected(
      [
        { name: "d/", type: "directory" },
        { name: "d/up", type: "symlink", linkname: "/" },
        { name: "d/up/tmp/x", data: "x" },
      ],
      'parent "d/up" is a symlink',
    );
  });

  it("replaces, never follows, a symlink at the final component", async () => {
    await apply([
      { name: "victim", type: "symlink", linkname: path.join(box.outside, "victim") },
      { name: "victim", data: "content" },
      { name: "dirlink", type: "symlink", linkname: box.outside },
      { name: "dirlink/", type: "directory", mode: 0o777 },
      { name: "dev", type: "symlink", linkname: path.join(box.outside, "dev") },
      { name: "dev", type: "fifo" },
    ]);
    await assertNothingOutside();
    assert.ok((await lstat(at("victim"))).isFile());
    assert.ok((await lstat(at("dirlink"))).isDirectory());
    assert.ok((await lstat(at("dev"))).isFIFO());
    assert.notEqual((await stat(box.outside)).mode & 0o777, 0o777);
  });

  it("rejects hardlinks to paths outside (confined, hence missing)", async () => {
    const passwd = await stat("/etc/passwd");
    await assertRejected([{ name: "h", type: "link", linkname: "/etc/passwd" }], '"h"', "does not exist");
    await assertRejected([{ name: "h2", type: "link", linkname: "../../outside/x" }], "does not exist");
    assert.equal((await stat("/etc/passwd")).nlink, passwd.nlink);
    assert.deepEqual(await listTree(box.root), []);
  });

  it("rejects hardlinks whose target path traverses a symlinked parent", async () => {
    await assertRejected(
      [
        { name: "sub/file", data: "x" },
        { name: "ln", type: "symlink", linkname: "sub" },
        { name: "h", type: "link", linkname: "ln/file" },
      ],
      'parent "ln" is a symlink',
    );
    await assertRejected(
      [
        { name: "out", type: "symlink", linkname: box.outside },
        { name: "h", type: "link", linkname: "out/x" },
      ],
      "is a symlink",
    );
  });

  it("rejects hardlinks to directories and to the root", async () => {
    await assertRejected(
      [
        { name: "d/", type: "directory" },
        { name: "h", type: "link", linkname: "d" },
      ],
      "is a directory",
    );
    await assertRejected([{ name: "h", type: "link", linkname: "../" }], "root directory");
  });

  it("rejects non-directories that would replace the root", async () => {
    await assertRejected([{ name: "..", data: "x" }], "root directory");
    await assertRejected([{ name: ".", type: "symlink", linkname: "/" }], "root directory");
  });

  it("rejects NUL bytes in names and link targets", async () => {
    await assertRejected([{ name: "x", data: "x", pax: { path: "a\0b" } }], "NUL");
    await assertRejected(
      [
        { name: "t", data: "x" },
        { name: "h", type: "link", linkname: "t", pax: { linkpath: "t\0/../x" } },
      ],
      "NUL",
    );
  });

  it("rejects whiteouts naming . or ..", async () => {
    await assertRejected([{ name: "a/.wh.." }], "invalid whiteout");
    await assertRejected([{ name: "a/.wh...", data: "" }], "invalid whiteout");
  });

  it("rejects a file entry where a parent is a regular file", async () => {
    await assertRejected(
      [
        { name: "f", data: "x" },
        { name: "f/g", data: "y" },
      ],
      'parent "f" is not a directory',
    );
  });

  it("a directory replaced by a file loses its subtree, even one containing symlinks", async () => {
    await apply([
      { name: "d/", type: "directory" },
      { name: "d/out", type: "symlink", linkname: box.outside },
      { name: "d/sub/f", data: "x" },
      { name: "d", data: "file now" },
      { name: "d2/sub/", type: "directory" },
      { name: "d2", type: "symlink", linkname: box.outside },
    ]);
    await assertNothingOutside();
    assert.equal(await readFile(at("d"), "utf8"), "file now");
    assert.ok((await lstat(at("d2"))).isSymbolicLink());
    assert.deepEqual(await listTree(box.root), ["d", "d2"]);
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
