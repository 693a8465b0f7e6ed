/**
 * The checkpoint archive, in the layout CRI-O and containerd 2.0 write for the kubelet's
 * forensic checkpointing (what checkpointctl reads):
 *
 *   checkpoint/         CRIU's images (runc checkpoint --image-path)
 *   config.dump         checkpointctl's ContainerConfig: id, name, rootfsImage*, runtime, times
 *   spec.dump           the OCI runtime spec the container ran with (the bundle's config.json)
 *   status.dump         the CRI ContainerStatus at checkpoint time (as containerd writes it)
 *   rootfs-diff.tar     the writable layer: files added or changed (overlay upper, no whiteouts)
 *   deleted.files       JSON list of image files the container deleted (only when there are any)
 *   container.log       the container's CRI log so far
 *   dump.log, stats-dump  CRIU's log and statistics of the dump
 *   berth.dump          Berth's own: the CRI ContainerConfig (protobuf, base64), to re-create it
 *
 * Archives are plain tar (mode 0600: they hold every memory page of the processes), written to
 * a temporary name beside the target and renamed into place, so a failed checkpoint leaves
 * nothing at the location.
 */
import { randomBytes } from "node:crypto";
import {
  access,
  constants,
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, isAbsolute, join, normalize } from "node:path";
import { errnoCode, internal, invalidArgument } from "../common/errors.js";
import { describeExit, type Runner, run } from "../common/process.js";

export const CHECKPOINT_DIR = "checkpoint";
export const CONFIG_DUMP = "config.dump";
export const SPEC_DUMP = "spec.dump";
export const STATUS_DUMP = "status.dump";
export const ROOTFS_DIFF = "rootfs-diff.tar";
export const DELETED_FILES = "deleted.files";
export const CONTAINER_LOG = "container.log";
export const BERTH_DUMP = "berth.dump";
/** What CRIU leaves in its work path. */
const CRIU_FILES = ["dump.log", "stats-dump"];

/** checkpointctl's ContainerConfig (config.dump), field names as it reads them. */
export interface ConfigDump {
  id: string;
  name: string;
  rootfsImage: string;
  rootfsImageRef: string;
  rootfsImageName: string;
  runtime: string;
  createdTime: string;
  checkpointedTime: string;
  restoredTime?: string;
  restored: boolean;
}

export interface BerthDump {
  /** The CRI ContainerConfig the container was created with (protobuf, base64). */
  containerConfig: string;
  podId: string;
}

/**
 * A CheckpointContainer location: an absolute file path in an existing, writable directory,
 * not a directory itself (INVALID_ARGUMENT otherwise, checked before anything is done).
 */
export async function checkLocation(location: string): Promise<void> {
  if (location === "") throw invalidArgument("checkpoint location is empty");
  if (location.includes("\0")) throw invalidArgument("checkpoint location contains a NUL byte");
  if (!isAbsolute(location))
    throw invalidArgument(`checkpoint location ${JSON.stringify(location)} is not an absolute path`);
  const dir = dirname(location);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory())
    throw invalidArgument(`checkpoint location ${location}: directory ${dir} does not exist`);
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw invalidArgument(`checkpoint location ${location}: directory ${dir} is not writable`);
  }
  const target = await stat(location).catch(() => undefined);
  if (target?.isDirectory()) throw invalidArgument(`checkpoint location ${location} is a directory`);
}

async function tar(args: string[], runner: Runner, what: string): Promise<void> {
  const r = await runner("tar", args, { timeoutMs: 10 * 60_000 });
  if (r.exitCode !== 0) throw internal(`${what}: tar: ${r.stderr.trim() || describeExit(r)}`);
}

/** An overlayfs whiteout: a character device 0/0 standing for a deleted lower file. */
const isWhiteout = (st: { isCharacterDevice(): boolean; rdev: number }) =>
  st.isCharacterDevice() && st.rdev === 0;

/**
 * rootfs-diff.tar from the overlay upper dir (everything but whiteouts, which become
 * deleted.files), into `staging`.
 */
export async function writeRootfsDiff(upper: string, staging: string, runner: Runner = run): Promise<void> {
  const names = (await readdir(upper, { recursive: true })).sort();
  const keep: string[] = [];
  const deleted: string[] = [];
  for (const name of names) {
    const st = await lstat(join(upper, name));
    if (isWhiteout(st)) deleted.push(`/${name}`);
    else keep.push(name);
  }
  const list = join(staging, ".rootfs-diff.list");
  await writeFile(list, keep.map((n) => `${n}\0`).join(""));
  try {
    const files = ["--null", "--no-recursion", "--files-from", list];
    await tar(
      [
        "--create",
        "--numeric-owner",
        "--xattrs",
        "--file",
        join(staging, ROOTFS_DIFF),
        "--directory",
        upper,
        ...files,
      ],
      runner,
      "rootfs diff",
    );
  } finally {
    await rm(list, { force: true });
  }
  if (deleted.length > 0) await writeFile(join(staging, DELETED_FILES), JSON.stringify(deleted));
}

export interface ArchiveContents {
  config: ConfigDump;
  /** The bundle's config.json. */
  specPath: string;
  status: unknown;
  berth: BerthDump;
}

/**
 * What must match the CRIU images: the writable layer and the log, taken while the container
 * is still frozen after the dump (as CRI-O pauses it around both).
 */
