/**
 * Content digests, in one place: computing them (sha256, sha512), checking names, verifying
 * buffers and streams against a descriptor, and chain ids of layer stacks.
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { dataLoss, invalidArgument } from "../common/errors.js";
import { validateDigest } from "./reference.js";

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Only sha256 digests are accepted (as by containerd's default). */
export function assertDigest(digest: string, what = "digest"): string {
  if (!DIGEST_RE.test(digest))
    throw invalidArgument(`invalid ${what} "${digest}": want sha256:<64 hex digits>`);
  return digest;
}

export function digestHex(digest: string): string {
  return assertDigest(digest).slice("sha256:".length);
}

export function sha256(data: Buffer | string): string {
  return computeDigest(data, "sha256");
}

/**
 * Chain ids name a stack of layers: chain(L1) = diff(L1), chain(L1..Ln) =
 * sha256(chain(L1..Ln-1) + " " + diff(Ln)), per the OCI image spec.
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diff of diffIds) {
    const parent = out[out.length - 1];
    out.push(parent === undefined ? diff : sha256(`${parent} ${diff}`));
  }
  return out;
}

/** A pass-through stream that hashes what flows through it (`digest` once it has ended). */
export class DigestStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  private result: string | undefined;
  size = 0;

  /** `onChunk` is told the size of each chunk that passes. */
  constructor(private readonly onChunk?: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    this.onChunk?.(chunk.length);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = `sha256:${this.hash.digest("hex")}`;
    cb();
  }

  get digest(): string {
    if (this.result === undefined) throw new Error("digest read before the stream ended");
    return this.result;
  }
}

/** Throws dataLoss ("<what>: digest mismatch: want …, got …") unless `got` is `expected`. */
export function checkDigest(got: string, expected: string, what: string): void {
  if (got !== expected) throw dataLoss(`${what}: digest mismatch: want ${expected}, got ${got}`);
}

/** "sha256:<hex>" of `data` (algorithm sha256 or sha512). */
export function computeDigest(data: Uint8Array | string, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}

function algorithmOf(digest: string): "sha256" | "sha512" {
  validateDigest(digest);
  return digest.startsWith("sha512:") ? "sha512" : "sha256";
}

/**
 * Throws dataLoss unless `data` has the expected digest (and size, when given):
 * "digest mismatch for sha256:…: got sha256:…".
 */
export function verifyBytes(data: Uint8Array, digest: string, size?: number): void {
  if (size !== undefined && data.length !== size) {
    throw dataLoss(`size mismatch for ${digest}: expected ${size} bytes, got ${data.length}`);
  }
  const got = computeDigest(data, algorithmOf(digest));
  if (got !== digest) throw dataLoss(`digest mismatch for ${digest}: got ${got}`);
}

/**
 * Pass-through Transform that hashes everything flowing through it and fails the stream with
 * dataLoss at the end if the digest (or the size, when given) differs from what was expected.
 * It also fails early as soon as more than `size` bytes arrive.
 *
 *   await pipeline(await client.fetchBlob(ref, desc), new DigestVerifier(desc.digest, desc.size), out);
 */
export class DigestVerifier extends Transform {
  readonly expectedDigest: string;
  readonly expectedSize: number | undefined;
  private readonly hash: Hash;
  private readonly algorithm: "sha256" | "sha512";
  private received = 0;
  private computed: string | undefined;

  constructor(expectedDigest: string, expectedSize?: number) {
    super();
    this.algorithm = algorithmOf(expectedDigest);
    this.expectedDigest = expectedDigest;
    this.expectedSize = expectedSize;
    this.hash = createHash(this.algorithm);
  }

  /** Bytes seen so far. */
  get bytesReceived(): number {
    return this.received;
  }

  /** The computed digest, available once the stream has ended. */
  get digest(): string | undefined {
    return this.computed;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.received += chunk.length;
    if (this.expectedSize !== undefined && this.received > this.expectedSize) {
      cb(
        dataLoss(
          `size mismatch for ${this.expectedDigest}: expected ${this.expectedSize} bytes, got more than that`,
        ),
      );
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.computed = `${this.algorithm}:${this.hash.digest("hex")}`;
    if (this.expectedSize !== undefined && this.received !== this.expectedSize) {
      cb(
        dataLoss(
          `size mismatch for ${this.expectedDigest}: expected ${this.expectedSize} bytes, got ${this.received}`,
        ),
      );
      return;
    }
    if (this.computed !== this.expectedDigest) {
      cb(dataLoss(`digest mismatch for ${this.expectedDigest}: got ${this.computed}`));
      return;
    }
    cb();
  }
}
