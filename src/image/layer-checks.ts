/**
 * What a layer blob flows through between its source and the untar: storing it (when it is
 * kept), decompressing it, and the two digests that are checked before anything is published
 * (the blob's digest and size, the diff id of the uncompressed tar). gzip layers take one
 * stage for all of it but the storing: the native inflater hashes both sides on the thread
 * pool. Other layers hash on the JS thread around their decompressor.
 */
import type { Readable, Transform } from "node:stream";
import { dataLoss } from "../common/errors.js";
import { noteStreamed } from "../common/memory.js";
import type { ContentStore, IngestWriter } from "./content-store.js";
import { checkDigest, DigestStream } from "./digest.js";
import type { LayerSpec } from "./layer.js";
import { type Compression, decompressorFor } from "./unpack/decompress.js";
import { Gunzip } from "./unpack/gunzip.js";

export interface LayerChecks {
  /** The stages after the source, in order; the last one gives the tar. */
  readonly stages: [Transform, ...Transform[]];
  readonly tar: Readable;
  /** After the streams ended: checks both digests and the size, then stores the blob if kept. */
  commit(): Promise<void>;
  /** Drops the partial blob, if one was being stored. */
  abort(): Promise<void>;
}

/** `store`: the content store to keep the blob in, or undefined when it is not kept. */
export function layerChecks(layer: LayerSpec, compression: Compression, store?: ContentStore): LayerChecks {
  const what = `layer ${layer.digest}`;
  if (compression === "gzip") {
    const gunzip = new Gunzip({ digests: true, onOutput: noteStreamed });
    const blob = store?.ingest(layer.digest, layer.size, false);
    return {
      stages: blob ? [blob, gunzip] : [gunzip],
      tar: gunzip,
      async commit() {
        const { input, output } = gunzip.digests;
        checkBlob(what, layer, input, gunzip.size);
        checkDiff(what, layer, output);
        await blob?.commit(input);
      },
      async abort() {
        await blob?.abort();
      },
    };
  }
  const blob: IngestWriter | DigestStream = store
    ? store.ingest(layer.digest, layer.size)
    : new DigestStream();
  // The uncompressed side paces the pull's scavenges (see noteStreamed).
  const diff = new DigestStream(noteStreamed);
  return {
    stages: [blob, decompressorFor(compression), diff],
    tar: diff,
    async commit() {
      if (blob instanceof DigestStream) checkBlob(what, layer, blob.digest, blob.size);
      checkDiff(what, layer, diff.digest);
      if (!(blob instanceof DigestStream)) await blob.commit();
    },
    async abort() {
      if (!(blob instanceof DigestStream)) await blob.abort();
    },
  };
}

function checkBlob(what: string, layer: LayerSpec, digest: string, size: number): void {
  checkDigest(digest, layer.digest, what);
  if (size !== layer.size) throw dataLoss(`${what}: size mismatch: want ${layer.size}, got ${size}`);
}

function checkDiff(what: string, layer: LayerSpec, digest: string): void {
  checkDigest(digest, layer.diffId, `${what}: uncompressed content does not match diff id`);
}
