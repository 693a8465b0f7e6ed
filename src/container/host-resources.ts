/**
 * What a container request names on the host, resolved before the spec is built: device nodes
 * (type, major, minor, mode, owner) and bind-mount sources (created as directories when
 * missing, as containerd does). Also berthd's own capability bounding set, which is what
 * "ALL" and privileged can grant.
 */
import { lstat, mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Device, Mount } from "../api/gen/runtime/v1/api.js";
import { errnoCode, invalidArgument } from "../common/errors.js";
import { capabilityNamesFromMask } from "../runtime-spec/defaults.js";
import type { ResolvedDevice } from "../runtime-spec/resources.js";

const major = (rdev: number) =>
  Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
const minor = (rdev: number) => Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);

async function deviceAt(
  hostPath: string,
  containerPath: string,
  permissions: string,
): Promise<ResolvedDevice | undefined> {
  const st = await stat(hostPath);
  if (!st.isCharacterDevice() && !st.isBlockDevice()) return undefined;
  return {
    path: containerPath,
    type: st.isCharacterDevice() ? "c" : "b",
    major: major(st.rdev),
    minor: minor(st.rdev),
    fileMode: st.mode & 0o777,
    uid: st.uid,
    gid: st.gid,
    permissions,
  };
}

/** CRI devices: a device node, or a directory whose device nodes are all added. */
export async function resolveDevices(devices: readonly Device[]): Promise<ResolvedDevice[]> {
  const out: ResolvedDevice[] = [];
  for (const d of devices) {
    if (!d.hostPath.startsWith("/"))
      throw invalidArgument(`device host path "${d.hostPath}" must be absolute`);
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(d.hostPath);
    } catch (err) {
      throw invalidArgument(`device ${d.hostPath}: ${(err as Error).message}`, err);
    }
    const target = d.containerPath || d.hostPath;
    if (st.isDirectory()) {
      for (const name of await readdir(d.hostPath)) {
        const dev = await deviceAt(join(d.hostPath, name), join(target, name), d.permissions).catch(
          () => undefined,
        );
        if (dev) out.push(dev);
      }
      continue;
    }
    const dev = await deviceAt(d.hostPath, target, d.permissions);
    if (!dev) throw invalidArgument(`${d.hostPath} is not a device node`);
    out.push(dev);
  }
  return out;
}

/** Every device node under /dev, for privileged containers. */
export async function allHostDevices(): Promise<ResolvedDevice[]> {
  const out: ResolvedDevice[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const p = join(dir, name);
      if (p === "/dev/pts" || p === "/dev/shm" || p === "/dev/mqueue") continue;
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(p);
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const dev = await deviceAt(p, p, "rwm").catch(() => undefined);
        if (dev) out.push(dev);
      }
    }
  };
  await walk("/dev");
  return out;
}

/**
 * Missing bind-mount sources become directories (containerd's behaviour). Each missing part is
 * made with a plain mkdir below the deepest existing directory: a recursive mkdir spins forever
 * on paths like /proc/nonexistent/x in Node 20.
 */
export async function ensureMountSources(mounts: readonly Mount[]): Promise<void> {
  for (const m of mounts) {
    if (!m.hostPath.startsWith("/"))
      throw invalidArgument(`mount host path "${m.hostPath}" must be absolute`);
    const parts = m.hostPath.split("/").filter((p) => p !== "");
    let existing = 0;
    for (let i = parts.length; i >= 0; i--) {
      const path = `/${parts.slice(0, i).join("/")}`;
      const st = await stat(path).catch((err: unknown) => {
        if (errnoCode(err) === "ENOENT") return undefined;
        throw invalidArgument(`mount ${m.hostPath}: ${(err as Error).message}`, err);
      });
      if (!st) continue;
      if (i < parts.length && !st.isDirectory())
        throw invalidArgument(`mount ${m.hostPath}: ${path} is not a directory`);
      existing = i;
      break;
    }
    for (let i = existing + 1; i <= parts.length; i++) {
      const path = `/${parts.slice(0, i).join("/")}`;
      try {
        await mkdir(path, { mode: 0o755 });
      } catch (err) {
        if (errnoCode(err) === "EEXIST") continue;
        throw invalidArgument(
          `mount ${m.hostPath} does not exist and cannot be created: ${(err as Error).message}`,
          err,
        );
      }
    }
  }
}

/** berthd's capability bounding set (what "ALL" can grant without runc failing). */
export async function boundingCapabilities(): Promise<string[]> {
  const status = await readFile("/proc/self/status", "utf8");
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0";
  return capabilityNamesFromMask(BigInt(`0x${hex}`));
}