export async function writeFrozenParts(
  staging: string,
  upper: string,
  logPath: string,
  runner: Runner = run,
): Promise<void> {
  await writeRootfsDiff(upper, staging, runner);
  try {
    await copyFile(logPath, join(staging, CONTAINER_LOG));
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw err;
  }
}

/**
 * Writes the metadata into `staging` (which holds CRIU's images, logs and the frozen parts),
 * then the archive to `location` (temp name + rename).
 */
export async function writeArchive(
  staging: string,
  what: ArchiveContents,
  location: string,
  runner: Runner = run,
): Promise<void> {
  const members = [CHECKPOINT_DIR, CONFIG_DUMP, SPEC_DUMP, STATUS_DUMP, BERTH_DUMP];
  await writeFile(join(staging, CONFIG_DUMP), JSON.stringify(what.config));
  await copyFile(what.specPath, join(staging, SPEC_DUMP));
  await writeFile(
    join(staging, STATUS_DUMP),
    JSON.stringify(what.status, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)),
  );
  await writeFile(join(staging, BERTH_DUMP), JSON.stringify(what.berth));
  for (const f of [ROOTFS_DIFF, DELETED_FILES, CONTAINER_LOG, ...CRIU_FILES]) {
    if (await exists(join(staging, f))) members.push(f);
  }
  const tmp = join(dirname(location), `.${basename(location)}.tmp-${randomBytes(4).toString("hex")}`);
  try {
    await writeFile(tmp, "", { mode: 0o600 });
    await tar(
      ["--create", "--numeric-owner", "--file", tmp, "--directory", staging, ...members],
      runner,
      "checkpoint archive",
    );
    await rename(tmp, location);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** A checkpoint archive unpacked into a staging directory, with its metadata read. */
export interface OpenedCheckpoint {
  dir: string;
  config: ConfigDump;
  berth: BerthDump;
}

/** Whether a CreateContainer image names a checkpoint archive (an absolute path, as CRI-O and containerd take it). */
export function isCheckpointArchive(image: string): boolean {
  return image.startsWith("/");
}

/**
 * Unpacks `archive` into `dir` (which it creates) and reads its metadata. Not a readable
 * regular file, not a tar, or without config.dump / berth.dump: INVALID_ARGUMENT.
 */
export async function openArchive(
  archive: string,
  dir: string,
  runner: Runner = run,
): Promise<OpenedCheckpoint> {
  const st = await stat(archive).catch(() => undefined);
  if (!st?.isFile()) throw invalidArgument(`checkpoint archive ${archive} is not a file`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const r = await runner("tar", ["--extract", "--no-same-owner", "--file", archive, "--directory", dir], {
    timeoutMs: 10 * 60_000,
  });
  if (r.exitCode !== 0)
    throw invalidArgument(
      `checkpoint archive ${archive} cannot be unpacked: ${r.stderr.trim() || describeExit(r)}`,
    );
  const read = async <T>(name: string): Promise<T> => {
    try {
      return JSON.parse(await readFile(join(dir, name), "utf8")) as T;
    } catch {
      throw invalidArgument(`${archive} is not a Berth checkpoint archive: no readable ${name}`);
    }
  };
  const config = await read<ConfigDump>(CONFIG_DUMP);
  const berth = await read<BerthDump>(BERTH_DUMP);
  if (typeof berth.containerConfig !== "string" || typeof config.rootfsImageRef !== "string") {
    throw invalidArgument(`${archive}: ${BERTH_DUMP} or ${CONFIG_DUMP} is malformed`);
  }
  if (!(await exists(join(dir, CHECKPOINT_DIR, "inventory.img")))) {
    throw invalidArgument(`${archive} holds no CRIU images (${CHECKPOINT_DIR}/inventory.img)`);
  }
  return { dir, config, berth };
}

/**
 * Applies the checkpoint's rootfs diff to the container's mounted rootfs: the changed files,
 * then the deletions (paths confined to the rootfs).
 */
export async function applyRootfsDiff(
  opened: OpenedCheckpoint,
  rootfs: string,
  runner: Runner = run,
): Promise<void> {
  const diff = join(opened.dir, ROOTFS_DIFF);
  if (await exists(diff)) {
    await tar(
      ["--extract", "--numeric-owner", "--xattrs", "--file", diff, "--directory", rootfs],
      runner,
      "rootfs diff",
    );
  }
  const deleted = await readFile(join(opened.dir, DELETED_FILES), "utf8").catch(() => "[]");
  let paths: unknown;
  try {
    paths = JSON.parse(deleted);
  } catch {
    throw invalidArgument(`checkpoint ${DELETED_FILES} is not JSON`);
  }
  if (!Array.isArray(paths)) throw invalidArgument(`checkpoint ${DELETED_FILES} is not a list`);
  for (const p of paths) {
    if (typeof p !== "string") continue;
    const rel = normalize(`/${p}`).slice(1);
    if (rel === "" || rel.startsWith("..") || (await crossesSymlink(rootfs, rel))) continue;
    await rm(join(rootfs, rel), { recursive: true, force: true });
  }
}

/** Whether a parent directory of `rel` inside `root` is a symlink (which rm would follow out of it). */
async function crossesSymlink(root: string, rel: string): Promise<boolean> {
  const parts = rel.split("/");
  let at = root;
  for (const part of parts.slice(0, -1)) {
    at = join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st) return false;
    if (st.isSymbolicLink()) return true;
  }
  return false;
}
