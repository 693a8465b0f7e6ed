/**
 * Follows one log path across rotations, the way the kubelet and logrotate rotate: a file is
 * known by its identity (device + inode + a fingerprint of its first bytes), not its name.
 *
 * - rename-and-create (`x.log` → `x.log.<timestamp>`, new `x.log`): the open descriptor keeps
 *   reading the renamed file to its end; the new file is taken up once it has existed for a
 *   short grace period (the writer may still finish a write to the old one), then any rotated
 *   files written after ours (several rotations between two looks), then `x.log`, each from 0;
 * - copytruncate / truncation: a size below our offset, or first bytes that changed. What we
 *   had not read yet went with the copy: a sibling whose first bytes are ours and which is
 *   longer than our offset is read from there to its end first (as iLogtail and fluent-bit
 *   look for the copy), then the truncated file from 0. Lines written between logrotate's
 *   copy and its truncate are in neither file: copytruncate itself loses them;
 * - a path that does not exist yet is retried.
 *
 * Reading is in chunks handed to the assembler; a batch carries the position to commit once
 * its records are delivered (`ack`). Nothing moves until then, so a caller that stops waiting
 * for a sink stops reading (backpressure), and a restart from a committed position re-reads
 * exactly what was not delivered. On restart the committed identity is looked up among
 * `x.log` and its rotated siblings.
 */
