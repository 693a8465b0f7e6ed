/**
 * Confinement of layer entries to the snapshot directory being unpacked.
 *
 * Every path handled here is *relative* to the snapshot root and already normalised by
 * {@link normalizeEntryName} (no `..`, no leading `/`, no empty components), so joining it to the
 * root can only name something at or below the root. What remains is symlinks: the layer itself
 * may create a symlink `a -> /etc` and then an entry `a/passwd`. We never resolve through a
 * symlink: every parent component of a path is checked with lstat and must be a real directory.
 *
 * Checks are cached in `knownDirs` (relative paths verified to be real directories). The cache is
 * exact because the snapshot directory is private to this unpack and entries are processed one at
 * a time: whenever we remove something, the path and everything below it leave the cache.
 */
import { chmod, lchown, lstat, mkdir, readdir, rm, unlink } from "node:fs/promises";
import path from "node:path";
import { errnoCode, internal, invalidArgument } from "../../common/errors.js";

/**
 * containerd's normalisation: `path.posix.join("/", name)` made relative to the root, without a
 * trailing slash. Returns "" for the root itself. Rejects NUL bytes.
 */
export function normalizeEntryName(name: string): string {
  if (name.includes("\0"))
    throw invalidArgument(`layer entry ${JSON.stringify(name)}: name contains a NUL byte`);
  // join keeps one trailing slash ("dir/"); drop it, or lstat/lchown would follow a symlink there.
  const joined = path.posix.join("/", name);
  return joined.endsWith("/") ? joined.slice(1, -1) : joined.slice(1);
}

/** Times to apply to a directory once all of its children are written. */
export interface DirTimes {
  atime: number;
  mtime: number;
}

export class SnapshotTree {
  /** Net inodes in the snapshot (created minus removed). */
  inodes = 0;
  /** Net bytes of regular-file content in the snapshot. */
  bytes = 0;
  private readonly knownDirs = new Set<string>([""]);
  private readonly dirTimes = new Map<string, DirTimes>();

  constructor(readonly root: string) {}

  abs(rel: string): string {
    return rel === "" ? this.root : path.join(this.root, rel);
  }

  /**
   * Makes sure every parent of `rel` is a real directory inside the root, creating missing ones
   * (mode 0755, root-owned: implicit directories). Rejects when a parent is a symlink or not a
   * directory. `label` names the entry in errors.
   */
  async ensureParents(rel: string, label: string): Promise<void> {
    await this.walkParents(rel, label, true);
  }

  /**
   * For a hardlink target: every parent of `rel` must exist and be a real directory. Returns false
   * when a parent is missing (the target cannot exist); rejects symlinked parents.
   */
  async parentsExist(rel: string, label: string): Promise<boolean> {
    return this.walkParents(rel, label, false);
  }

  /** Records `rel` as a verified real directory (its parents must already be verified). */
  markDir(rel: string): void {
    this.knownDirs.add(rel);
  }

  deferDirTimes(rel: string, times: DirTimes): void {
    this.dirTimes.set(rel, times);
  }

  /** Directories whose times are still to be set, deepest first. */
  pendingDirTimes(): [string, DirTimes][] {
    return [...this.dirTimes].sort((a, b) => b[0].length - a[0].length);
  }

  /**
   * Removes whatever exists at `rel` (rm -rf for a directory) so a new entry can take its place,
   * keeping the accounting and the caches right. Nothing to do when `rel` does not exist.
   */
  async remove(rel: string): Promise<void> {
    if (rel === "") throw internal("layer unpack: refusing to remove the snapshot root");
    const abs = this.abs(rel);
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(abs);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return;
      throw err;
    }
    if (st.isDirectory()) {
      const gone = await measure(abs);
      await rm(abs, { recursive: true, force: true });
      this.inodes -= gone.inodes + 1;
      this.bytes -= gone.bytes;
    } else {
      await unlink(abs);
      if (st.nlink === 1) {
        this.inodes -= 1;
        if (st.isFile()) this.bytes -= st.size;
      }
    }
    this.forget(rel);
  }

  private forget(rel: string): void {
    const prefix = `${rel}/`;
    for (const dir of this.knownDirs) {
      if (dir === rel || dir.startsWith(prefix)) this.knownDirs.delete(dir);
    }
    for (const dir of this.dirTimes.keys()) {
      if (dir === rel || dir.startsWith(prefix)) this.dirTimes.delete(dir);
    }
  }

  private async walkParents(rel: string, label: string, create: boolean): Promise<boolean> {
    const parent = path.posix.dirname(rel);
    if (parent === "." || this.knownDirs.has(parent)) return true;
    const parts = parent.split("/");
    let current = "";
    for (const part of parts) {
      current = current === "" ? part : `${current}/${part}`;
      if (this.knownDirs.has(current)) continue;
      const abs = this.abs(current);
      let st: Awaited<ReturnType<typeof lstat>> | undefined;
      try {
        st = await lstat(abs);
      } catch (err) {
        if (errnoCode(err) !== "ENOENT") throw err;
      }
      if (st === undefined) {
        if (!create) return false;
        await mkdir(abs);
        await lchown(abs, 0, 0);
        await chmod(abs, 0o755);
        this.inodes += 1;
      } else if (st.isSymbolicLink()) {
        throw invalidArgument(`layer entry ${label}: parent ${JSON.stringify(current)} is a symlink`);
      } else if (!st.isDirectory()) {
        throw invalidArgument(`layer entry ${label}: parent ${JSON.stringify(current)} is not a directory`);
      }
      this.knownDirs.add(current);
    }
    return true;
  }
}

/** Inodes and regular-file bytes below a directory (not counting it), for removal accounting. */
async function measure(dir: string): Promise<{ inodes: number; bytes: number }> {
  let inodes = 0;
  let bytes = 0;
  const names = await readdir(dir, { recursive: true });
  for (const name of names) {
    const st = await lstat(path.join(dir, name));
    if (st.isDirectory() || st.nlink === 1) inodes += 1;
    if (st.isFile() && st.nlink === 1) bytes += st.size;
  }
  return { inodes, bytes };
}
