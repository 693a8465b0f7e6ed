/**
 * Creating one layer entry of each kind inside a {@link SnapshotTree}, with its metadata.
 *
 * Order of metadata operations matters: chown clears setuid/setgid and file capabilities, and
 * writing file data clears capabilities too; so data, then chown, then xattrs, then chmod, then
 * times. Symlinks get lchown/lutimes and never chmod. Every create uses a call that fails on an
 * existing final component (O_EXCL, mkdir, symlink, link, mknod), so nothing ever follows a
 * symlink left by an earlier entry; on EEXIST the old entry is removed and the create retried.
 */
import { constants, type promises as fsp } from "node:fs";
import { chmod, lchown, link, lstat, lutimes, mkdir, open, symlink } from "node:fs/promises";
import { dataLoss, errnoCode, failedPrecondition, invalidArgument } from "../../common/errors.js";
import { native, S_IFBLK, S_IFCHR, S_IFIFO } from "../../common/native.js";
import type { EntryMeta } from "./tar-header.js";
import type { SnapshotTree } from "./tree.js";

/** Counts xattrs skipped because the filesystem does not support their namespace. */
export interface XattrStats {
  skipped: number;
}

export interface EntryContext {
  tree: SnapshotTree;
  /** Relative, normalised path of the entry. */
  rel: string;
  /** The entry's name as it appears in errors. */
  label: string;
  meta: EntryMeta;
  xattrs: XattrStats;
}

const OPEN_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const WRITE_BATCH_BYTES = 1024 * 1024;
const WRITE_BATCH_CHUNKS = 64;

/** Creates `ctx.rel` with `create`, replacing (rm -rf) whatever an earlier entry left there. */
async function createReplacing(ctx: EntryContext, create: () => Promise<void>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (errnoCode(err) !== "EEXIST") throw err;
    await ctx.tree.remove(ctx.rel);
    await create();
  }
}

/** Files up to this size without xattrs are created in one native call (most files of most layers). */
const SMALL_FILE_BYTES = 1024 * 1024;

/** A regular file, streamed from the tar entry to disk. */
export async function writeFile(
  ctx: EntryContext,
  data: AsyncIterable<unknown>,
  size: number,
): Promise<void> {
  if (size <= SMALL_FILE_BYTES && ctx.meta.xattrs.size === 0) return writeSmallFile(ctx, data, size);
  const abs = ctx.tree.abs(ctx.rel);
  let handle: fsp.FileHandle | undefined;
  await createReplacing(ctx, async () => {
    handle = await open(abs, OPEN_NEW, ctx.meta.mode & 0o777);
  });
  const fh = handle!;
  try {
    ctx.tree.inodes += 1;
    const written = await copyToFile(data, fh);
    if (written !== size) {
      throw dataLoss(`layer entry ${ctx.label}: expected ${size} bytes, got ${written}`);
    }
    ctx.tree.bytes += written;
    await fh.chown(ctx.meta.uid, ctx.meta.gid);
    await setXattrs(ctx, abs);
    await fh.chmod(ctx.meta.mode);
    await fh.utimes(ctx.meta.atime, ctx.meta.mtime);
  } finally {
    await fh.close();
  }
}

/** Reads the whole (small) entry, then creates the file with data, owner, mode and times at once. */
async function writeSmallFile(ctx: EntryContext, data: AsyncIterable<unknown>, size: number): Promise<void> {
  const chunks: Buffer[] = [];
  let written = 0;
  for await (const item of data) {
    const chunk = item as Buffer;
    chunks.push(chunk);
    written += chunk.length;
  }
  if (written !== size) throw dataLoss(`layer entry ${ctx.label}: expected ${size} bytes, got ${written}`);
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, written);
  const { mode, uid, gid, atime, mtime } = ctx.meta;
  const abs = ctx.tree.abs(ctx.rel);
  await createReplacing(ctx, () =>
    native().createFile(abs, body, mode, uid, gid, Math.max(0, atime * 1000), Math.max(0, mtime * 1000)),
  );
  ctx.tree.inodes += 1;
  ctx.tree.bytes += written;
}

