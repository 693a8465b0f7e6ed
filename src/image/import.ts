/**
 * Offline import of image archives streamed in one pass: an OCI image layout in a tar
 * ("OCI archive": oci-layout, index.json, blobs/sha256/…) or a `docker save` tarball
 * (manifest.json, <config>.json, <layer>/layer.tar). Every file is hashed into the content
 * store as it streams by (OCI blobs are checked against their names); the images are then
 * installed from the store like pulled ones.
 */
import { posix } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extract } from "tar-stream";
import { dataLoss, invalidArgument, notFound } from "../common/errors.js";
import type { BerthConfig } from "../config/config.js";
import { sha256 } from "./digest.js";
import { collectGarbage } from "./gc.js";
import type { ImageRecord } from "./image-store.js";
import { type InstallDeps, installImage } from "./install.js";
import { formatName, formatRef, parseReference } from "./reference.js";
import { MediaType } from "./registry/media-types.js";
import {
  type Descriptor,
  type ImageManifest,
  parseImageConfig,
  parseIndex,
  parseManifest,
} from "./registry/oci.js";
import { defaultPlatform, parsePlatform, selectPlatform } from "./registry/platform.js";

const METADATA_FILES = new Set(["manifest.json", "index.json", "oci-layout", "repositories"]);

interface Stored {
  digest: string;
  size: number;
}

interface DockerSaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export type ImportDeps = InstallDeps & { config: BerthConfig };

/** Reads the archive once: metadata files into memory, everything else into the content store. */
async function ingestArchive(
  deps: ImportDeps,
  archive: Readable,
  hold: (digest: string) => void,
): Promise<{ files: Map<string, Stored>; metadata: Map<string, Buffer> }> {
  const files = new Map<string, Stored>();
  const links = new Map<string, string>();
  const metadata = new Map<string, Buffer>();
  const max = deps.config.image.maxManifestBytes;
  const ex = extract();
  ex.on("entry", (header, stream, next) => {
    const name = posix
      .normalize(header.name)
      .replace(/^(\.\/|\/)+/, "")
      .replace(/\/$/, "");
    const fail = (err: unknown) => {
      stream.resume();
      next(err as Error);
    };
    if (header.type === "symlink" || header.type === "link") {
      // docker save links identical layers to one another.
      links.set(name, posix.normalize(posix.join(posix.dirname(name), header.linkname ?? "")));
      if (header.type === "link") links.set(name, posix.normalize(header.linkname ?? ""));
      stream.resume();
      stream.on("end", () => next());
      return;
    }
    if (header.type !== "file" && header.type !== "contiguous-file") {
      stream.resume();
      stream.on("end", () => next());
      return;
    }
    if (METADATA_FILES.has(name)) {
      if ((header.size ?? 0) > max)
        return fail(invalidArgument(`archive: ${name} is larger than ${max} bytes`));
      const parts: Buffer[] = [];
      stream.on("data", (c) => parts.push(c as Buffer));
      stream.on("end", () => {
        metadata.set(name, Buffer.concat(parts));
        next();
      });
      stream.on("error", fail);
      return;
    }
    const w = deps.content.ingestUnknown();
    w.resume(); // only stored: nobody reads the pass-through side
    pipeline(stream, w)
      .then(() => {
        hold(w.digest);
        return w.commit();
      })
      .then((digest) => {
        const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
        if (m && `sha256:${m[1]}` !== digest) {
          throw dataLoss(`archive: ${name} does not match its name: its digest is ${digest}`);
        }
        files.set(name, { digest, size: w.size });
        next();
      })
      .catch(async (err: unknown) => {
        await w.abort();
        fail(err);
      });
  });
  await pipeline(archive, ex);
  for (const [name, target] of links) {
    const hit = files.get(target);
    if (hit) files.set(name, hit);
  }
  return { files, metadata };
}

function normalizeTag(tag: string): string {
  return formatRef(parseReference(tag));
}

export async function importArchive(
  deps: ImportDeps,
  archive: Readable,
  tag: string,
): Promise<ImageRecord[]> {
  // Blobs are leased as they land, so a concurrent GC leaves them alone until installed.
  const releases: Array<() => void> = [];
  const hold = (digest: string) => {
    releases.push(deps.leases.acquire([digest]));
  };
  try {
    const { files, metadata } = await ingestArchive(deps, archive, hold);
    const install = installerFor(deps, files);
    const defaultTag = tag === "" ? undefined : normalizeTag(tag);
    const index = metadata.get("index.json");
    const dockerManifest = metadata.get("manifest.json");
    if (index) return await importOciLayout(deps, files, index, defaultTag, install);
    if (dockerManifest) return await importDockerSave(deps, files, dockerManifest, defaultTag, install);
    throw invalidArgument(
      "archive is neither an OCI image layout (no index.json) nor a docker save tarball (no manifest.json)",
    );
  } finally {
    for (const r of releases) r();
    // Files of the archive that no image uses (docker save's legacy json files, …) go now.
    await collectGarbage(deps).catch((err: unknown) => deps.logger.warn({ err }, "gc after import failed"));
  }
}

type Installer = (args: {
  manifest: ImageManifest;
  manifestBytes: Buffer;
  manifestDigest: string;
  index?: { digest: string; bytes: Buffer };
  tags: string[];
}) => Promise<ImageRecord>;

