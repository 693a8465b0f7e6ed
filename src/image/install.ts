/**
 * The last half of a pull or import, shared by both: given a verified manifest and config,
 * bring every layer into a snapshot (in parallel, streaming) and only then save the image
 * record. Leases keep the pieces from garbage collection until the record exists, so a
 * crash or failure midway never leaves a half-made image, only garbage for the next GC.
 */
import type { Readable } from "node:stream";
import { mapLimit, type SingleFlight } from "../common/concurrency.js";
import { invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ContentStore } from "./content-store.js";
import { chainIds } from "./digest.js";
import { collectGarbage } from "./gc.js";
import type { ImageRecord, ImageStore, LayerRecord } from "./image-store.js";
import { unpackLayerToSnapshot } from "./layer.js";
import type { Leases } from "./leases.js";
import { layerCompression } from "./registry/media-types.js";
import type { Descriptor, ImageConfig, ImageManifest } from "./registry/oci.js";
import { formatPlatform } from "./registry/platform.js";
import type { SnapshotStore } from "./snapshots.js";

export interface InstallDeps {
  content: ContentStore;
  snapshots: SnapshotStore;
  images: ImageStore;
  leases: Leases;
  logger: Logger;
  /** Shared by all pulls and imports: one unpack per chain id at a time. */
  unpacks: SingleFlight<void>;
  maxConcurrentDownloads: number;
  keepLayerBlobs: boolean;
}

export interface InstallRequest {
  manifest: ImageManifest;
  manifestDigest: string;
  manifestBytes: Buffer;
  index?: { digest: string; bytes: Buffer };
  config: ImageConfig;
  configDigest: string;
  configBytes: Buffer;
  repoTags: string[];
  repoDigests: string[];
  /**
   * Opens a layer blob that is not in the content store yet. `signal` is the layer's own (a layer
   * unpack may be shared with other pulls, and outlive this one): the download must follow it.
   */
  openLayer: (desc: Descriptor, signal: AbortSignal) => Promise<Readable>;
  /** Aborts the install: downloads and unpacks stop, and what was stored is collected. */
  signal?: AbortSignal;
  /** Extra lease keys the caller wants held until the record is saved. */
  held?: string[];
}

export function layerRecords(manifest: ImageManifest, config: ImageConfig): LayerRecord[] {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw invalidArgument(
      `image config lists ${diffIds.length} diff ids but the manifest has ${manifest.layers.length} layers`,
    );
  }
  const chains = chainIds(diffIds);
  return manifest.layers.map((l, i) => {
    if (layerCompression(l.mediaType) === undefined) {
      throw invalidArgument(`layer ${l.digest} has unsupported media type "${l.mediaType}"`);
    }
    return {
      digest: l.digest,
      mediaType: l.mediaType,
      size: l.size,
      diffId: diffIds[i]!,
      chainId: chains[i]!,
    };
  });
}

export async function installImage(deps: InstallDeps, req: InstallRequest): Promise<ImageRecord> {
  const layers = layerRecords(req.manifest, req.config);
  const release = deps.leases.acquire([
    req.manifestDigest,
    req.configDigest,
    ...(req.index ? [req.index.digest] : []),
    ...layers.flatMap((l) => [l.digest, l.chainId]),
    ...(req.held ?? []),
  ]);
  try {
    await deps.content.put(req.configDigest, req.configBytes);
    await mapLimit(layers, deps.maxConcurrentDownloads, (layer, i) =>
      deps.unpacks.run(
        layer.chainId,
        (signal) =>
          unpackLayerToSnapshot(
            deps,
            { ...layer, ...(i > 0 ? { parent: layers[i - 1]!.chainId } : {}) },
            {
              open: () => req.openLayer(req.manifest.layers[i]!, signal),
              keepBlob: deps.keepLayerBlobs,
              signal,
            },
          ),
        req.signal,
      ),
    );
    await deps.content.put(req.manifestDigest, req.manifestBytes);
    if (req.index) await deps.content.put(req.index.digest, req.index.bytes);
    const now = new Date().toISOString();
    return await deps.images.put({
      id: req.configDigest,
      repoTags: req.repoTags,
      repoDigests: req.repoDigests,
      manifestDigest: req.manifestDigest,
      ...(req.index ? { indexDigest: req.index.digest } : {}),
      mediaType: req.manifest.mediaType,
      size: req.manifestBytes.length + req.configBytes.length + layers.reduce((n, l) => n + l.size, 0),
      layers,
      platform: formatPlatform({
        os: req.config.os,
        architecture: req.config.architecture,
        ...(req.config.variant ? { variant: req.config.variant } : {}),
      }),
      user: req.config.config?.User ?? "",
      createdAt: now,
      updatedAt: now,
    });
  } catch (err) {
    release();
    // Drop what this attempt stored: a failed pull leaves nothing behind.
    await collectGarbage(deps).catch((gcErr: unknown) =>
      deps.logger.warn({ err: gcErr }, "gc after failed install"),
    );
    throw err;
  } finally {
    release();
  }
}
