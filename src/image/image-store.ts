/**
 * Image metadata: every image record lives in one JSON document (root/metadata/images.json)
 * replaced atomically on each change, so a crash leaves the old or the new set of images and
 * a tag is never held by two images. Records are kept in memory for lookups.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, internal } from "../common/errors.js";
import { SerialQueue, writeFileAtomic } from "../store/atomic.js";

export interface LayerRecord {
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
  chainId: string;
}

export interface ImageRecord {
  /** Digest of the image config (the image id). */
  id: string;
  /** Full references, e.g. docker.io/library/busybox:latest. */
  repoTags: string[];
  /** name@digest of the manifest (or index) the image was pulled by. */
  repoDigests: string[];
  /** Digest of the platform manifest. */
  manifestDigest: string;
  /** Digest of the index the manifest was chosen from, when there was one. */
  indexDigest?: string;
  mediaType: string;
  /** Manifest + config + compressed layers, in bytes. */
  size: number;
  layers: LayerRecord[];
  platform: string;
  /** User from the image config ("" when unset). */
  user: string;
  createdAt: string;
  /** Time of the last pull or import. */
  updatedAt: string;
}

interface Document {
  version: 1;
  images: ImageRecord[];
}

export class ImageStore {
  private readonly file: string;
  private readonly images = new Map<string, ImageRecord>();
  private readonly queue = new SerialQueue();

  constructor(root: string) {
    this.file = join(root, "metadata", "images.json");
  }

  async init(): Promise<void> {
    await mkdir(join(this.file, ".."), { recursive: true, mode: 0o700 });
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return;
      throw err;
    }
    let doc: Document;
    try {
      doc = JSON.parse(text) as Document;
    } catch (err) {
      throw internal(`image metadata ${this.file} is corrupt`, err);
    }
    for (const img of doc.images) this.images.set(img.id, img);
  }

  list(): ImageRecord[] {
    return [...this.images.values()];
  }

  get(id: string): ImageRecord | undefined {
    return this.images.get(id);
  }

  /** Finds an image by id (full or unique prefix of at least 3 hex digits), tag or digest reference. */
  find(ref: string, normalized?: string): ImageRecord | undefined {
    const byId = this.images.get(ref) ?? this.images.get(`sha256:${ref}`);
    if (byId) return byId;
    for (const img of this.images.values()) {
      if (normalized && (img.repoTags.includes(normalized) || img.repoDigests.includes(normalized)))
        return img;
      if (img.repoTags.includes(ref) || img.repoDigests.includes(ref)) return img;
    }
    const hex = ref.startsWith("sha256:") ? ref.slice(7) : ref;
    if (/^[a-f0-9]{3,63}$/.test(hex)) {
      const hits = [...this.images.values()].filter((i) => i.id.slice(7).startsWith(hex));
      if (hits.length === 1) return hits[0];
    }
    return undefined;
  }

  /**
   * Adds or updates an image and moves `repoTags` to it from any other image
   * (a tag names one image at a time, as in Docker and containerd).
   */
  async put(img: ImageRecord): Promise<ImageRecord> {
    return this.queue.run(async () => {
      const next = new Map(this.images);
      const existing = next.get(img.id);
      const merged: ImageRecord = existing
        ? {
            ...img,
            repoTags: union(existing.repoTags, img.repoTags),
            repoDigests: union(existing.repoDigests, img.repoDigests),
            createdAt: existing.createdAt,
          }
        : img;
      for (const other of next.values()) {
        if (other.id === img.id) continue;
        const tags = other.repoTags.filter((t) => !img.repoTags.includes(t));
        if (tags.length !== other.repoTags.length) next.set(other.id, { ...other, repoTags: tags });
      }
      next.set(img.id, merged);
      await this.save(next);
      return merged;
    });
  }

  /** Applies `change` to one image; returning undefined deletes it. */
  async update(id: string, change: (img: ImageRecord) => ImageRecord | undefined): Promise<void> {
    await this.queue.run(async () => {
      const img = this.images.get(id);
      if (!img) return;
      const next = new Map(this.images);
      const changed = change(img);
      if (changed) next.set(id, changed);
      else next.delete(id);
      await this.save(next);
    });
  }

  private async save(next: Map<string, ImageRecord>): Promise<void> {
    const doc: Document = { version: 1, images: [...next.values()] };
    await writeFileAtomic(this.file, JSON.stringify(doc));
    this.images.clear();
    for (const [k, v] of next) this.images.set(k, v);
  }
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}