/** Streams `data` into `fh`, batching chunks into writev calls; handles short writes. */
async function copyToFile(data: AsyncIterable<unknown>, fh: fsp.FileHandle): Promise<number> {
  let total = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  for await (const item of data) {
    const chunk = item as Buffer;
    batch.push(chunk);
    batchBytes += chunk.length;
    if (batchBytes >= WRITE_BATCH_BYTES || batch.length >= WRITE_BATCH_CHUNKS) {
      await writeAll(fh, batch);
      total += batchBytes;
      batch = [];
      batchBytes = 0;
    }
  }
  if (batch.length > 0) await writeAll(fh, batch);
  return total + batchBytes;
}

async function writeAll(fh: fsp.FileHandle, buffers: Buffer[]): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    let { bytesWritten } = await fh.writev(pending);
    if (bytesWritten === 0) throw new Error("write made no progress");
    let i = 0;
    while (i < pending.length && bytesWritten >= pending[i]!.length) {
      bytesWritten -= pending[i]!.length;
      i++;
    }
    pending = pending.slice(i);
    if (bytesWritten > 0 && pending[0]) pending[0] = pending[0].subarray(bytesWritten);
  }
}

/**
 * A directory. An existing directory only gets its metadata updated; anything else there is
 * replaced. Times are deferred until every entry is written.
 */
export async function makeDirectory(ctx: EntryContext): Promise<void> {
  const { tree, rel } = ctx;
  const abs = tree.abs(rel);
  if (rel !== "") {
    try {
      await mkdir(abs, { mode: 0o700 });
      tree.inodes += 1;
    } catch (err) {
      if (errnoCode(err) !== "EEXIST") throw err;
      if (!(await lstat(abs)).isDirectory()) {
        await tree.remove(rel);
        await mkdir(abs, { mode: 0o700 });
        tree.inodes += 1;
      }
    }
    tree.markDir(rel);
  }
  await lchown(abs, ctx.meta.uid, ctx.meta.gid);
  await setXattrs(ctx, abs);
  await chmod(abs, ctx.meta.mode);
  tree.deferDirTimes(rel, { atime: ctx.meta.atime, mtime: ctx.meta.mtime });
}

/** A symlink; `target` is stored verbatim (it is data, resolved only inside the container). */
export async function makeSymlink(ctx: EntryContext, target: string): Promise<void> {
  if (target === "") throw invalidArgument(`layer entry ${ctx.label}: empty symlink target`);
  if (target.includes("\0"))
    throw invalidArgument(`layer entry ${ctx.label}: symlink target contains a NUL byte`);
  const abs = ctx.tree.abs(ctx.rel);
  await createReplacing(ctx, () => symlink(target, abs));
  ctx.tree.inodes += 1;
  await lchown(abs, ctx.meta.uid, ctx.meta.gid);
  await setXattrs(ctx, abs);
  await lutimes(abs, ctx.meta.atime, ctx.meta.mtime);
}

/**
 * A hardlink to `targetRel` (normalised), which must be an existing non-directory of this layer
 * reached through real directories only.
 */
