import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { lstat, mkdir, mkdtemp, open, readFile, rm, statfs, symlink, writeFile } from "node:fs/promises";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { needsRoot } from "../test/harness/skip.js";
import { MNT_DETACH, MS_BIND, MS_RDONLY, native, S_IFCHR, S_IFIFO } from "./native.js";

const skipUnlessRoot = needsRoot("CAP_MKNOD / CAP_SYS_ADMIN");
const TMPFS_MAGIC = 0x01021994;

/** Runs fn with a fresh temp dir that is removed afterwards, also on failure. */
async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "berth-native-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Mount points listed in /proc/self/mountinfo (field 5). */
async function mountPoints(): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split(" ")[4] ?? "");
}

/** Lazily detaches anything still mounted on target (cleanup after a failed assertion). */
async function forceUnmount(target: string): Promise<void> {
  while ((await mountPoints()).includes(target)) {
    await native().umount2(target, MNT_DETACH);
  }
}

/** glibc's makedev(3) for the 12-bit major / 20-bit minor range the kernel supports. */
function makedev(major: number, minor: number): number {
  return (minor & 0xff) + major * 0x100 + (minor - (minor & 0xff)) * 0x1000;
}

function isUnsupported(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOTSUP" || code === "EOPNOTSUPP";
}

/** Calls an addon function with arbitrary (possibly ill-typed) arguments. */
function callRaw(name: string, ...args: unknown[]): unknown {
  const fn = (native() as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
  assert.ok(fn, `addon exports ${name}`);
  return fn(...args);
}

test("the addon exports every function of the contract", () => {
  const n = native();
  for (const name of [
    "mknod",
    "lsetxattr",
    "lgetxattr",
    "llistxattr",
    "mount",
    "umount2",
    "tryLockExclusive",
    "createFile",
    "openPty",
    "resizePty",
    "pendingBytes",
    "startRelay",
    "connectSeqpacket",
    "releaseMemory",
  ]) {
    assert.equal(typeof (n as unknown as Record<string, unknown>)[name], "function", name);
  }
});

test("releaseMemory hands the V8 heap's free pages back, not only its garbage", () => {
  // Short-lived arrays grow the heap by ~60 MiB. Once they are garbage, a plain full collection
  // (gc()) gives ~30 MiB of it back here and keeps the rest as free pages; releaseMemory must
  // give nearly all of it back.
  let junk: number[][] | undefined = Array.from({ length: 400 }, () =>
    Array.from({ length: 10_000 }, (_, i) => i),
  );
  const grown = process.memoryUsage().heapTotal;
  assert.ok(junk.length === 400);
  junk = undefined;
  native().releaseMemory();
  const after = process.memoryUsage().heapTotal;
  assert.ok(after < grown - 45 * 1024 * 1024, `heap ${grown} -> ${after} bytes`);
});

test("mknod creates character devices with the right rdev", { skip: skipUnlessRoot }, async () => {
  await withTempDir(async (dir) => {
    const zero = join(dir, "whiteout");
    await native().mknod(zero, S_IFCHR | 0o600, 0, 0);
    const st = await lstat(zero);
    assert.ok(st.isCharacterDevice());
    assert.equal(st.rdev, 0);
    assert.equal(st.mode & 0o777, 0o600 & ~process.umask());

    const nul = join(dir, "null");
    await native().mknod(nul, S_IFCHR | 0o666, 1, 3);
    assert.equal((await lstat(nul)).rdev, makedev(1, 3));

    const big = join(dir, "big");
    await native().mknod(big, S_IFCHR | 0o600, 300, 70000);
    assert.equal((await lstat(big)).rdev, makedev(300, 70000));
  });
});

test("mknod creates fifos", { skip: skipUnlessRoot }, async () => {
  await withTempDir(async (dir) => {
    const fifo = join(dir, "fifo");
    await native().mknod(fifo, S_IFIFO | 0o644, 0, 0);
    const st = await lstat(fifo);
    assert.ok(st.isFIFO());
  });
});

test("failures reject with Node-style errors", async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, "no-such-dir", "fifo");
    await assert.rejects(native().mknod(missing, S_IFIFO | 0o644, 0, 0), (err: NodeJS.ErrnoException) => {
      assert.ok(err instanceof Error);
      assert.equal(err.code, "ENOENT");
      assert.equal(err.errno, -osConstants.errno.ENOENT);
      assert.equal(err.syscall, "mknod");
      assert.equal(err.path, missing);
      assert.equal(err.message, `ENOENT: no such file or directory, mknod '${missing}'`);
      return true;
    });

    const existing = join(dir, "file");
    await writeFile(existing, "x");
    await assert.rejects(native().mknod(existing, S_IFIFO | 0o644, 0, 0), {
      code: "EEXIST",
      errno: -osConstants.errno.EEXIST,
      syscall: "mknod",
      path: existing,
    });
    await assert.rejects(native().lgetxattr(missing, "user.berth.test"), {
      code: "ENOENT",
      syscall: "lgetxattr",
      path: missing,
    });
    await assert.rejects(native().llistxattr(missing), { code: "ENOENT", syscall: "llistxattr" });
    await assert.rejects(native().lsetxattr(existing, "bogus.namespace", Buffer.from("x")), {
      code: "ENOTSUP",
      syscall: "lsetxattr",
    });
  });
});