import { createHash } from "node:crypto";
import type { Stats } from "node:fs";
import { type FileHandle, open, readdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { type AssembleResult, assemble, type ChunkAssembler, type MultilineOptions } from "./assembler.js";
import type { LineDecoder } from "./line-format.js";
import type { NdjsonBatch } from "./ndjson.js";
import type { LogRecord } from "./record.js";

export const FINGERPRINT_BYTES = 1024;

export interface FilePosition {
  /** The logical path (`x.log`), whatever name the file has now. */
  path: string;
  dev: number;
  ino: number;
  /** sha1 (hex) of the first `fpLen` bytes. */
  fp: string;
  fpLen: number;
  offset: number;
}

export interface TailBatch {
  records: LogRecord[];
  /** Instead of records: the batch serialised (an `assembler` that writes NDJSON). */
  ndjson?: NdjsonBatch;
  position: FilePosition;
  bytes: number;
}

export interface TailOptions {
  decode: LineDecoder;
  multiline?: MultilineOptions;
  /** How long an open partial/multiline record may wait at the end of the file (ms). */
  flushTimeoutMs: number;
  /** How long a new file at the path must exist before we leave the old one (ms). */
  rotationGraceMs: number;
  chunkBytes: number;
  maxChunkBytes: number;
  maxRecordBytes: number;
  /** Replaces assemble() over decode/multiline (the native NDJSON path, ndjson-assembler.ts). */
  assembler?: ChunkAssembler;
  /**
   * With no committed position, start at the oldest rotated file (`x.log.*`), not `x.log`: a
   * container log rotated before we first saw it is read whole.
   */
  fromOldestRotated?: boolean;
}

export const DEFAULT_TAIL_OPTIONS: Omit<TailOptions, "decode"> = {
  flushTimeoutMs: 2000,
  rotationGraceMs: 300,
  chunkBytes: 256 * 1024,
  maxChunkBytes: 8 * 1024 * 1024,
  maxRecordBytes: 1024 * 1024,
};

interface Current {
  fh: FileHandle;
  dev: number;
  ino: number;
  fp: string;
  fpLen: number;
  offset: number;
}

interface Sibling {
  name: string;
  st: Stats;
}

/** How many times a look at the rotated files is repeated while they are being renamed. */
const RELOOKS = 20;

const sameLook = (a: Sibling[], b: Sibling[]) =>
  a.length === b.length &&
  a.every((s, i) => s.name === b[i]!.name && s.st.ino === b[i]!.st.ino && s.st.dev === b[i]!.st.dev);

const isRotatedName = (name: string, base: string) =>
  name.startsWith(`${base}.`) && !name.endsWith(".gz") && !name.includes(".tmp");

export class FileTail {
  private cur: Current | undefined;
  private chunk: number;
  private pendingSince: number | undefined;
  private newFileSeen: { ino: number; at: number } | undefined;
  private closed = false;
  private buf = Buffer.alloc(0);

  constructor(
    readonly path: string,
    private readonly opts: TailOptions,
  ) {
    this.chunk = opts.chunkBytes;
  }

  /** Where reading stands (what a checkpoint records after an ack). */
  position(): FilePosition | undefined {
    const c = this.cur;
    return c && { path: this.path, dev: c.dev, ino: c.ino, fp: c.fp, fpLen: c.fpLen, offset: c.offset };
  }

  /**
   * Opens at a committed position (looked up among the rotated files too); without one, at
   * the start, or with `tailBytes` at the first line that starts in the file's last
   * `tailBytes` bytes (iLogtail's TailSizeKB for files that were there before the pipeline).
   */
  async open(from?: FilePosition, tailBytes?: number): Promise<void> {
    if (from) {
      for (const { name, st } of await this.siblings()) {
        if (st.dev !== from.dev || st.ino !== from.ino) continue;
        const cur = await this.openFile(join(dirname(this.path), name), st).catch(() => undefined);
        if (!cur) continue;
        if (cur.fpLen >= from.fpLen && (await fingerprint(cur.fh, from.fpLen)) === from.fp) {
          cur.offset = st.size >= from.offset ? from.offset : 0;
          this.cur = cur;
          return;
        }
        await cur.fh.close();
      }
    } else if (this.opts.fromOldestRotated) {
      const base = basename(this.path);
      // A writer rotating many times a second (Docker's json-file) renames files between our
      // look and our open: look again rather than skip to the path and lose the rotated ones.
      for (let tries = 0; tries < RELOOKS; tries++) {
        const oldest = (await this.siblings()).filter((s) => s.name !== base).sort(olderFirst)[0];
        if (!oldest) break;
        this.cur = await this.openFile(join(dirname(this.path), oldest.name), oldest.st).catch(
          () => undefined,
        );
        if (this.cur) return;
      }
    }
    const c = await this.openPath();
    if (c && tailBytes !== undefined) c.offset = await lineStartNear(c.fh, tailBytes);
  }

  /**
   * Bytes not yet committed: the rest of the file in hand, plus the file at the path when we
   * are still in a rotated one (rotated files between the two are not counted).
   */
  async lag(): Promise<number> {
    const c = this.cur;
    const atPath = await stat(this.path).catch(() => undefined);
    if (!c) return atPath?.size ?? 0;
    const size = await c.fh.stat().then(
      (st) => st.size,
      () => c.offset,
    );
    const other = atPath && !(atPath.dev === c.dev && atPath.ino === c.ino) ? atPath.size : 0;
    return Math.max(0, size - c.offset) + other;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.cur?.fh.close().catch(() => {});
    this.cur = undefined;
  }

  /** Commits a batch returned by next(): reading goes on after it. */
  async ack(batch: TailBatch): Promise<void> {
    const c = this.cur;
    if (!c || c.ino !== batch.position.ino || c.dev !== batch.position.dev) return;
    c.offset = batch.position.offset;
    this.chunk = this.opts.chunkBytes;
    this.pendingSince = undefined;
    if (c.fpLen < FINGERPRINT_BYTES && c.offset > c.fpLen) await this.refreshFingerprint(c);
  }

  /**
   * The next batch, or undefined when there is nothing to read now. `final`: the writer is
   * gone (the container exited): open records are closed at the end, and no grace is given.
   */
  async next(final = false): Promise<TailBatch | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      const c = this.cur ?? (await this.openPath());
      if (!c) return undefined;
      if (c.offset > 0 && (await this.truncated(c))) continue;
      if (this.buf.length !== this.chunk) this.buf = Buffer.allocUnsafe(this.chunk);
      const buf = this.buf; // records hold strings only: the buffer is reused
      const { bytesRead } = await c.fh.read(buf, 0, this.chunk, c.offset);
      const data = buf.subarray(0, bytesRead);
      const full = bytesRead === this.chunk;
      if (bytesRead > 0) {
        const r = this.assemble(data, full && this.chunk >= this.opts.maxChunkBytes);
        if (r.consumed > 0) return this.batch(c, r);
        if (full) {
          this.chunk = Math.min(this.chunk * 2, this.opts.maxChunkBytes);
          continue;
        }
      }
      // At the end of the file (maybe with an open record).
      const rotated = await this.rotated(c, final);
      if (bytesRead > 0) {
        const now = Date.now();
        this.pendingSince ??= now;
        if (final || rotated || now - this.pendingSince >= this.opts.flushTimeoutMs) {
          return this.batch(c, this.assemble(data, true));
        }
        return undefined;
      }
      if (!rotated) return undefined;
      await this.switchFile(c);
    }
  }

  private assemble(data: Buffer, force: boolean): AssembleResult {
    if (this.opts.assembler) return this.opts.assembler(data, force);
    return assemble(data, {
      decode: this.opts.decode,
      multiline: this.opts.multiline,
      maxRecordBytes: this.opts.maxRecordBytes,
      force,
    });
  }

  private batch(c: Current, r: AssembleResult): TailBatch {
    return {
      records: r.records,
      ndjson: r.ndjson,
      bytes: r.consumed,
      position: {
        path: this.path,
        dev: c.dev,
        ino: c.ino,
        fp: c.fp,
        fpLen: c.fpLen,
        offset: c.offset + r.consumed,
      },
    };
  }

  /** A file at the path that is not ours, which has been there for the grace period. */
  private async rotated(c: Current, final: boolean): Promise<boolean> {
    const st = await stat(this.path).catch(() => undefined);
    if (!st || (st.dev === c.dev && st.ino === c.ino)) {
      this.newFileSeen = undefined;
      return false;
    }
    const now = Date.now();
    if (this.newFileSeen?.ino !== st.ino) this.newFileSeen = { ino: st.ino, at: now };
    return final || now - this.newFileSeen.at >= this.opts.rotationGraceMs;
  }

  /** Shrunk below our offset, or first bytes no longer ours (copytruncate then new writes). */
  private async truncated(c: Current): Promise<boolean> {
    const st = await c.fh.stat();
    const changed = st.size < c.offset || (c.fpLen > 0 && (await fingerprint(c.fh, c.fpLen)) !== c.fp);
    if (!changed) return false;
    this.pendingSince = undefined;
    const copy = await this.findCopy(c);
    if (copy) {
      // The rest of what we were reading is in the copy; the path is taken up after it.
      await c.fh.close().catch(() => {});
      copy.offset = c.offset;
      this.cur = copy;
      return true;
    }
    c.offset = 0;
    await this.refreshFingerprint(c);
    return true;
  }

  /** logrotate's copy of `c` (copytruncate): a sibling that begins as `c` did and goes past our offset. */
  private async findCopy(c: Current): Promise<Current | undefined> {
    if (c.fpLen === 0) return undefined;
    const candidates = (await this.siblings())
      .filter((s) => !(s.st.dev === c.dev && s.st.ino === c.ino) && s.st.size > c.offset)
      .sort((a, b) => b.st.mtimeMs - a.st.mtimeMs);
    for (const { name, st } of candidates) {
      const cur = await this.openFile(join(dirname(this.path), name), st).catch(() => undefined);
      if (!cur) continue;
      if (cur.fpLen >= c.fpLen && (await fingerprint(cur.fh, c.fpLen)) === c.fp) return cur;
      await cur.fh.close().catch(() => {});
    }
    return undefined;
  }

  /** Leaves the finished file for the next newer rotated sibling, or the path itself. */
  private async switchFile(c: Current): Promise<void> {
    const base = basename(this.path);
    this.pendingSince = undefined;
    this.newFileSeen = undefined;
    for (let tries = 0; tries < RELOOKS; tries++) {
      const sibs = await this.siblings();
      const mine = sibs.find((s) => s.st.dev === c.dev && s.st.ino === c.ino);
      if (!mine || mine.name === base) break;
      // Rotated files written after ours (several rotations since we last looked), oldest first.
      const newer = sibs
        .filter((s) => s.name !== base && s.name !== mine.name && olderFirst(mine, s) < 0)
        .sort(olderFirst)[0];
      if (!newer) break;
      const next = await this.openFile(join(dirname(this.path), newer.name), newer.st).catch(() => undefined);
      if (next) {
        await c.fh.close().catch(() => {});
        this.cur = next;
        return;
      }
      // Renamed between the look and the open: look again.
    }
    await c.fh.close().catch(() => {});
    this.cur = undefined;
    await this.openPath();
  }

  private async openPath(): Promise<Current | undefined> {
    const st = await stat(this.path).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    this.cur = await this.openFile(this.path, st).catch(() => undefined);
    return this.cur;
  }

  private async openFile(path: string, expect: Stats): Promise<Current> {
    const fh = await open(path, "r");
    const st = await fh.stat();
    if (st.ino !== expect.ino || st.dev !== expect.dev) {
      await fh.close();
      throw new Error(`${path} changed while opening`);
    }
    const cur: Current = { fh, dev: st.dev, ino: st.ino, fp: "", fpLen: 0, offset: 0 };
    await this.refreshFingerprint(cur);
    return cur;
  }

  private async refreshFingerprint(c: Current): Promise<void> {
    const buf = Buffer.alloc(FINGERPRINT_BYTES);
    const { bytesRead } = await c.fh.read(buf, 0, FINGERPRINT_BYTES, 0);
    c.fpLen = bytesRead;
    c.fp = createHash("sha1").update(buf.subarray(0, bytesRead)).digest("hex");
  }

  /** `x.log` and its rotated files: looked at until two looks agree (no rename in between). */
  private async siblings(): Promise<Sibling[]> {
    let prev = await this.lookSiblings();
    for (let tries = 0; tries < RELOOKS; tries++) {
      const next = await this.lookSiblings();
      if (sameLook(prev, next)) return next;
      prev = next;
    }
    return prev;
  }

  private async lookSiblings(): Promise<Sibling[]> {
    const dir = dirname(this.path);
    const base = basename(this.path);
    const names = (await readdir(dir).catch(() => [] as string[])).sort();
    const out: Sibling[] = [];
    for (const name of names) {
      if (name !== base && !isRotatedName(name, base)) continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile()) out.push({ name, st });
    }
    return out;
  }
}