export async function makeHardlink(ctx: EntryContext, targetRel: string, targetName: string): Promise<void> {
  const { tree, label } = ctx;
  const missing = () =>
    invalidArgument(
      `layer entry ${label}: hardlink target ${JSON.stringify(targetName)} does not exist in this layer`,
    );
  if (targetRel === "") throw invalidArgument(`layer entry ${label}: hardlink target is the root directory`);
  if (!(await tree.parentsExist(targetRel, label))) throw missing();
  const targetAbs = tree.abs(targetRel);
  let target: Awaited<ReturnType<typeof lstat>>;
  try {
    target = await lstat(targetAbs);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") throw missing();
    throw err;
  }
  if (target.isDirectory())
    throw invalidArgument(
      `layer entry ${label}: hardlink target ${JSON.stringify(targetName)} is a directory`,
    );
  if (targetRel === ctx.rel) return; // a link to itself: already in place
  const abs = tree.abs(ctx.rel);
  await createReplacing(ctx, () => link(targetAbs, abs));
  await lchown(abs, ctx.meta.uid, ctx.meta.gid);
  await setXattrs(ctx, abs);
  if (!target.isSymbolicLink()) await chmod(abs, ctx.meta.mode);
  await lutimes(abs, ctx.meta.atime, ctx.meta.mtime);
}

export type NodeKind = "character-device" | "block-device" | "fifo";

/** A device node or fifo via mknod(2). */
export async function makeNode(
  ctx: EntryContext,
  kind: NodeKind,
  major: number,
  minor: number,
): Promise<void> {
  if (
    !Number.isInteger(major) ||
    major < 0 ||
    major > 4095 ||
    !Number.isInteger(minor) ||
    minor < 0 ||
    minor > 0xfffff
  ) {
    throw invalidArgument(`layer entry ${ctx.label}: invalid device number ${major}:${minor}`);
  }
  const type = kind === "fifo" ? S_IFIFO : kind === "block-device" ? S_IFBLK : S_IFCHR;
  const abs = ctx.tree.abs(ctx.rel);
  await createReplacing(ctx, () => native().mknod(abs, type | (ctx.meta.mode & 0o777), major, minor));
  ctx.tree.inodes += 1;
  await lchown(abs, ctx.meta.uid, ctx.meta.gid);
  await setXattrs(ctx, abs);
  await chmod(abs, ctx.meta.mode);
  await lutimes(abs, ctx.meta.atime, ctx.meta.mtime);
}

/** An OCI whiteout in overlayfs form: a 0/0 character device, mode 0, owned like the whiteout entry. */
export async function makeWhiteout(ctx: EntryContext): Promise<void> {
  const abs = ctx.tree.abs(ctx.rel);
  await createReplacing(ctx, () => native().mknod(abs, S_IFCHR, 0, 0));
  ctx.tree.inodes += 1;
  await lchown(abs, ctx.meta.uid, ctx.meta.gid);
}

export const OPAQUE_XATTR = "trusted.overlay.opaque";

/** An OCI opaque marker in overlayfs form: `trusted.overlay.opaque=y` on the directory. */
export async function markOpaque(tree: SnapshotTree, dirRel: string): Promise<void> {
  await native().lsetxattr(tree.abs(dirRel), OPAQUE_XATTR, Buffer.from("y"));
}

/**
 * Applies the entry's xattrs. `trusted.overlay.*` from the tar is skipped: overlay metadata must
 * come only from OCI whiteouts, never be smuggled in by a layer. ENOTSUP is tolerated (counted)
 * except for `security.*`, which carries file capabilities and must not be silently dropped.
 */
async function setXattrs(ctx: EntryContext, abs: string): Promise<void> {
  for (const [name, value] of ctx.meta.xattrs) {
    if (name.startsWith("trusted.overlay.")) {
      ctx.xattrs.skipped += 1;
      continue;
    }
    try {
      await native().lsetxattr(abs, name, value);
    } catch (err) {
      const code = errnoCode(err);
      if (code === "ENOTSUP" || code === "EOPNOTSUPP") {
        if (!name.startsWith("security.")) {
          ctx.xattrs.skipped += 1;
          continue;
        }
        throw failedPrecondition(`layer entry ${ctx.label}: filesystem does not support xattr ${name}`, err);
      }
      throw invalidArgument(
        `layer entry ${ctx.label}: cannot set xattr ${JSON.stringify(name)}: ${code ?? err}`,
        err,
      );
    }
  }
}
