/**
 * The benchmark's large image: 6 gzip'd layers, about 300 MB uncompressed and 220 MB
 * compressed, built deterministically (seeded PRNG, fixed mtimes) and streamed to disk so
 * memory stays low. Built once and cached under `bench-results/cache/<IMAGE_VERSION>/`;
 * bump IMAGE_VERSION whenever the recipe changes.
 *
 * File contents mix 64 KiB blocks of pseudo-random bytes (AES-CTR keystream, incompressible)
 * with blocks of log-like text (compresses to about 22 %), so gzip lands near 0.73.
 */
import { createCipheriv, createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { DigestStream, sha256 } from "../image/digest.js";
import { MediaType } from "../image/registry/media-types.js";
import type { ImageConfig, ImageManifest } from "../image/registry/oci.js";
import { goArch } from "../tools/oci-builder.js";
import { pushBlob, pushManifest } from "../tools/registry-server.js";

/** Part of the cache key: change it whenever anything below changes the bytes. */
export const IMAGE_VERSION = "large-v1";
const SEED = "berth-bench-large-image";
const MB = 1_000_000;
const BLOCK = 64 * 1024;
/** Share of 64 KiB blocks that are incompressible (calibrated for ~0.73 gzip ratio). */
const RANDOM_SHARE = 0.66;
const MTIME = Math.floor(Date.parse("2024-01-01T00:00:00Z") / 1000);

interface LayerPlan {
  /** Uncompressed file bytes to put in the layer (excluding tar headers). */
  bytes: number;
  /** Small files (512 B–48 KiB) to add, to make per-entry overhead visible. */
  smallFiles: number;
}

const PLAN: readonly LayerPlan[] = [
  { bytes: 30 * MB, smallFiles: 400 },
  { bytes: 54 * MB, smallFiles: 0 },
  { bytes: 54 * MB, smallFiles: 0 },
  { bytes: 54 * MB, smallFiles: 0 },
  { bytes: 54 * MB, smallFiles: 0 },
  { bytes: 54 * MB, smallFiles: 0 },
];

export interface BenchLayer {
  /** Path of the gzip'd blob on disk. */
  path: string;
  digest: string;
  diffId: string;
  /** Compressed size. */
  size: number;
  /** Size of the uncompressed tar. */
  tarSize: number;
  files: number;
  directories: number;
}

export interface BenchImage {
  dir: string;
  layers: BenchLayer[];
  configBytes: Buffer;
  configDigest: string;
  manifestBytes: Buffer;
  manifestDigest: string;
  stats: ImageStats;
}

export interface ImageStats {
  version: string;
  layers: number;
  files: number;
  compressedBytes: number;
  uncompressedBytes: number;
  compressionRatio: number;
}

// ---- deterministic randomness ----

/** mulberry32: tiny seeded PRNG for sizes and choices. */
function prng(seed: string): () => number {
  let a = createHash("sha256").update(seed).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ZEROS = Buffer.alloc(BLOCK);

/** A seeded stream of incompressible bytes (AES-128-CTR keystream). */
function keystream(seed: string): (n: number) => Buffer {
  const key = createHash("sha256").update(seed).digest();
  const cipher = createCipheriv("aes-128-ctr", key.subarray(0, 16), key.subarray(16, 32));
  return (n) => cipher.update(n === BLOCK ? ZEROS : ZEROS.subarray(0, n));
}

const WORDS = (
  "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma " +
  "tau upsilon phi chi psi omega request response cache miss hit connection pool worker queue shard " +
  "replica leader follower commit snapshot layer image blob manifest digest token"
).split(" ");
const LEVELS = ["INFO", "DEBUG", "WARN", "ERROR"];

/** `n` bytes of log-like text. */
function text(rand: () => number, n: number): Buffer {
  const parts: string[] = [];
  let length = 0;
  const word = () => WORDS[Math.floor(rand() * WORDS.length)]!;
  const two = (v: number) => String(Math.floor(v)).padStart(2, "0");
  while (length < n) {
    const line =
      `2024-01-01T00:${two(rand() * 60)}:${two(rand() * 60)}Z ${LEVELS[Math.floor(rand() * 4)]} ` +
      `svc=${word()} msg="${word()} ${word()} ${word()}" req=${Math.floor(rand() * 0x10000).toString(16)} ` +
      `dur=${Math.floor(rand() * 1000)}ms\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join("")).subarray(0, n);
}

// ---- tar (ustar) writing ----

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

function tarHeader(name: string, type: "file" | "directory", size: number, mode: number): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, "utf8");
  h.write(octal(mode, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(MTIME, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(type === "directory" ? "5" : "0", 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write("root", 265, "ascii");
  h.write("root", 297, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

interface FileSpec {
  name: string;
  size: number;
}

interface LayerEntries {
  directories: string[];
  files: FileSpec[];
}

function layerEntries(index: number, plan: LayerPlan): LayerEntries {
  const rand = prng(`${SEED}/layer/${index}/plan`);
  const base = `opt/bench/layer${index}`;
  const directories = ["opt/", "opt/bench/", `${base}/`];
  const files: FileSpec[] = [];
  if (plan.smallFiles > 0) {
    for (let d = 0; d < 20; d++) directories.push(`${base}/etc${d}/`);
    for (let i = 0; i < plan.smallFiles; i++) {
      files.push({ name: `${base}/etc${i % 20}/conf-${i}.txt`, size: 512 + Math.floor(rand() * 48 * 1024) });
    }
  }
  const smallBytes = files.reduce((n, f) => n + f.size, 0);
  for (let d = 0; d < 4; d++) directories.push(`${base}/data${d}/`);
  let remaining = plan.bytes - smallBytes;
  for (let i = 0; remaining > 0; i++) {
    let size = Math.min(remaining, MB + Math.floor(rand() * 7 * MB));
    if (remaining - size < MB) size = remaining;
    files.push({ name: `${base}/data${i % 4}/blob-${i}.bin`, size });
    remaining -= size;
  }
  return { directories, files };
}

/** File content: 64 KiB blocks, each random or text, decided by the file's own PRNG. */
function* fileContent(seed: string, size: number): Generator<Buffer> {
  const rand = prng(`${seed}/choice`);
  const textRand = prng(`${seed}/text`);
  const random = keystream(`${seed}/bytes`);
  for (let offset = 0; offset < size; offset += BLOCK) {
    const n = Math.min(BLOCK, size - offset);
    yield rand() < RANDOM_SHARE ? random(n) : text(textRand, n);
  }
}

async function* layerTar(index: number, entries: LayerEntries): AsyncGenerator<Buffer> {
  for (const dir of entries.directories) yield tarHeader(dir, "directory", 0, 0o755);
  for (const [i, f] of entries.files.entries()) {
    yield tarHeader(f.name, "file", f.size, 0o644);
    yield* fileContent(`${SEED}/layer/${index}/file/${i}`, f.size);
    const pad = (512 - (f.size % 512)) % 512;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

async function buildLayer(dir: string, index: number): Promise<BenchLayer> {
  const plan = PLAN[index]!;
  const entries = layerEntries(index, plan);
  const diff = new DigestStream();
  const blob = new DigestStream();
  const tmp = join(dir, `layer-${index}.tmp`);
  await pipeline(
    Readable.from(layerTar(index, entries), { objectMode: false }),
    diff,
    createGzip({ level: 6 }),
    blob,
    createWriteStream(tmp),
  );
  const path = join(dir, blob.digest.slice("sha256:".length));
  await rename(tmp, path);
  return {
    path,
    digest: blob.digest,
    diffId: diff.digest,
    size: blob.size,
    tarSize: diff.size,
    files: entries.files.length,
    directories: entries.directories.length,
  };
}

interface CacheMeta {
  version: string;
  layers: Array<Omit<BenchLayer, "path">>;
  configDigest: string;
  manifestDigest: string;
  stats: ImageStats;
}

async function loadCached(dir: string): Promise<BenchImage | undefined> {
  let meta: CacheMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, "image.json"), "utf8")) as CacheMeta;
  } catch {
    return undefined;
  }
  if (meta.version !== IMAGE_VERSION) return undefined;
  const layers: BenchLayer[] = [];
  for (const l of meta.layers) {
    const path = join(dir, l.digest.slice("sha256:".length));
    const st = await stat(path).catch(() => undefined);
    if (st?.size !== l.size) return undefined;
    layers.push({ ...l, path });
  }
  const configBytes = await readFile(join(dir, "config.json")).catch(() => undefined);
  const manifestBytes = await readFile(join(dir, "manifest.json")).catch(() => undefined);
  if (!configBytes || !manifestBytes) return undefined;
  if (sha256(configBytes) !== meta.configDigest || sha256(manifestBytes) !== meta.manifestDigest) {
    return undefined;
  }
  return {
    dir,
    layers,
    configBytes,
    configDigest: meta.configDigest,
    manifestBytes,
    manifestDigest: meta.manifestDigest,
    stats: meta.stats,
  };
}

/** Returns the cached image, building it first (a minute or so) when the cache is missing or stale. */
export async function ensureBenchImage(
  cacheRoot: string,
  log: (msg: string) => void = () => {},
): Promise<BenchImage> {
  const dir = join(cacheRoot, IMAGE_VERSION);
  const cached = await loadCached(dir);
  if (cached) {
    log(`image: using cache ${dir}`);
    return cached;
  }
  log(`image: building ${PLAN.length} layers into ${dir} (once; cached afterwards)`);
  const started = Date.now();
  await rm(dir, { recursive: true, force: true });
  const tmpDir = `${dir}.tmp-${process.pid}`;
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  try {
    // Two layers at a time: gzip runs on libuv's pool, so this uses both cores.
    const layers = new Array<BenchLayer>(PLAN.length);
    let next = 0;
    const worker = async () => {
      while (next < PLAN.length) {
        const i = next++;
        const l = await buildLayer(tmpDir, i);
        layers[i] = l;
        log(
          `image: layer ${i + 1}/${PLAN.length}: ${l.files} files, ${(l.tarSize / MB).toFixed(1)} MB tar, ` +
            `${(l.size / MB).toFixed(1)} MB gzip`,
        );
      }
    };
    await Promise.all([worker(), worker()]);
    const config: ImageConfig = {
      architecture: goArch(),
      os: "linux",
      created: new Date(MTIME * 1000).toISOString(),
      config: {
        Cmd: ["/bin/sh"],
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = sha256(configBytes);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: MediaType.OciLayerGzip, digest: l.digest, size: l.size })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = sha256(manifestBytes);
    const compressedBytes = layers.reduce((n, l) => n + l.size, 0);
    const uncompressedBytes = layers.reduce((n, l) => n + l.tarSize, 0);
    const stats: ImageStats = {
      version: IMAGE_VERSION,
      layers: layers.length,
      files: layers.reduce((n, l) => n + l.files, 0),
      compressedBytes,
      uncompressedBytes,
      compressionRatio: compressedBytes / uncompressedBytes,
    };
    await writeFile(join(tmpDir, "config.json"), configBytes);
    await writeFile(join(tmpDir, "manifest.json"), manifestBytes);
    const meta: CacheMeta = {
      version: IMAGE_VERSION,
      layers: layers.map(({ path: _path, ...rest }) => rest),
      configDigest,
      manifestDigest,
      stats,
    };
    await writeFile(join(tmpDir, "image.json"), `${JSON.stringify(meta, null, 2)}\n`);
    await rename(tmpDir, dir);
    log(`image: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    await rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
  const built = await loadCached(dir);
  if (!built) throw new Error(`bench image cache ${dir} is unreadable right after building it`);
  return built;
}

/** Pushes the image to `repo:tag` (blobs streamed from the cache). */
export async function pushBenchImage(
  registryUrl: string,
  repo: string,
  tag: string,
  image: BenchImage,
): Promise<void> {
  for (const layer of image.layers) {
    const pushed = await pushBlob(registryUrl, repo, layer.path);
    if (pushed.digest !== layer.digest) {
      throw new Error(`cached layer ${layer.path} has digest ${pushed.digest}, want ${layer.digest}`);
    }
  }
  await pushBlob(registryUrl, repo, image.configBytes);
  await pushManifest(registryUrl, repo, tag, image.manifestBytes, MediaType.OciManifest);
}