test("user.* xattrs: set, get, list, absent", async (t) => {
  await withTempDir(async (dir) => {
    const file = join(dir, "file");
    await writeFile(file, "x");
    try {
      await native().lsetxattr(file, "user.berth.test", Buffer.from("hello"));
    } catch (err) {
      if (isUnsupported(err)) {
        const fs = (await statfs(dir)).type.toString(16);
        t.skip(`filesystem of ${dir} (magic 0x${fs}) does not support user.* xattrs`);
        return;
      }
      throw err;
    }
    assert.deepEqual(await native().lgetxattr(file, "user.berth.test"), Buffer.from("hello"));

    const binary = Buffer.from([0, 1, 2, 0, 255]);
    await native().lsetxattr(file, "user.berth.binary", binary);
    assert.deepEqual(await native().lgetxattr(file, "user.berth.binary"), binary);

    await native().lsetxattr(file, "user.berth.empty", Buffer.alloc(0));
    const empty = await native().lgetxattr(file, "user.berth.empty");
    assert.ok(Buffer.isBuffer(empty));
    assert.equal(empty.length, 0);

    const names = await native().llistxattr(file);
    for (const name of ["user.berth.test", "user.berth.binary", "user.berth.empty"]) {
      assert.ok(names.includes(name), `${name} in ${JSON.stringify(names)}`);
    }
    assert.equal(await native().lgetxattr(file, "user.berth.absent"), null);

    // A large value exercises the size-query-then-fetch path.
    const large = Buffer.alloc(3000, 0x61);
    await native().lsetxattr(file, "user.berth.large", large);
    assert.deepEqual(await native().lgetxattr(file, "user.berth.large"), large);

    // Many concurrent requests on the thread pool settle independently.
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        native().lgetxattr(file, i % 2 === 0 ? "user.berth.test" : "user.berth.absent"),
      ),
    );
    results.forEach((r, i) => {
      assert.deepEqual(r, i % 2 === 0 ? Buffer.from("hello") : null);
    });
  });
});

test("llistxattr on a file without xattrs is empty", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "plain");
    await writeFile(file, "");
    const names = await native().llistxattr(file);
    assert.ok(Array.isArray(names));
    assert.deepEqual(
      names.filter((n) => n.startsWith("user.") || n.startsWith("trusted.")),
      [],
    );
  });
});

test("trusted.overlay.opaque (what overlayfs reads)", { skip: skipUnlessRoot }, async (t) => {
  await withTempDir(async (dir) => {
    const sub = join(dir, "opaque-dir");
    await mkdir(sub);
    try {
      await native().lsetxattr(sub, "trusted.overlay.opaque", Buffer.from("y"));
    } catch (err) {
      if (isUnsupported(err)) {
        const fs = (await statfs(dir)).type.toString(16);
        t.skip(`filesystem of ${dir} (magic 0x${fs}) does not support trusted.* xattrs`);
        return;
      }
      throw err;
    }
    assert.deepEqual(await native().lgetxattr(sub, "trusted.overlay.opaque"), Buffer.from("y"));
    assert.ok((await native().llistxattr(sub)).includes("trusted.overlay.opaque"));
  });
});

