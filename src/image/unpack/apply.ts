/**
 * The OCI layer unpacker: extracts one (decompressed) layer tar into its own empty snapshot
 * directory, converting OCI whiteouts to overlayfs form. Lower layers are not present; overlayfs
 * stacks the snapshot directories later.
 *
 * Layers are hostile input. Nothing is created or modified outside `dir`:
 * - names are normalised like containerd (`path.posix.join("/", name)` relative to `dir`), so
 *   `../../etc/passwd` and `/etc/passwd` both land on `dir/etc/passwd`;
 * - every parent component must be a real directory: a symlinked parent is rejected, even one
 *   pointing inside (containerd follows in-root symlinks; rejecting is simpler and safe);
 * - creates never follow an existing final component (see entries.ts), symlink targets are
 *   stored verbatim and never followed, hardlink targets must be earlier entries of this layer;
 * - `trusted.overlay.*` xattrs in the tar are dropped (overlay metadata comes only from whiteouts).
 *
 * On failure the promise rejects with a BerthError naming the entry, after all in-flight
 * filesystem work has stopped; `dir` is then left partially written and THE CALLER MUST DELETE IT.
 */
import { lstat, lutimes, opendir } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  BerthError,
  dataLoss,
  errnoCode,
  failedPrecondition,
  internal,
  invalidArgument,
  isBerthError,
  resourceExhausted,
  unimplemented,
} from "../../common/errors.js";
import {
  type EntryContext,
  makeDirectory,
  makeHardlink,
  makeNode,
  makeSymlink,
  makeWhiteout,
  markOpaque,
  writeFile,
  type XattrStats,
} from "./entries.js";
import { createLayerExtract, entryMeta, type LayerHeader } from "./tar-header.js";
import { normalizeEntryName, SnapshotTree } from "./tree.js";

export interface ApplyOptions {
  /** Aborts the unpack (rejects with an Aborted BerthError). */
  signal?: AbortSignal;
}

export interface ApplyResult {
  /** Net bytes of regular-file content written into the snapshot. */
  bytes: number;
  /** Net inodes created in the snapshot (hardlinks add none; replaced entries are subtracted). */
  inodes: number;
  /** Xattrs not applied: unsupported by the filesystem (never `security.*`) or `trusted.overlay.*`. */
  xattrsSkipped: number;
}

const WHITEOUT_PREFIX = ".wh.";
const WHITEOUT_META_PREFIX = ".wh..wh.";
const OPAQUE_MARKER = ".wh..wh..opq";

/**
 * Extracts the plain tar `tarStream` (decompress it first, see decompress.ts) into the existing,
 * empty directory `dir`. See the module comment for the guarantees; on rejection delete `dir`.
 */
export async function applyLayer(
  tarStream: Readable,
  dir: string,
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  const root = path.resolve(dir);
  await checkEmptyDir(root);
  const tree = new SnapshotTree(root);
  const xattrs: XattrStats = { skipped: 0 };
  const extract = createLayerExtract();
  let inFlight: Promise<void> = Promise.resolve();
  let entryError: BerthError | undefined;
  let current = "";

  extract.on("entry", (tarHeader, stream, next) => {
    const header = tarHeader as LayerHeader;
    stream.on("error", () => {}); // failures surface through the extract / our own handling
    current = header.name;
    inFlight = applyEntry(header, stream, tree, xattrs).then(
      () => next(),
      (err: unknown) => {
        entryError ??= entryFailure(header.name, err);
        stream.resume();
        next(entryError as Error);
      },
    );
  });

  try {
    await pipeline(tarStream, extract, opts.signal ? { signal: opts.signal } : {});
  } catch (err) {
    await inFlight; // never rejects; make sure no entry is still writing when the caller cleans up
    // An entry's own failure reaches the pipeline as that very error; anything else came from the
    // source (decompression, tar parsing, truncation, abort) and caused whatever the entry saw.
    throw err === entryError ? entryError : streamFailure(err, current);
  }
  await inFlight;
  try {
    for (const [rel, times] of tree.pendingDirTimes()) {
      await lutimes(tree.abs(rel), times.atime, times.mtime);
    }
  } catch (err) {
    throw internal(`layer unpack: setting directory times: ${errorMessage(err)}`, err);
  }
  return { bytes: tree.bytes, inodes: tree.inodes, xattrsSkipped: xattrs.skipped };
}

