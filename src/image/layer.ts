/**
 * Turns one layer blob into a committed snapshot, in a single streaming pass:
 * source → (store blob) → decompress, hashing both sides → untar (layer-checks.ts).
 * Nothing is published until both digests check out: the blob is renamed into the content
 * store and the snapshot directory into place only after verification; on any failure both
 * are thrown away.
 */
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { abortReason, dataLoss, errnoCode, isBerthError } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ContentStore } from "./content-store.js";
import { layerChecks } from "./layer-checks.js";
import type { SnapshotStore } from "./snapshots.js";
import { applyLayer } from "./unpack/apply.js";
import { layerCompression } from "./unpack/decompress.js";

export interface LayerSpec {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  chainId: string;
  parent?: string;
}

export interface LayerDeps {
  content: ContentStore;
  snapshots: SnapshotStore;
  logger: Logger;
}

export interface EnsureOptions {
  /** Opens the compressed blob (e.g. a registry download); called only when the blob is not stored. */
  open: () => Promise<Readable>;
  /** Keep the compressed blob in the content store (default true). */
  keepBlob: boolean;
  /** Stops the download and unpack; the partial blob and snapshot are thrown away. */
  signal?: AbortSignal;
}

export async function unpackLayerToSnapshot(
  deps: LayerDeps,
  layer: LayerSpec,
  opts: EnsureOptions,
): Promise<void> {
  const { content, snapshots } = deps;
  const { signal } = opts;
  if (snapshots.has(layer.chainId)) return;
  if (signal?.aborted) throw abortReason(signal);
  const compression = layerCompression(layer.mediaType);
  const stored = (await content.size(layer.digest)) !== undefined;
  const source = stored ? content.openRead(layer.digest) : await opts.open();
  const checks = layerChecks(layer, compression, stored || !opts.keepBlob ? undefined : content);
  const prepared = await snapshots.prepare();
  const started = Date.now();
  try {
    const feed = pipeline([source, ...checks.stages], { signal });
    feed.catch(() => {});
    const apply = applyLayer(checks.tar, prepared.fsDir).then(
      (usage) => {
        // Bytes after the tar end-of-archive marker still count for the diff id.
        checks.tar.resume();
        return usage;
      },
      (err: unknown) => {
        // The unpacker refused the content: stop the download too.
        checks.tar.destroy();
        throw err;
      },
    );
    const [fed, applied] = await Promise.allSettled([feed, apply]);
    if (fed.status === "rejected" || applied.status === "rejected") {
      source.destroy();
      if (signal?.aborted) throw abortReason(signal);
      const applyErr = applied.status === "rejected" ? applied.reason : undefined;
      const feedErr = fed.status === "rejected" ? fed.reason : undefined;
      // The download side's own error is the cause, unless it only saw the unpacker stop it.
      const feedCaused = feedErr !== undefined && errnoCode(feedErr) !== "ERR_STREAM_PREMATURE_CLOSE";
      throw layerFailure(layer.digest, feedCaused ? feedErr : (applyErr ?? feedErr));
    }
    const usage = applied.value;
    await checks.commit();
    await prepared.commit({
      chainId: layer.chainId,
      diffId: layer.diffId,
      ...(layer.parent ? { parent: layer.parent } : {}),
      bytes: usage.bytes,
      inodes: usage.inodes,
    });
    deps.logger.debug(
      { layer: layer.digest, ms: Date.now() - started, bytes: usage.bytes },
      "layer unpacked",
    );
  } catch (err) {
    await prepared.abort();
    await checks.abort();
    throw err;
  }
}

/**
 * The error to report for a failed layer: whichever side failed first. A typed error (an
 * unpacker refusal naming the entry, a registry error) is kept; anything else — a stream that
 * cannot be decompressed or parsed — means the layer is corrupt or does not match its digest.
 */
function layerFailure(digest: string, err: unknown): unknown {
  if (isBerthError(err) && err.code !== "Internal") return err;
  return dataLoss(`layer ${digest} is corrupt: ${err instanceof Error ? err.message : String(err)}`, err);
}
