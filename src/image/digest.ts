import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { dataLoss, invalidArgument } from "../common/errors.js";

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
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
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

/** A pass-through stream that hashes what flows through it; `verify()` checks the result. */
export class DigestStream extends Transform {
  private readonly hash: Hash = createHash("sha256");
  private result: string | undefined;
  size = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    this.hash.update(chunk);
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

  verify(expected: string, what: string): void {
    if (this.digest !== expected)
      throw dataLoss(`${what}: digest mismatch: want ${expected}, got ${this.digest}`);
  }
}