function installerFor(deps: ImportDeps, files: Map<string, Stored>): Installer {
  return async ({ manifest, manifestBytes, manifestDigest, index, tags }) => {
    const configBytes = await deps.content.read(manifest.config.digest, deps.config.image.maxManifestBytes);
    const config = parseImageConfig(configBytes);
    return installImage(
      { ...deps, keepLayerBlobs: true },
      {
        manifest,
        manifestBytes,
        manifestDigest,
        ...(index ? { index } : {}),
        config,
        configDigest: manifest.config.digest,
        configBytes,
        repoTags: tags,
        repoDigests: tags.map((t) => `${formatName(parseReference(t))}@${index?.digest ?? manifestDigest}`),
        openLayer: async (desc) => {
          throw notFound(`archive has no blob ${desc.digest} (files: ${files.size})`);
        },
      },
    );
  };
}

function blobPath(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

async function readBlob(deps: ImportDeps, files: Map<string, Stored>, desc: Descriptor): Promise<Buffer> {
  if (!files.has(blobPath(desc.digest))) throw invalidArgument(`archive: blob ${desc.digest} is missing`);
  return deps.content.read(desc.digest, deps.config.image.maxManifestBytes);
}

/** The name an OCI layout gives a manifest: containerd's full-name annotation, else ref.name. */
function ociName(desc: Descriptor, fallback: string | undefined): string | undefined {
  const full = desc.annotations?.["io.containerd.image.name"];
  if (full) return normalizeTag(full);
  const refName = desc.annotations?.["org.opencontainers.image.ref.name"];
  if (refName) {
    // A bare tag ("latest") names nothing without a repository: use it with --tag's repository.
    if (/^[\w][\w.-]{0,127}$/.test(refName)) {
      return fallback ? `${formatName(parseReference(fallback))}:${refName}` : undefined;
    }
    return normalizeTag(refName);
  }
  return fallback;
}

async function importOciLayout(
  deps: ImportDeps,
  files: Map<string, Stored>,
  indexBytes: Buffer,
  tag: string | undefined,
  install: Installer,
): Promise<ImageRecord[]> {
  const index = parseIndex(indexBytes);
  const platform = deps.config.image.platform ? parsePlatform(deps.config.image.platform) : defaultPlatform();
  const out: ImageRecord[] = [];
  for (const top of index.manifests) {
    const name = ociName(top, tag);
    let desc = top;
    let nested: { digest: string; bytes: Buffer } | undefined;
    if (top.mediaType === MediaType.OciIndex || top.mediaType === MediaType.DockerManifestList) {
      const bytes = await readBlob(deps, files, top);
      nested = { digest: top.digest, bytes };
      desc = selectPlatform(parseIndex(bytes, top.mediaType).manifests, platform);
    }
    const manifestBytes = await readBlob(deps, files, desc);
    if (sha256(manifestBytes) !== desc.digest) throw dataLoss(`archive: manifest ${desc.digest} is corrupt`);
    const manifest = parseManifest(manifestBytes, desc.mediaType);
    out.push(
      await install({
        manifest,
        manifestBytes,
        manifestDigest: desc.digest,
        ...(nested ? { index: nested } : {}),
        tags: name ? [name] : [],
      }),
    );
  }
  return out;
}

async function importDockerSave(
  deps: ImportDeps,
  files: Map<string, Stored>,
  manifestJson: Buffer,
  tag: string | undefined,
  install: Installer,
): Promise<ImageRecord[]> {
  let entries: DockerSaveEntry[];
  try {
    entries = JSON.parse(manifestJson.toString("utf8")) as DockerSaveEntry[];
  } catch {
    throw invalidArgument("archive: manifest.json is not valid JSON");
  }
  if (!Array.isArray(entries)) throw invalidArgument("archive: manifest.json must be a JSON array");
  const strings = (v: unknown) =>
    v === undefined || (Array.isArray(v) && v.every((x) => typeof x === "string"));
  for (const e of entries as unknown[]) {
    const entry = e as Record<string, unknown> | null;
    if (
      typeof entry !== "object" ||
      entry === null ||
      typeof entry["Config"] !== "string" ||
      !strings(entry["Layers"]) ||
      !strings(entry["RepoTags"])
    ) {
      throw invalidArgument(
        "archive: each manifest.json entry needs a Config string and string lists Layers, RepoTags",
      );
    }
  }
  const out: ImageRecord[] = [];
  for (const e of entries) {
    const config = files.get(posix.normalize(e.Config ?? ""));
    if (!config) throw invalidArgument(`archive: config ${e.Config} named in manifest.json is missing`);
    const layers: Descriptor[] = [];
    for (const l of e.Layers ?? []) {
      const f = files.get(posix.normalize(l));
      if (!f) throw invalidArgument(`archive: layer ${l} named in manifest.json is missing`);
      layers.push({ mediaType: await sniffLayerType(deps, f.digest), digest: f.digest, size: f.size });
    }
    // docker save carries no manifest: write the OCI manifest the registry would have served.
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
      layers,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const tags = (e.RepoTags ?? []).map(normalizeTag);
    if (tags.length === 0 && tag) tags.push(tag);
    out.push(await install({ manifest, manifestBytes, manifestDigest: sha256(manifestBytes), tags }));
  }
  return out;
}

/** docker save layers are usually plain tar, but newer Dockers keep them compressed. */
async function sniffLayerType(deps: ImportDeps, digest: string): Promise<string> {
  const stream = deps.content.openRead(digest);
  const head: Buffer = await new Promise((resolve, reject) => {
    stream.once("readable", () => {
      resolve((stream.read(4) as Buffer | null) ?? Buffer.alloc(0));
      stream.destroy();
    });
    stream.once("error", reject);
  });
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.OciLayerGzip;
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return MediaType.OciLayerZstd;
  return MediaType.OciLayer;
}
