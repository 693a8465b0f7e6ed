/**
 * A container's root filesystem: the image's snapshots as overlayfs lower layers (top layer
 * first) plus a per-container upper and work directory; mounted at <dir>/rootfs.
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, invalidArgument } from "../common/errors.js";
import { MNT_DETACH, native } from "../common/native.js";

/** mount(2) data must fit in one page. */
const MAX_MOUNT_DATA = 4000;

export interface RootfsPaths {
  rootfs: string;
  upper: string;
  work: string;
}

export function rootfsPaths(dir: string): RootfsPaths {
  return { rootfs: join(dir, "rootfs"), upper: join(dir, "upper"), work: join(dir, "work") };
}

/** `lowers` are the image's snapshot dirs, lowest layer first (manifest order). */
export async function mountRootfs(lowers: string[], dir: string): Promise<RootfsPaths> {
  if (lowers.length === 0) throw invalidArgument("image has no layers");
  const p = rootfsPaths(dir);
  await mkdir(p.upper, { recursive: true, mode: 0o755 });
  await mkdir(p.work, { recursive: true, mode: 0o700 });
  await mkdir(p.rootfs, { recursive: true, mode: 0o755 });
  const data = `lowerdir=${[...lowers].reverse().join(":")},upperdir=${p.upper},workdir=${p.work}`;
  if (data.length > MAX_MOUNT_DATA) {
    throw invalidArgument(`image has too many layers for one overlay mount (${lowers.length} layers)`);
  }
  if (!(await isMounted(p.rootfs))) await native().mount("overlay", p.rootfs, "overlay", 0, data);
  return p;
}

export async function isMounted(path: string): Promise<boolean> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return info.split("\n").some((line) => line.split(" ")[4] === path);
}

/** Unmounts and removes the container's rootfs, upper and work dirs; idempotent. */
export async function removeRootfs(dir: string): Promise<void> {
  const p = rootfsPaths(dir);
  try {
    await native().umount2(p.rootfs, MNT_DETACH);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== "EINVAL" && code !== "ENOENT") throw err;
  }
  await rm(dir, { recursive: true, force: true });
}
