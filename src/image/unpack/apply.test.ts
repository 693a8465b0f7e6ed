import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { lstat, readFile, readlink, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, it } from "node:test";
import { isBerthError } from "../../common/errors.js";
import { native } from "../../common/native.js";
import { needsRoot } from "../../test/harness/skip.js";
import { applyLayer } from "./apply.js";
import {
  buildTar,
  chunked,
  type FixtureEntry,
  listTree,
  patchBytes,
  type Sandbox,
  sandbox,
} from "./tar-fixture.js";

/** Ownership, devices and trusted.* xattrs need root. */

const MTIME = new Date(1_500_000_000_000);

describe("applyLayer", { skip: needsRoot() }, () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await sandbox();
  });
  afterEach(async () => {
    await box.cleanup();
  });

  const apply = async (entries: FixtureEntry[]) => applyLayer(chunked(await buildTar(entries)), box.root);
  const at = (rel: string) => path.join(box.root, rel);

  it("writes regular files byte for byte with mode, owner and mtime", async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const result = await apply([
      { name: "etc/", type: "directory", mode: 0o755 },
      { name: "etc/hosts", data: "127.0.0.1 localhost\n", mode: 0o640, uid: 1000, gid: 2000, mtime: MTIME },
      { name: "big.bin", data: big, mode: 0o600, uid: 7, gid: 8 },
      { name: "empty", data: "", mode: 0o444 },
    ]);
    assert.equal(await readFile(at("etc/hosts"), "utf8"), "127.0.0.1 localhost\n");
    assert.ok((await readFile(at("big.bin"))).equals(big));
    const hosts = await lstat(at("etc/hosts"));
    assert.equal(hosts.mode & 0o7777, 0o640);
    assert.equal(hosts.uid, 1000);
    assert.equal(hosts.gid, 2000);
    assert.equal(hosts.mtimeMs, MTIME.getTime());
    const bigSt = await lstat(at("big.bin"));
    assert.deepEqual([bigSt.mode & 0o7777, bigSt.uid, bigSt.gid], [0o600, 7, 8]);
    assert.equal((await lstat(at("empty"))).mode & 0o7777, 0o444);
    assert.deepEqual(result, { bytes: 20 + big.length, inodes: 4, xattrsSkipped: 0 });
  });

  it("keeps setuid, setgid and sticky bits on non-root files and dirs", async () => {
    await apply([
      { name: "usr/bin/su", data: "#!", mode: 0o4755, uid: 0, gid: 0 },
      { name: "usr/bin/mine", data: "x", mode: 0o6750, uid: 1000, gid: 1000 },
      { name: "tmp/", type: "directory", mode: 0o1777, uid: 5, gid: 5 },
    ]);
    assert.equal((await lstat(at("usr/bin/su"))).mode & 0o7777, 0o4755);
    const mine = await lstat(at("usr/bin/mine"));
    assert.deepEqual([mine.mode & 0o7777, mine.uid, mine.gid], [0o6750, 1000, 1000]);
    const tmp = await lstat(at("tmp"));
    assert.deepEqual([tmp.mode & 0o7777, tmp.uid], [0o1777, 5]);
  });

  it("creates missing parents as root-owned 0755 directories and sets dir mtimes last", async () => {
    const result = await apply([
      { name: "a/", type: "directory", mode: 0o700, uid: 3, gid: 3, mtime: MTIME },
      { name: "a/b/c/file", data: "x" },
    ]);
    const a = await lstat(at("a"));
    assert.deepEqual([a.mode & 0o7777, a.uid, a.mtimeMs], [0o700, 3, MTIME.getTime()]);
    for (const implicit of ["a/b", "a/b/c"]) {
      const st = await lstat(at(implicit));
      assert.ok(st.isDirectory());
      assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o755, 0, 0]);
    }
    assert.equal(result.inodes, 4);
  });

  it("stores symlink targets verbatim and never follows them", async () => {
    const passwdBefore = await stat("/etc/passwd");
    await apply([
      { name: "abs", type: "symlink", linkname: "/etc/passwd", uid: 9, gid: 9, mtime: MTIME },
      { name: "rel", type: "symlink", linkname: "../../../outside" },
    ]);
    assert.equal(await readlink(at("abs")), "/etc/passwd");
    assert.equal(await readlink(at("rel")), "../../../outside");
    const link = await lstat(at("abs"));
    assert.ok(link.isSymbolicLink());
    assert.deepEqual([link.uid, link.gid, link.mtimeMs], [9, 9, MTIME.getTime()]);
    const passwdAfter = await stat("/etc/passwd");
    assert.deepEqual(
      [passwdAfter.uid, passwdAfter.mode, passwdAfter.mtimeMs],
      [passwdBefore.uid, passwdBefore.mode, passwdBefore.mtimeMs],
    );
  });

  it("hardlinks share the inode of an earlier entry", async () => {
    const result = await apply([
      { name: "bin/busybox", data: "BB", mode: 0o755 },
      { name: "bin/sh", type: "link", linkname: "bin/busybox", mode: 0o755 },
      { name: "bin/ls", type: "link", linkname: "/bin/busybox", mode: 0o755 },
    ]);
    const bb = await lstat(at("bin/busybox"));
    assert.equal((await lstat(at("bin/sh"))).ino, bb.ino);
    assert.equal((await lstat(at("bin/ls"))).ino, bb.ino);
    assert.equal(bb.nlink, 3);
    assert.deepEqual(result, { bytes: 2, inodes: 2, xattrsSkipped: 0 });
  });

  it("turns OCI whiteouts into 0/0 character devices owned like the entry", async () => {
    await apply([
      { name: "etc/.wh.motd", uid: 12, gid: 34 },
      { name: ".wh.gone", type: "directory" },
      { name: "etc/.wh..wh.plnk", data: "aufs metadata" },
    ]);
    for (const [rel, uid, gid] of [
      ["etc/motd", 12, 34],
      ["gone", 0, 0],
    ] as const) {
      const st = await lstat(at(rel));
      assert.ok(st.isCharacterDevice(), rel);
      assert.equal(st.rdev, 0);
      assert.equal(st.mode & 0o7777, 0);
      assert.deepEqual([st.uid, st.gid], [uid, gid]);
    }
    assert.deepEqual(await listTree(box.root), ["etc", "etc/motd", "gone"]);
  });

  it("marks opaque directories with trusted.overlay.opaque=y, creating them if needed", async () => {
    await apply([
      { name: "var/", type: "directory" },
      { name: "var/.wh..wh..opq" },
      { name: "var/keep", data: "k" },
      { name: "opt/app/.wh..wh..opq" },
    ]);
    assert.deepEqual(await native().lgetxattr(at("var"), "trusted.overlay.opaque"), Buffer.from("y"));
    assert.deepEqual(await native().lgetxattr(at("opt/app"), "trusted.overlay.opaque"), Buffer.from("y"));
    assert.equal(await native().lgetxattr(at("opt"), "trusted.overlay.opaque"), null);
    assert.ok((await lstat(at("opt/app"))).isDirectory());
    assert.deepEqual(await listTree(box.root), ["opt", "opt/app", "var", "var/keep"]);
  });

  it("applies xattrs byte-exact, incl. binary security.capability; drops trusted.overlay.*", async () => {
    // vfs_cap_data v2, effective, permitted = CAP_SETUID | CAP_NET_RAW: contains byte 0x80.
    const cap = Buffer.from([1, 0, 0, 2, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const placeholder = "@CAPABILITY-VALUE-@@";
    const archive = patchBytes(
      await buildTar([
        { name: "dir/", type: "directory" },
        {
          name: "usr/bin/ping",
          data: "ELF",
          mode: 0o755,
          uid: 1,
          pax: {
            "SCHILY.xattr.security.capability": placeholder,
            "SCHILY.xattr.user.note": "héllo",
            "SCHILY.xattr.trusted.overlay.redirect": "/elsewhere",
          },
        },
        { name: "dir/x", data: "x", pax: { "SCHILY.xattr.trusted.overlay.opaque": "y" } },
      ]),
      placeholder,
      cap,
    );
    const result = await applyLayer(chunked(archive, 100), box.root);
    assert.deepEqual(await native().lgetxattr(at("usr/bin/ping"), "security.capability"), cap);
    assert.deepEqual(await native().lgetxattr(at("usr/bin/ping"), "user.note"), Buffer.from("héllo"));
    assert.equal(await native().lgetxattr(at("usr/bin/ping"), "trusted.overlay.redirect"), null);
    assert.equal(await native().lgetxattr(at("dir/x"), "trusted.overlay.opaque"), null);
    assert.equal((await lstat(at("usr/bin/ping"))).uid, 1); // chown before setxattr kept the cap
    assert.equal(result.xattrsSkipped, 2);
  });

  it("skips xattrs of unsupported non-security namespaces", async () => {
    const result = await apply([{ name: "f", data: "x", pax: { "SCHILY.xattr.madeup.name": "v" } }]);
    assert.equal(result.xattrsSkipped, 1);
    assert.equal(await readFile(at("f"), "utf8"), "x");
  });

  it("creates character devices, block devices and fifos", async () => {
    await apply([
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/loop9", type: "block-device", devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
      { name: "run/pipe", type: "fifo", mode: 0o620, uid: 4 },
    ]);
    const nul = await lstat(at("dev/null"));
    assert.ok(nul.isCharacterDevice());
    assert.equal(nul.rdev, (1 << 8) | 3);
    assert.equal(nul.mode & 0o7777, 0o666);
    const loop = await lstat(at("dev/loop9"));
    assert.ok(loop.isBlockDevice());
    assert.deepEqual([loop.rdev, loop.gid, loop.mode & 0o7777], [(7 << 8) | 9, 6, 0o660]);
    const fifo = await lstat(at("run/pipe"));
    assert.ok(fifo.isFIFO());
    assert.deepEqual([fifo.mode & 0o7777, fifo.uid], [0o620, 4]);
  });

  it("handles PAX long names and PAX uid/gid/mtime", async () => {
    const long = `${"d".repeat(120)}/${"f".repeat(200)}`;
    await apply([
      { name: long, data: "long", pax: { uid: "3000000000", gid: "70000", mtime: "1234567890.5" } },
    ]);
    const st = await lstat(at(long));
    assert.equal(await readFile(at(long), "utf8"), "long");
    assert.deepEqual([st.uid, st.gid, st.mtimeMs], [3000000000, 70000, 1234567890500]);
  });

  it("replaces earlier entries of the same name", async () => {
    const result = await apply([
      { name: "x/", type: "directory" },
      { name: "x/child", data: "12345" },
      { name: "x", data: "now a file" },
      { name: "y", data: "file" },
      { name: "y/", type: "directory" },
      { name: "z/", type: "directory", mode: 0o700 },
      { name: "z/kept", data: "k" },
      { name: "z/", type: "directory", mode: 0o750, uid: 8 },
      { name: "s", type: "symlink", linkname: "../outside/victim" },
      { name: "s", data: "plain" },
    ]);
    assert.equal(await readFile(at("x"), "utf8"), "now a file");
    assert.ok((await lstat(at("y"))).isDirectory());
    const z = await lstat(at("z"));
    assert.deepEqual([z.mode & 0o7777, z.uid], [0o750, 8]);
    assert.equal(await readFile(at("z/kept"), "utf8"), "k");
    assert.ok((await lstat(at("s"))).isFile());
    assert.equal(await readFile(at("s"), "utf8"), "plain");
    assert.deepEqual(await listTree(box.outside), []);
    assert.deepEqual(await listTree(box.root), ["s", "x", "y", "z", "z/kept"]);
    assert.deepEqual(result, { bytes: 10 + 1 + 5, inodes: 5, xattrsSkipped: 0 });
  });

  it("applies a root directory entry to the snapshot directory itself", async () => {
    await apply([
      { name: "./", type: "directory", mode: 0o711, mtime: MTIME },
      { name: "./f", data: "x" },
    ]);
    const st = await lstat(box.root);
    assert.deepEqual([st.mode & 0o7777, st.mtimeMs], [0o711, MTIME.getTime()]);
  });

  it("rejects a directory that is not empty", async () => {
    await writeFile(at("stale"), "x");
    await assert.rejects(apply([{ name: "f", data: "x" }]), (err) => isBerthError(err, "FailedPrecondition"));
  });

  it("rejects unsupported entry types (GNU sparse) with Unimplemented", async () => {
    const archive = await buildTar([{ name: "sparse", data: "x" }]);
    archive[156] = "S".charCodeAt(0); // typeflag of the first header
    archive.fill(0x20, 148, 156); // checksum field counts as spaces
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += archive[i]!;
    archive.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    await assert.rejects(applyLayer(chunked(archive), box.root), (err) => {
      assert.ok(isBerthError(err, "Unimplemented"), String(err));
      assert.match(err.message, /"sparse"/);
      return true;
    });
  });

  it("stops on abort with an Aborted error", async () => {
    const archive = await buildTar([
      { name: "a", data: "first" },
      { name: "b", data: randomBytes(100_000) },
    ]);
    const source = new PassThrough();
    source.write(archive.subarray(0, 20_000)); // "a" and part of "b"; the rest never comes
    const controller = new AbortController();
    const unpack = applyLayer(source, box.root, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(unpack, (err) => isBerthError(err, "Aborted"));
    assert.equal(await readFile(at("a"), "utf8"), "first");
  });

  it("rejects a truncated tar with DataLoss after stopping all work", async () => {
    const archive = await buildTar([
      { name: "a", data: "first" },
      { name: "b", data: randomBytes(100_000) },
    ]);
    await assert.rejects(applyLayer(chunked(archive.subarray(0, 50_000)), box.root), (err) => {
      assert.ok(isBerthError(err, "DataLoss"), String(err));
      return true;
    });
    assert.equal(await readFile(at("a"), "utf8"), "first");
  });

  it("rejects a size field tar-stream decodes as null (it used to stall the unpack forever)", async () => {
    // Base-256 sizes start with 0x80 or 0xff; tar-stream reads any other high-bit byte as null.
    const withSize = (archive: Buffer, block: number, size: number[]) => {
      const out = Buffer.from(archive);
      const off = block * 512;
      out.fill(0, off + 124, off + 136);
      Buffer.from(size).copy(out, off + 124);
      out.fill(0x20, off + 148, off + 156);
      let sum = 0;
      for (let i = off; i < off + 512; i++) sum += out[i]!;
      out.write(`${sum.toString(8).padStart(6, "0")}\0 `, off + 148, "latin1");
      return out;
    };
    const plain = await buildTar([{ name: "f", data: "x" }]);
    const pax = await buildTar([{ name: "g", data: "y", pax: { "SCHILY.xattr.user.a": "b" } }]);
    for (const archive of [withSize(plain, 0, [0x8b, 1, 2]), withSize(pax, 0, [0x81, 7])]) {
      const unpack = applyLayer(chunked(archive), box.root);
      const timeout = new Promise((_, reject) =>
        setTimeout(() => reject(new Error("stalled")), 5000).unref(),
      );
      await assert.rejects(Promise.race([unpack, timeout]), (err) => {
        assert.ok(isBerthError(err, "DataLoss"), String(err));
        return true;
      });
    }
  });
});
