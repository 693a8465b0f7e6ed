/**
 * The host's root as the collector sees it. Run as a DaemonSet, the collector has the node's
 * `/` mounted at a point of its own (`--host-root /logtail_host`, iLogtail's convention), and
 * every path the runtime gives (CRI log paths, Docker's LogPath, overlay upper dirs, bind-mount
 * sources, /proc/<pid>) is a host path: it is opened under that point, while records, tags and
 * `__path__` keep the host's (or the container's) view of it. No host root ("" or `/`): paths
 * are opened as they are (a collector running on the host).
 */
import { readFile } from "node:fs/promises";

export const HOST_ROOT_ENV = "BERTH_COLLECTOR_HOST_ROOT";

/** The host root from the flag, else the environment; "" when the collector runs on the host. */
export function hostRootFrom(flag: string | undefined, env = process.env): string {
  const raw = flag ?? env[HOST_ROOT_ENV] ?? "";
  if (raw === "") return "";
  if (!raw.startsWith("/")) {
    throw new Error(`--host-root (or $${HOST_ROOT_ENV}): want an absolute path, got ${JSON.stringify(raw)}`);
  }
  return raw.replace(/\/+$/, "");
}

/** Where the collector opens the host path `path` (absolute). */
export function onHost(root: string, path: string): string {
  return root && path.startsWith("/") ? `${root}${path}` : path;
}

/** The host path of a path opened under the host root (the reverse of onHost). */
export function hostView(root: string, opened: string): string {
  return root && opened.startsWith(`${root}/`) ? opened.slice(root.length) : opened;
}

/** mountinfo's octal escapes (`\040` for a space…). */
const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/**
 * The overlay upper dir of the mount at `/` in a process's mountinfo (its container's writable
 * layer, a host path), or undefined when its root is not an overlay.
 */
export function overlayUpperDir(mountinfo: string): string | undefined {
  let top: string | undefined; // the last mount at `/` is the one on top
  for (const line of mountinfo.split("\n")) {
    // id parent major:minor root mount-point options [optional…] - fstype source super-options
    const sep = line.indexOf(" - ");
    if (sep >= 0 && line.slice(0, sep).split(" ")[4] === "/") top = line.slice(sep + 3);
  }
  const [fstype, , superOptions = ""] = top?.split(" ") ?? [];
  if (fstype !== "overlay") return undefined;
  const upper = superOptions.split(",").find((o) => o.startsWith("upperdir="));
  return upper ? unescapeOctal(upper.slice("upperdir=".length)) : undefined;
}

/** The writable layer of the container whose init process is `pid` (a host pid), from /proc. */
export async function upperDirOfPid(root: string, pid: number): Promise<string | undefined> {
  if (!(pid > 0)) return undefined;
  const text = await readFile(onHost(root, `/proc/${pid}/mountinfo`), "utf8").catch(() => undefined);
  return text === undefined ? undefined : overlayUpperDir(text);
}
