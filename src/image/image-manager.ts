/**
 * The image subsystem behind the CRI ImageService and Berth's Import: owns the content store,
 * snapshots and image metadata, and answers lookups, removal and usage.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { SingleFlight } from "../common/concurrency.js";
import { failedPrecondition, invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { BerthConfig } from "../config/config.js";
import { ContentStore } from "./content-store.js";
import { collectGarbage, type GcResult } from "./gc.js";
import { type ImageRecord, ImageStore } from "./image-store.js";
import { importArchive } from "./import.js";
import type { InstallDeps } from "./install.js";
import { Leases } from "./leases.js";
import { type PullAuth, Puller, type PullProgress } from "./pull.js";
import { formatRef, parseReference } from "./reference.js";
import { SnapshotStore } from "./snapshots.js";

export interface ImageManagerOptions {
  config: BerthConfig;
  logger: Logger;
  /** Told about every pull: its outcome and the compressed bytes of the image. */
  onPull?: (ok: boolean, bytes: number) => void;
}

export class ImageManager {
  readonly content: ContentStore;
  readonly snapshots: SnapshotStore;
  readonly images: ImageStore;
  readonly leases = new Leases();
  private readonly unpacks = new SingleFlight<void>();
  private readonly puller: Puller;
  /** Set by the daemon: the id of a container using the image, if any (such images stay). */
  inUseBy: ((imageId: string) => string | undefined) | undefined;
  private readonly logger: Logger;
  private readonly config: BerthConfig;
  private readonly onPull: ImageManagerOptions["onPull"];

  constructor(opts: ImageManagerOptions) {
    const { root } = opts.config;
    this.config = opts.config;
    this.onPull = opts.onPull;
    this.logger = opts.logger.child({ component: "image" });
    this.content = new ContentStore(root);
    this.snapshots = new SnapshotStore(root);
    this.images = new ImageStore(root);
    this.puller = new Puller(this.deps());
  }

  private deps(): InstallDeps & { config: BerthConfig } {
    return {
      content: this.content,
      snapshots: this.snapshots,
      images: this.images,
      leases: this.leases,
      logger: this.logger,
      unpacks: this.unpacks,
      maxConcurrentDownloads: this.config.image.maxConcurrentDownloads,
      keepLayerBlobs: !this.config.image.discardUnpackedLayers,
      config: this.config,
    };
  }

  async init(): Promise<void> {
    await mkdir(this.config.root, { recursive: true, mode: 0o700 });
    await this.content.init();
    await this.snapshots.init();
    await this.images.init();
    await this.gc();
  }

  /** Closes registry connections. */
  close(): Promise<void> {
    return this.puller.close();
  }

  gc(): Promise<GcResult> {
    return collectGarbage(this.deps());
  }

  /** `signal` (the PullImage call's) aborts the pull: see Puller. */
  async pull(ref: string, auth?: PullAuth, signal?: AbortSignal): Promise<ImageRecord> {
    try {
      const img = await this.puller.pull(ref, auth, signal);
      this.onPull?.(true, img.size);
      return img;
    } catch (err) {
      this.onPull?.(false, 0);
      throw err;
    }
  }

  /** The progress of a pull in flight (berth.v1 PullProgress). */
  pullProgress(ref: string): PullProgress | undefined {
    return this.puller.progressOf(ref);
  }

  import(archive: Readable, tag: string): Promise<ImageRecord[]> {
    return importArchive(this.deps(), archive, tag);
  }

  list(): ImageRecord[] {
    return this.images.list();
  }

  /** Finds an image by id, id prefix, tag or digest reference (short names normalised). */
  find(ref: string): ImageRecord | undefined {
    if (ref === "") throw invalidArgument("image reference is empty");
    return this.images.find(ref, normalize(ref));
  }

  /**
   * Removes an image. Asked by tag while the image has other tags, only that tag goes
   * (as in CRI-O and Docker); asked by id or digest, the whole image goes. Unknown images
   * are not an error (the CRI asks RemoveImage to be idempotent).
   */
  async remove(ref: string): Promise<void> {
    const img = this.find(ref);
    if (!img) return;
    const user = this.inUseBy?.(img.id);
    if (user) throw failedPrecondition(`image ${img.id} is in use by container ${user}`);
    const name = normalize(ref);
    if (name && img.repoTags.includes(name) && img.repoTags.length > 1) {
      await this.images.update(img.id, (i) => ({ ...i, repoTags: i.repoTags.filter((t) => t !== name) }));
      return;
    }
    await this.images.update(img.id, () => undefined);
    await this.gc();
  }

  async usage(): Promise<{ bytes: number; inodes: number; mountpoint: string }> {
    const blobs = await this.content.usage();
    const snaps = this.snapshots.usage();
    return {
      bytes: blobs.bytes + snaps.bytes,
      inodes: blobs.inodes + snaps.inodes,
      mountpoint: join(this.config.root, "snapshots"),
    };
  }

  async readConfig(img: ImageRecord): Promise<unknown> {
    return JSON.parse((await this.content.read(img.id, this.config.image.maxManifestBytes)).toString("utf8"));
  }
}

/** The normalised form of a reference, or undefined when it is not one (e.g. an id prefix). */
function normalize(ref: string): string | undefined {
  try {
    return formatRef(parseReference(ref));
  } catch {
    return undefined;
  }
}