/**
 * Rotated files, oldest first: by mtime, and for files rotated within one clock tick (same
 * mtime) by name — Docker's json-file and logrotate number them `.1` (newest), `.2`, …, the
 * kubelet stamps them with the time (later sorts after).
 */
function olderFirst(a: { name: string; st: Stats }, b: { name: string; st: Stats }): number {
  if (a.st.mtimeMs !== b.st.mtimeMs) return a.st.mtimeMs - b.st.mtimeMs;
  const na = /\.(\d+)$/.exec(a.name)?.[1];
  const nb = /\.(\d+)$/.exec(b.name)?.[1];
  if (na !== undefined && nb !== undefined && na.length < 6 && nb.length < 6) return Number(nb) - Number(na);
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

async function fingerprint(fh: FileHandle, len: number): Promise<string> {
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fh.read(buf, 0, len, 0);
  return createHash("sha1").update(buf.subarray(0, bytesRead)).digest("hex");
}

/** The offset of the first line that starts in the last `tailBytes` bytes (or the end). */
async function lineStartNear(fh: FileHandle, tailBytes: number): Promise<number> {
  const { size } = await fh.stat();
  if (size <= tailBytes) return 0;
  const buf = Buffer.allocUnsafe(64 * 1024);
  // From the byte before the window: a newline there means the window starts a line.
  for (let at = size - tailBytes - 1; at < size; ) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, at);
    if (bytesRead === 0) break;
    const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
    if (nl >= 0) return at + nl + 1;
    at += bytesRead;
  }
  return size;
}
