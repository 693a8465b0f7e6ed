/**
 * Test helpers (not a test file itself): crafted layer tarballs built in memory with tar-stream,
 * and a sandbox layout for checking that nothing escapes the snapshot directory.
 */
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import tar from "tar-stream";

export interface FixtureEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** A tar archive of `entries`, in order. */
export async function buildTar(entries: FixtureEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  pack.on("data", (chunk) => out.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const entry of entries) {
    const type = entry.type ?? "file";
    const data = typeof entry.data === "string" ? Buffer.from(entry.data) : (entry.data ?? Buffer.alloc(0));
    const header = {
      name: entry.name,
      type,
      mode: entry.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtime: entry.mtime ?? new Date(1_600_000_000_000),
      size: type === "file" ? data.length : 0,
      ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }),
      ...(entry.devmajor === undefined ? {} : { devmajor: entry.devmajor }),
      ...(entry.devminor === undefined ? {} : { devminor: entry.devminor }),
      ...(entry.pax === undefined ? {} : { pax: entry.pax }),
    };
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, type === "file" ? data : Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(out);
}

/**
 * Replaces the (unique) ASCII `placeholder` in a built tar by `bytes` of the same length. PAX
 * record bodies are not checksummed, so this is how tests put binary xattr values in a tar:
 * tar-stream's packer can only write UTF-8 strings there.
 */
export function patchBytes(archive: Buffer, placeholder: string, bytes: Buffer): Buffer {
  if (placeholder.length !== bytes.length) throw new Error("placeholder and bytes differ in length");
  const at = archive.indexOf(placeholder);
  if (at === -1 || archive.indexOf(placeholder, at + 1) !== -1) throw new Error("placeholder not unique");
  const patched = Buffer.from(archive);
  bytes.copy(patched, at);
  return patched;
}

/** A readable of `buf` delivered in small chunks, to exercise chunk boundaries. */
export function chunked(buf: Buffer, size = 4096): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

/**
 * `base/` holds `root/` (the snapshot directory to unpack into) and `outside/` (an innocent
 * directory hostile layers aim at). Nothing but these two may ever appear in `base`.
 */
export interface Sandbox {
  base: string;
  root: string;
  outside: string;
  cleanup(): Promise<void>;
}

export async function sandbox(): Promise<Sandbox> {
  const base = await mkdtemp(path.join(os.tmpdir(), "berth-unpack-"));
  const root = path.join(base, "root");
  const outside = path.join(base, "outside");
  await mkdir(root);
  await mkdir(outside);
  return { base, root, outside, cleanup: () => rm(base, { recursive: true, force: true }) };
}

/** Sorted listing of `dir` (recursive, relative paths). */
export async function listTree(dir: string): Promise<string[]> {
  return ((await readdir(dir, { recursive: true })) as string[]).sort();
}
