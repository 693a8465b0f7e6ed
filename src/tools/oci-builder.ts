/**
 * Builds OCI images in memory: layers from a list of entries (tar, gzip or zstd), the image
 * config and manifest, indexes, and OCI archives / docker-save tarballs. Used by the demo
 * setup, the tests and the benchmark: Berth makes its own images, no registry download needed.
 */
import { execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { sha256 } from "../image/digest.js";
import { MediaType } from "../image/registry/media-types.js";
import type { Descriptor, ImageConfig, ImageManifest } from "../image/registry/oci.js";

export interface Entry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  content?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  mtime?: Date;
  /** PAX records, e.g. { "SCHILY.xattr.security.capability": "…" }. */
  pax?: Record<string, string>;
}

export type Compression = "none" | "gzip" | "zstd";

export interface BuiltLayer {
  blob: Buffer;
  descriptor: Descriptor;
  diffId: string;
}

export interface BuiltImage {
  manifest: ImageManifest;
  manifestBytes: Buffer;
  manifestDigest: string;
  config: ImageConfig;
  configBytes: Buffer;
  configDigest: string;
  layers: BuiltLayer[];
}

const EPOCH = new Date("2024-01-01T00:00:00Z");

export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on("end", resolve);
    p.on("error", reject);
  });
  for (const e of entries) {
    const type = e.type ?? "file";
    const body = e.content === undefined ? undefined : Buffer.from(e.content);
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? EPOCH,
      ...(e.linkname !== undefined && { linkname: e.linkname }),
      ...(e.devmajor !== undefined && { devmajor: e.devmajor }),
      ...(e.devminor !== undefined && { devminor: e.devminor }),
      ...(e.pax !== undefined && { pax: e.pax }),
      ...(type === "file" && { size: body?.length ?? 0 }),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === "file") p.entry(header, body ?? Buffer.alloc(0), cb);
      else p.entry(header, cb);
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function compress(tar: Buffer, compression: Compression): Buffer {
  if (compression === "gzip") return gzipSync(tar, { level: 1 });
  if (compression === "zstd")
    return execFileSync("zstd", ["-q", "-c", "-3"], { input: tar, maxBuffer: 1 << 30 });
  return tar;
}

const LAYER_TYPES: Record<Compression, string> = {
  none: MediaType.OciLayer,
  gzip: MediaType.OciLayerGzip,
  zstd: MediaType.OciLayerZstd,
};

export async function buildLayer(entries: Entry[], compression: Compression = "gzip"): Promise<BuiltLayer> {
  const tar = await tarOf(entries);
  const blob = compress(tar, compression);
  return {
    blob,
    diffId: sha256(tar),
    descriptor: { mediaType: LAYER_TYPES[compression], digest: sha256(blob), size: blob.length },
  };
}

export interface ImageOptions {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: ImageConfig["config"];
  /** Docker schema 2 media types instead of OCI ones. */
  docker?: boolean;
}

export function goArch(): string {
  return process.arch === "x64" ? "amd64" : process.arch;
}

export function buildImage(layers: BuiltLayer[], opts: ImageOptions = {}): BuiltImage {
  const config: ImageConfig = {
    architecture: opts.architecture ?? goArch(),
    os: opts.os ?? "linux",
    ...(opts.variant !== undefined && { variant: opts.variant }),
    created: EPOCH.toISOString(),
    config: opts.config ?? {},
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = sha256(configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: opts.docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config: {
      mediaType: opts.docker ? MediaType.DockerConfig : MediaType.OciConfig,
      digest: configDigest,
      size: configBytes.length,
    },
    layers: layers.map((l) =>
      opts.docker && l.descriptor.mediaType === MediaType.OciLayerGzip
        ? { ...l.descriptor, mediaType: MediaType.DockerLayerGzip }
        : l.descriptor,
    ),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return {
    manifest,
    manifestBytes,
    manifestDigest: sha256(manifestBytes),
    config,
    configBytes,
    configDigest,
    layers,
  };
}

export interface BuiltIndex {
  bytes: Buffer;
  digest: string;
}

export function buildIndex(
  images: Array<{ image: BuiltImage; platform: Descriptor["platform"] }>,
): BuiltIndex {
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: images.map(({ image, platform }) => ({
      mediaType: image.manifest.mediaType,
      digest: image.manifestDigest,
      size: image.manifestBytes.length,
      platform,
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  return { bytes, digest: sha256(bytes) };
}

/** An OCI image layout as a tar ("OCI archive"); `name` goes into the ref annotations. */
export async function ociArchive(images: Array<{ image: BuiltImage; name?: string }>): Promise<Buffer> {
  const blobs = new Map<string, Buffer>();
  const manifests: Descriptor[] = [];
  for (const { image, name } of images) {
    blobs.set(image.manifestDigest, image.manifestBytes);
    blobs.set(image.configDigest, image.configBytes);
    for (const l of image.layers) blobs.set(l.descriptor.digest, l.blob);
    manifests.push({
      mediaType: image.manifest.mediaType,
      digest: image.manifestDigest,
      size: image.manifestBytes.length,
      ...(name && {
        annotations: {
          "io.containerd.image.name": name,
          "org.opencontainers.image.ref.name": name.split(":").pop() ?? "",
        },
      }),
    });
  }
  const entries: Entry[] = [
    { name: "oci-layout", content: JSON.stringify({ imageLayoutVersion: "1.0.0" }) },
    {
      name: "index.json",
      content: JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }),
    },
    { name: "blobs/", type: "directory" },
    { name: "blobs/sha256/", type: "directory" },
    ...[...blobs].map(([digest, content]) => ({ name: `blobs/sha256/${digest.slice(7)}`, content })),
  ];
  return tarOf(entries);
}

/** A `docker save` tarball (manifest.json, <config>.json, <layer>/layer.tar, uncompressed layers). */
export async function dockerSaveArchive(
  images: Array<{ image: BuiltImage; tags: string[]; tars: Buffer[] }>,
): Promise<Buffer> {
  const entries: Entry[] = [];
  const manifest = images.map(({ image, tags, tars }) => {
    const configName = `${image.configDigest.slice(7)}.json`;
    entries.push({ name: configName, content: image.configBytes });
    const layers = tars.map((tar) => {
      const dir = sha256(tar).slice(7);
      entries.push({ name: `${dir}/`, type: "directory" });
      entries.push({ name: `${dir}/VERSION`, content: "1.0" });
      entries.push({ name: `${dir}/layer.tar`, content: tar });
      return `${dir}/layer.tar`;
    });
    return { Config: configName, RepoTags: tags, Layers: layers };
  });
  entries.push({ name: "manifest.json", content: JSON.stringify(manifest) });
  return tarOf(entries);
}