/** The part of tar-stream's entry stream we use. */
type EntryStream = AsyncIterable<unknown> & { resume(): unknown };

async function applyEntry(
  header: LayerHeader,
  stream: EntryStream,
  tree: SnapshotTree,
  xattrs: XattrStats,
): Promise<void> {
  const type = header.type;
  const isFile = type === "file" || type === "contiguous-file";
  if (!isFile) stream.resume(); // nothing to read; must still be drained
  const label = JSON.stringify(header.name);
  const rel = normalizeEntryName(header.name);
  const ctx: EntryContext = { tree, rel, label, meta: entryMeta(header, label), xattrs };
  const base = path.posix.basename(rel);

  if (base.startsWith(WHITEOUT_PREFIX)) {
    stream.resume();
    return applyWhiteout(ctx, base);
  }
  if (rel === "" && type !== "directory") {
    throw invalidArgument(
      `layer entry ${label}: a ${type ?? "non-directory"} cannot replace the root directory`,
    );
  }
  await tree.ensureParents(rel, label);
  switch (type) {
    case "file":
    case "contiguous-file":
      return writeFile(ctx, stream, header.size ?? 0);
    case "directory":
      return makeDirectory(ctx);
    case "symlink":
      return makeSymlink(ctx, header.linkname ?? "");
    case "link": {
      const target = header.linkname ?? "";
      if (target.includes("\0"))
        throw invalidArgument(`layer entry ${label}: hardlink target contains a NUL byte`);
      return makeHardlink(ctx, normalizeEntryName(target), target);
    }
    case "character-device":
    case "block-device":
    case "fifo":
      return makeNode(ctx, type, header.devmajor ?? 0, header.devminor ?? 0);
    default:
      throw unimplemented(`layer entry ${label}: unsupported tar entry type ${type ?? "unknown"}`);
  }
}

/** `.wh.NAME` → whiteout device for NAME; `.wh..wh..opq` → opaque parent; other `.wh..wh.*` ignored. */
async function applyWhiteout(ctx: EntryContext, base: string): Promise<void> {
  if (base !== OPAQUE_MARKER && base.startsWith(WHITEOUT_META_PREFIX)) return;
  const parent = path.posix.dirname(ctx.rel);
  const parentRel = parent === "." ? "" : parent;
  await ctx.tree.ensureParents(ctx.rel, ctx.label);
  if (base === OPAQUE_MARKER) return markOpaque(ctx.tree, parentRel);
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === "" || name === "." || name === "..") {
    throw invalidArgument(`layer entry ${ctx.label}: invalid whiteout name`);
  }
  return makeWhiteout({ ...ctx, rel: parentRel === "" ? name : `${parentRel}/${name}` });
}

async function checkEmptyDir(root: string): Promise<void> {
  try {
    const st = await lstat(root);
    if (!st.isDirectory()) throw failedPrecondition(`layer unpack: ${root} is not a directory`);
    const listing = await opendir(root);
    try {
      if ((await listing.read()) !== null) throw failedPrecondition(`layer unpack: ${root} is not empty`);
    } finally {
      await listing.close();
    }
  } catch (err) {
    if (isBerthError(err)) throw err;
    throw failedPrecondition(`layer unpack: cannot use ${root}: ${errorMessage(err)}`, err);
  }
}

function entryFailure(name: string, err: unknown): BerthError {
  if (isBerthError(err)) return err;
  const message = `layer entry ${JSON.stringify(name)}: ${errorMessage(err)}`;
  switch (errnoCode(err)) {
    case "ENOSPC":
    case "EDQUOT":
      return resourceExhausted(message, err);
    case "ENAMETOOLONG":
      return invalidArgument(message, err);
    case undefined:
      // Stream errors (truncated data while writing a file) have no errno.
      return dataLoss(message, err);
    default:
      return internal(message, err);
  }
}

function streamFailure(err: unknown, current: string): BerthError {
  if (isBerthError(err)) return err;
  if (err instanceof Error && err.name === "AbortError") {
    return new BerthError("Aborted", "layer unpack aborted", { cause: err });
  }
  const where = current === "" ? "" : ` (after entry ${JSON.stringify(current)})`;
  return dataLoss(`layer tar${where}: ${errorMessage(err)}`, err);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
