/**
 * Garbage collection: deletes blobs and snapshots that no image references and no pull or
 * import in progress holds a lease on. Runs at start-up (crash leftovers) and after removals.
 */
import type { Logger } from "../common/logger.js";
import type { ContentStore } from "./content-store.js";
import type { ImageStore } from "./image-store.js";
import type { Leases } from "./leases.js";
import type { SnapshotStore } from "./snapshots.js";

export interface GcDeps {
  content: ContentStore;
  snapshots: SnapshotStore;
  images: ImageStore;
  leases: Leases;
  logger: Logger;
}

export interface GcResult {
  blobs: number;
  snapshots: number;
}

function referenced(images: ImageStore): { blobs: Set<string>; chains: Set<string> } {
  const blobs = new Set<string>();
  const chains = new Set<string>();
  for (const img of images.list()) {
    blobs.add(img.id);
    blobs.add(img.manifestDigest);
    if (img.indexDigest) blobs.add(img.indexDigest);
    for (const l of img.layers) {
      blobs.add(l.digest);
      chains.add(l.chainId);
    }
  }
  return { blobs, chains };
}

export async function collectGarbage(deps: GcDeps): Promise<GcResult> {
  const { content, snapshots, images, leases } = deps;
  const result: GcResult = { blobs: 0, snapshots: 0 };
  // References are read again right before each deletion (no await in between), so an image
  // saved by a concurrent pull while this runs is never robbed of its content.
  for (const snap of snapshots.list()) {
    if (leases.has(snap.chainId) || referenced(images).chains.has(snap.chainId)) continue;
    await snapshots.remove(snap.chainId);
    result.snapshots++;
  }
  for (const digest of await content.list()) {
    if (leases.has(digest) || referenced(images).blobs.has(digest)) continue;
    await content.delete(digest);
    result.blobs++;
  }
  if (result.blobs || result.snapshots) deps.logger.info(result, "garbage collected");
  return result;
}