test("l*xattr calls act on a symlink itself, not its target", { skip: skipUnlessRoot }, async (t) => {
  await withTempDir(async (dir) => {
    const target = join(dir, "target");
    const link = join(dir, "link");
    await writeFile(target, "x");
    await symlink(target, link);
    try {
      await native().lsetxattr(link, "trusted.berth.link", Buffer.from("on-link"));
    } catch (err) {
      if (isUnsupported(err)) {
        t.skip("filesystem does not support trusted.* xattrs on symlinks");
        return;
      }
      throw err;
    }
    assert.deepEqual(await native().lgetxattr(link, "trusted.berth.link"), Buffer.from("on-link"));
    assert.equal(await native().lgetxattr(target, "trusted.berth.link"), null);
    assert.ok((await native().llistxattr(link)).includes("trusted.berth.link"));
    assert.ok(!(await native().llistxattr(target)).includes("trusted.berth.link"));
  });
});

test("mount a tmpfs and umount2 it", { skip: skipUnlessRoot }, async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "mnt");
    await mkdir(target);
    try {
      await native().mount("berth-test", target, "tmpfs", 0, "size=1m,mode=0755");
      assert.ok((await mountPoints()).includes(target));
      assert.equal((await statfs(target)).type, TMPFS_MAGIC);
      await writeFile(join(target, "inside"), "x");
      // tmpfs supports trusted.* xattrs, which overlayfs upper dirs rely on.
      await native().lsetxattr(target, "trusted.overlay.opaque", Buffer.from("y"));
      assert.deepEqual(await native().lgetxattr(target, "trusted.overlay.opaque"), Buffer.from("y"));

      await native().umount2(target, 0);
      assert.ok(!(await mountPoints()).includes(target));
      await assert.rejects(lstat(join(target, "inside")), { code: "ENOENT" });
    } finally {
      await forceUnmount(target);
    }
  });
});

test("bind mount with empty fstype/data, remount read-only", { skip: skipUnlessRoot }, async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, "src");
    const dst = join(dir, "dst");
    await mkdir(src);
    await mkdir(dst);
    await writeFile(join(src, "file"), "from-src");
    try {
      await native().mount(src, dst, "", MS_BIND, "");
      assert.equal(await readFile(join(dst, "file"), "utf8"), "from-src");
      // MS_REMOUNT (32) | MS_BIND | MS_RDONLY makes this bind mount read-only.
      await native().mount("", dst, "", 32 | MS_BIND | MS_RDONLY, "");
      await assert.rejects(writeFile(join(dst, "new"), "x"), { code: "EROFS" });
      await native().umount2(dst, MNT_DETACH);
      assert.ok(!(await mountPoints()).includes(dst));
    } finally {
      await forceUnmount(dst);
    }
  });
});

test("mount/umount2 errors carry code, syscall and path", { skip: skipUnlessRoot }, async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(native().umount2(dir, 0), {
      code: "EINVAL",
      errno: -osConstants.errno.EINVAL,
      syscall: "umount2",
      path: dir,
    });
    const missing = join(dir, "missing");
    await assert.rejects(native().mount("tmpfs", missing, "tmpfs", 0, ""), {
      code: "ENOENT",
      syscall: "mount",
      path: missing,
    });
    await assert.rejects(native().mount("none", dir, "berth-no-such-fs", 0, ""), {
      code: "ENODEV",
      syscall: "mount",
    });
  });
});

