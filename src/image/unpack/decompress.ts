/**
 * Layer decompression: maps OCI / Docker layer media types to a streaming decompressor, and
 * sniffs compression by magic bytes for imports whose media type cannot be trusted (a
 * `docker save` tarball calls every layer `layer.tar`, whatever its bytes are).
 */
import { PassThrough, Transform, type TransformCallback } from "node:stream";
import { Decompress } from "fzstd";
import { type BerthError, dataLoss, invalidArgument } from "../../common/errors.js";
import { Gunzip } from "./gunzip.js";

export type Compression = "none" | "gzip" | "zstd";

const OCI = "application/vnd.oci.image.layer.v1.tar";
const OCI_FOREIGN = "application/vnd.oci.image.layer.nondistributable.v1.tar";
const DOCKER = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar";

const MEDIA_TYPES: ReadonlyMap<string, Compression> = new Map<string, Compression>([
  [OCI, "none"],
  [`${OCI}+gzip`, "gzip"],
  [`${OCI}+zstd`, "zstd"],
  [OCI_FOREIGN, "none"],
  [`${OCI_FOREIGN}+gzip`, "gzip"],
  [`${OCI_FOREIGN}+zstd`, "zstd"],
  [DOCKER, "none"],
  [`${DOCKER}.gzip`, "gzip"],
  [`${DOCKER_FOREIGN}.gzip`, "gzip"],
]);

/** Every layer media type Berth can unpack. */
export const LAYER_MEDIA_TYPES: readonly string[] = [...MEDIA_TYPES.keys()];

/** The compression a layer media type declares; InvalidArgument for anything that is not a layer. */
export function layerCompression(mediaType: string): Compression {
  const compression = MEDIA_TYPES.get(mediaType.trim().toLowerCase());
  if (compression === undefined) {
    throw invalidArgument(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  }
  return compression;
}

export function decompressorFor(compression: Compression): Transform {
  switch (compression) {
    case "gzip":
      return new Gunzip();
    case "zstd":
      return new ZstdDecompress();
    case "none":
      return new PassThrough();
  }
}

/** Bytes needed by {@link detectCompression} to decide. */
export const SNIFF_BYTES = 4;

/**
 * Compression recognised from the first bytes of a blob: gzip (1f 8b), zstd (a frame, 28 b5 2f fd,
 * or a skippable frame, 5? 2a 4d 18), otherwise none. Give at least {@link SNIFF_BYTES} bytes unless
 * the blob is shorter.
 */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length < 4) return "none";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  const skippable =
    ((head[0] ?? 0) & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18;
  return skippable ? "zstd" : "none";
}

/**
 * A Transform that sniffs the first bytes (see {@link detectCompression}) and decompresses
 * accordingly; for imports where the declared media type may say plain tar while the bytes are
 * compressed.
 */
export function sniffingDecompressor(): Transform {
  return new SniffingDecompress();
}

/** Streaming zstd via fzstd (Node 20's zlib has no zstd). Errors surface as DataLoss. */
class ZstdDecompress extends Transform {
  private readonly zstd = new Decompress((data) => {
    if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.zstd.push(chunk);
      done();
    } catch (err) {
      done(zstdError(err));
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.zstd.push(new Uint8Array(0), true);
      done();
    } catch (err) {
      done(zstdError(err));
    }
  }
}

function zstdError(err: unknown): BerthError {
  const msg = err instanceof Error ? err.message : String(err);
  return dataLoss(`zstd: corrupt or truncated layer stream: ${msg}`, err);
}

/** Buffers until SNIFF_BYTES arrived (or the input ended), then forwards through the chosen decompressor. */
class SniffingDecompress extends Transform {
  private head: Buffer[] = [];
  private headLength = 0;
  private inner: Transform | undefined;
  private innerDone: Promise<void> | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.inner) {
      this.forward(chunk, done);
      return;
    }
    this.head.push(chunk);
    this.headLength += chunk.length;
    if (this.headLength < SNIFF_BYTES) {
      done();
      return;
    }
    this.start();
    this.forward(this.takeHead(), done);
  }

  override _flush(done: TransformCallback): void {
    let inner = this.inner;
    if (!inner) {
      inner = this.start();
      const head = this.takeHead();
      if (head.length > 0) inner.write(head);
    }
    inner.end();
    this.innerDone?.then(
      () => done(),
      (err: unknown) => done(err as Error),
    );
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.inner?.destroy();
    done(err);
  }

  private start(): Transform {
    const inner = decompressorFor(detectCompression(Buffer.concat(this.head, this.headLength)));
    this.inner = inner;
    inner.on("data", (data: Buffer) => {
      if (!this.push(data)) inner.pause();
    });
    this.innerDone = new Promise<void>((resolve, reject) => {
      inner.once("end", resolve);
      inner.once("error", reject);
    });
    // The inner transform may fail at any time; surface it even while no flush is pending.
    this.innerDone.catch((err: unknown) => this.destroy(err as Error));
    return inner;
  }

  override _read(size: number): void {
    this.inner?.resume();
    super._read(size);
  }

  private takeHead(): Buffer {
    const head = Buffer.concat(this.head, this.headLength);
    this.head = [];
    this.headLength = 0;
    return head;
  }

  private forward(chunk: Buffer, done: TransformCallback): void {
    const inner = this.inner!;
    if (inner.write(chunk)) done();
    else inner.once("drain", () => done());
  }
}
