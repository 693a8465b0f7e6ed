/**
 * Overlay snapshots of unpacked layers: root/snapshots/<chain id hex>/{fs,meta.json}.
 * Each layer is unpacked alone into its own `fs` directory (whiteouts in overlayfs form);
 * overlayfs stacks them, lowest first, when a container starts. A snapshot is named by
 * its chain id, so every image holding the same layer stack shares it.
 *
 * A snapshot is prepared in a `.tmp-*` directory and published by one rename once its
 * content is verified; temp directories left by a crash are removed at start-up.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode } from "../common/errors.js";
import { syncDir } from "../store/atomic.js";
import { digestHex } from "./digest.js";

export interface SnapshotInfo {
  chainId: string;
  diffId: string;
  /** Chain id of the snapshot below, if any. */
  parent?: string;
  /** Bytes and inodes of the unpacked layer (for ImageFsInfo). */
  bytes: number;
  inodes: number;
  createdAt: string;
}

export interface PreparedSnapshot {
  /** Unpack the layer here. */
  readonly fsDir: string;
  commit(info: Omit<SnapshotInfo, "createdAt">): Promise<void>;
  abort(): Promise<void>;
}

export class SnapshotStore {
  readonly dir: string;
  private readonly known = new Map<string, SnapshotInfo>();

  constructor(root: string) {
    this.dir = join(root, "snapshots");
  }

  /** Loads committed snapshots and removes unfinished ones. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (!/^[a-f0-9]{64}$/.test(name)) {
        await rm(path, { recursive: true, force: true });
        continue;
      }
      try {
        const info = JSON.parse(await readFile(join(path, "meta.json"), "utf8")) as SnapshotInfo;
        this.known.set(info.chainId, info);
      } catch {
        await rm(path, { recursive: true, force: true });
      }
    }
  }

  has(chainId: string): boolean {
    return this.known.has(chainId);
  }

  get(chainId: string): SnapshotInfo | undefined {
    return this.known.get(chainId);
  }

  list(): SnapshotInfo[] {
    return [...this.known.values()];
  }

  /** The directory overlayfs uses as a lower layer. */
  fsPath(chainId: string): string {
    return join(this.dir, digestHex(chainId), "fs");
  }

  async prepare(): Promise<PreparedSnapshot> {
    const tmp = join(this.dir, `.tmp-${randomBytes(8).toString("hex")}`);
    const fsDir = join(tmp, "fs");
    await mkdir(fsDir, { recursive: true, mode: 0o755 });
    let done = false;
    return {
      fsDir,
      commit: async (info) => {
        const full: SnapshotInfo = { ...info, createdAt: new Date().toISOString() };
        await writeFile(join(tmp, "meta.json"), JSON.stringify(full));
        const target = join(this.dir, digestHex(info.chainId));
        try {
          await rename(tmp, target);
        } catch (err) {
          // Another pull published the same snapshot first: keep theirs.
          if (errnoCode(err) !== "ENOTEMPTY" && errnoCode(err) !== "EEXIST") throw err;
          await rm(tmp, { recursive: true, force: true });
        }
        await syncDir(this.dir);
        done = true;
        if (!this.known.has(info.chainId)) this.known.set(info.chainId, full);
      },
      abort: async () => {
        if (done) return;
        done = true;
        await rm(tmp, { recursive: true, force: true });
      },
    };
  }

  async remove(chainId: string): Promise<void> {
    const path = join(this.dir, digestHex(chainId));
    // Forget it first: a half-removed directory must not look like a snapshot after a crash,
    // so move it out of the way with one rename, then delete.
    this.known.delete(chainId);
    const trash = join(this.dir, `.tmp-rm-${randomBytes(8).toString("hex")}`);
    try {
      await rename(path, trash);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return;
      throw err;
    }
    await rm(trash, { recursive: true, force: true });
  }

  usage(): { bytes: number; inodes: number } {
    let bytes = 0;
    let inodes = 0;
    for (const s of this.known.values()) {
      bytes += s.bytes;
      inodes += s.inodes;
    }
    return { bytes, inodes };
  }
}