test("tryLockExclusive: flock is per open file description", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "lock");
    await writeFile(file, "");
    const a = await open(file, fsConstants.O_RDWR);
    let b: Awaited<ReturnType<typeof open>> | undefined;
    try {
      b = await open(file, fsConstants.O_RDWR);
      assert.equal(native().tryLockExclusive(a.fd), true);
      assert.equal(native().tryLockExclusive(a.fd), true, "re-locking through the same description succeeds");
      assert.equal(native().tryLockExclusive(b.fd), false);
      await a.close();
      assert.equal(native().tryLockExclusive(b.fd), true, "closing the holder releases the lock");
    } finally {
      await a.close().catch(() => {});
      await b?.close();
    }
  });
});

test("pendingBytes: what a pipe holds unread, seen from either end", async () => {
  await withTempDir(async (dir) => {
    const fifo = join(dir, "f");
    await promisify(execFile)("mkfifo", ["-m", "600", fifo]);
    const r = await open(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const w = await open(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    assert.equal(native().pendingBytes(w.fd), 0);
    await w.write("1 24 80\n");
    assert.equal(native().pendingBytes(w.fd), 8);
    assert.equal(native().pendingBytes(r.fd), 8);
    await r.read(Buffer.alloc(3), 0, 3, null);
    assert.equal(native().pendingBytes(w.fd), 5);
    const closedFd = w.fd;
    await w.close();
    await r.close();
    assert.throws(() => native().pendingBytes(closedFd), /EBADF/);
  });
});

test("tryLockExclusive throws on a bad fd", () => {
  assert.throws(() => native().tryLockExclusive(1_000_000), {
    code: "EBADF",
    errno: -osConstants.errno.EBADF,
    syscall: "flock",
  });
});

test("bad arguments throw synchronously", () => {
  const typeError = { name: "TypeError", code: "ERR_INVALID_ARG_TYPE" };
  assert.throws(() => callRaw("mknod", 123, 0, 0, 0), typeError);
  assert.throws(() => callRaw("mknod", "/x", "0", 0, 0), typeError);
  assert.throws(() => callRaw("mknod", "/x"), typeError);
  assert.throws(() => callRaw("lsetxattr", "/x", "user.a", "not-a-buffer"), typeError);
  assert.throws(() => callRaw("lgetxattr", "/x", undefined), typeError);
  assert.throws(() => callRaw("llistxattr", null), typeError);
  assert.throws(() => callRaw("mount", "", "/x", "", 0, undefined), typeError);
  assert.throws(() => callRaw("umount2", "/x", "0"), typeError);
  assert.throws(() => callRaw("tryLockExclusive", "3"), typeError);
  assert.throws(() => callRaw("lgetxattr", "/x\0y", "user.a"), {
    name: "TypeError",
    code: "ERR_INVALID_ARG_VALUE",
  });

  const rangeError = { name: "RangeError", code: "ERR_OUT_OF_RANGE" };
  assert.throws(() => callRaw("mknod", "/x", -1, 0, 0), rangeError);
  assert.throws(() => callRaw("mknod", "/x", 0, 4096, 0), rangeError);
  assert.throws(() => callRaw("mknod", "/x", 0, 0, 1.5), rangeError);
  assert.throws(() => callRaw("mount", "", "/x", "", Number.NaN, ""), rangeError);
  assert.throws(() => callRaw("tryLockExclusive", -1), rangeError);
});

test("createFile writes data, owner, setuid mode and times; never over an existing entry", {
  skip: skipUnlessRoot,
}, async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "f");
    const data = Buffer.from("payload");
    const mtime = Date.UTC(2023, 4, 6, 7, 8, 9, 500);
    await native().createFile(file, data, 0o4750, 1234, 5678, mtime, mtime);
    const st = await lstat(file);
    assert.deepEqual(await readFile(file), data);
    assert.equal(st.mode & 0o7777, 0o4750);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 5678);
    assert.equal(st.mtimeMs, mtime);
    await assert.rejects(native().createFile(file, data, 0o644, 0, 0, 0, 0), { code: "EEXIST" });
    await symlink("/etc/passwd", join(dir, "link"));
    await assert.rejects(native().createFile(join(dir, "link"), data, 0o644, 0, 0, 0, 0), { code: "EEXIST" });
  });
});
