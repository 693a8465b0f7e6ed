/**
 * Content-addressed blob store: root/content/blobs/sha256/<hex>.
 * Writes go to root/content/ingest first and are renamed into blobs/ only after size and
 * digest check out (as containerd's local content store does), so a blob file is always
 * whole and verified. Leftover ingest files from a crash are removed at start-up.
 */
import { createHash, type Hash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, type WriteStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { Transform, type TransformCallback } from "node:stream";
import { dataLoss, errnoCode, notFound, resourceExhausted } from "../common/errors.js";
import { syncDir } from "../store/atomic.js";
import { assertDigest, digestHex } from "./digest.js";

export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;

  constructor(root: string) {
    this.blobsDir = join(root, "content", "blobs", "sha256");
    this.ingestDir = join(root, "content", "ingest");
  }

  async init(): Promise<void> {
    await rm(this.ingestDir, { recursive: true, force: true });
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    await mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
  }

  path(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  /** Size of a stored blob, or undefined. */
  async size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(digest))).size;
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return undefined;
      throw err;
    }
  }

  async read(digest: string, maxBytes: number): Promise<Buffer> {
    const size = await this.size(digest);
    if (size === undefined) throw notFound(`blob ${digest} not found`);
    if (size > maxBytes) throw resourceExhausted(`blob ${digest} is ${size} bytes, more than ${maxBytes}`);
    return readFile(this.path(digest));
  }

  openRead(digest: string): Readable {
    return createReadStream(this.path(digest));
  }

  /** Stores a buffer after checking its digest. */
  async put(digest: string, data: Buffer): Promise<void> {
    if ((await this.size(digest)) === data.length) return;
    const w = this.ingest(digest, data.length);
    w.end(data);
    await w.commit();
  }

  /**
   * Starts writing a blob. Data written to the returned stream is passed through unchanged
   * (so it can feed a decompressor at the same time); `commit()` verifies and publishes it.
   * With `hashing` false the caller hashes the bytes itself (a layer's gzip job does) and
   * passes the digest it got to `commit()`.
   */
  ingest(expected: string, expectedSize?: number, hashing = true): IngestWriter {
    assertDigest(expected);
    return new IngestWriter(this, expected, expectedSize, hashing);
  }

  /** Starts writing a blob whose digest is not known in advance (imports). */
  ingestUnknown(): IngestWriter {
    return new IngestWriter(this, undefined, undefined, true);
  }

  async delete(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.blobsDir);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** Bytes and files used by all blobs. */
  async usage(): Promise<{ bytes: number; inodes: number }> {
    let bytes = 0;
    let inodes = 0;
    for (const name of await readdir(this.blobsDir)) {
      try {
        bytes += (await stat(join(this.blobsDir, name))).size;
        inodes++;
      } catch {}
    }
    return { bytes, inodes };
  }
}

/** A pass-through stream that hashes and saves what flows through it. */
export class IngestWriter extends Transform {
  private readonly hash: Hash | undefined;
  private readonly file: WriteStream;
  private readonly tmpPath: string;
  private written = 0;
  private state: "open" | "committed" | "aborted" = "open";
  private digest_: string | undefined;

  constructor(
    private readonly store: ContentStore,
    private readonly expected: string | undefined,
    private readonly expectedSize: number | undefined,
    hashing: boolean,
  ) {
    super();
    this.hash = hashing ? createHash("sha256") : undefined;
    this.tmpPath = join(store.ingestDir, randomBytes(12).toString("hex"));
    this.file = createWriteStream(this.tmpPath, { mode: 0o600, highWaterMark: 4 << 20 });
    this.file.on("error", (err) => this.destroy(err));
  }

  get size(): number {
    return this.written;
  }

  /** The digest of the bytes written, once the stream has ended (when this writer hashes). */
  get digest(): string {
    if (this.digest_ === undefined) throw new Error("ingest not finished, or hashed by the caller");
    return this.digest_;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.written += chunk.length;
    if (this.expectedSize !== undefined && this.written > this.expectedSize) {
      cb(dataLoss(`blob ${this.expected}: more data than the ${this.expectedSize} bytes announced`));
      return;
    }
    this.hash?.update(chunk);
    if (this.file.write(chunk)) cb(null, chunk);
    else this.file.once("drain", () => cb(null, chunk));
  }

  override _flush(cb: TransformCallback): void {
    if (this.hash) this.digest_ = `sha256:${this.hash.digest("hex")}`;
    cb();
  }

  /**
   * Waits for the data to be flushed, checks size and digest, and moves the blob into place.
   * `hashed`: the digest of the bytes, from a caller that hashed them (ingest with `hashing`
   * false).
   */
  async commit(hashed?: string): Promise<string> {
    if (this.state !== "open") throw new Error(`ingest already ${this.state}`);
    // Nobody reads the pass-through side when the blob is only stored: drain it.
    if (this.readableFlowing === null) this.resume();
    if (!this.writableFinished) {
      await new Promise<void>((resolve, reject) => {
        this.once("finish", resolve);
        this.once("error", reject);
      });
    }
    await new Promise<void>((resolve, reject) => {
      this.file.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
    try {
      const digest = this.hash ? this.digest : hashed;
      if (digest === undefined)
        throw new Error("ingest: the caller hashed this blob; commit() needs its digest");
      if (this.expected !== undefined && digest !== this.expected) {
        throw dataLoss(`digest mismatch for ${this.expected}: got ${digest}`);
      }
      if (this.expectedSize !== undefined && this.written !== this.expectedSize) {
        throw dataLoss(`size mismatch for ${digest}: got ${this.written} bytes, want ${this.expectedSize}`);
      }
      const fh = await open(this.tmpPath, "r");
      await fh.sync();
      await fh.close();
      await rename(this.tmpPath, this.store.path(digest));
      await syncDir(this.store.blobsDir);
      this.state = "committed";
      return digest;
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /** Drops the partial blob. Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.state === "committed") return;
    this.state = "aborted";
    if (!this.destroyed) this.destroy();
    await new Promise<void>((resolve) => {
      if (this.file.closed) resolve();
      else {
        this.file.once("close", () => resolve());
        this.file.destroy();
      }
    });
    await unlink(this.tmpPath).catch(() => {});
  }
}
