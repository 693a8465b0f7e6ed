/**
 * Pinned pod namespaces, in the spirit of CRI-O's pinns: new network / IPC / UTS namespaces are
 * bind-mounted onto files `<dir>/{net,ipc,uts}/<id>` so they live without any process in them
 * (and across berthd restarts) until removePodNamespaces unmounts them.
 *
 * Mechanism: one `unshare --net=<file> --ipc=<file> --uts=<file> -- /bin/sh -c …` (util-linux).
 * unshare creates the namespaces and its helper child bind-mounts /proc/<pid>/ns/* onto the
 * files; the shell, already inside the new namespaces, sets the hostname, brings `lo` up and
 * writes namespaced sysctls, then exits. `<dir>` is made a private bind mount of itself (like
 * `ip netns` does for /run/netns) so the nsfs mounts neither propagate into other mount
 * namespaces nor get propagated back.
 */
import { mkdir, open, readdir, readFile, realpath, statfs, unlink } from "node:fs/promises";
import { join } from "node:path";
import { alreadyExists, errnoCode, internal, invalidArgument } from "../common/errors.js";
import { MNT_DETACH, MS_BIND, native } from "../common/native.js";
import { run, tail } from "../common/process.js";

const MS_REC = 0x4000;
const MS_PRIVATE = 0x40000;
/** statfs f_type of nsfs (a bind-mounted namespace file). */
export const NSFS_MAGIC = 0x6e736673;

export const NAMESPACE_KINDS = ["net", "ipc", "uts"] as const;
export type NamespaceKind = (typeof NAMESPACE_KINDS)[number];
/** Paths of the pinned namespace files; a kind is absent when the pod shares the host's. */
export type PodNamespacePaths = Partial<Record<NamespaceKind, string>>;

export interface CreatePodNamespacesOptions {
  /** Root of the pin files, e.g. /run/berth/ns; becomes a private bind mount of itself. */
  dir: string;
  /** Pod sandbox id: the file name under each kind's directory. */
  id: string;
  /** true = create a new namespace of that kind; false = the pod uses the host's. */
  net: boolean;
  ipc: boolean;
  uts: boolean;
  /** Set in the new UTS namespace (ignored when uts is false). */
  hostname?: string;
  /** Namespaced sysctls (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*). */
  sysctls?: Readonly<Record<string, string>>;
  /** Timeout for the unshare helper (default 30 s). */
  timeoutMs?: number;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/;
const SYSCTL_KEY_RE = /^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/;

/** Which namespace a sysctl belongs to (Kubernetes' "safe + namespaced" rules), or null if none. */
export function sysctlNamespace(key: string): NamespaceKind | null {
  if (key.startsWith("net.")) return "net";
  if (key === "kernel.sem" || key.startsWith("kernel.shm") || key.startsWith("kernel.msg")) return "ipc";
  if (key.startsWith("fs.mqueue.")) return "ipc";
  return null;
}

/** Validates sysctls against the namespaces being created; returns [procPath, value] pairs. */
export function planSysctls(
  sysctls: Readonly<Record<string, string>>,
  created: Readonly<Record<NamespaceKind, boolean>>,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(sysctls)) {
    if (!SYSCTL_KEY_RE.test(key)) throw invalidArgument(`invalid sysctl name ${JSON.stringify(key)}`);
    const kind = sysctlNamespace(key);
    if (kind === null) throw invalidArgument(`sysctl ${key} is not namespaced and cannot be set for a pod`);
    if (!created[kind]) {
      throw invalidArgument(`sysctl ${key} needs a private ${kind} namespace, but the pod uses the host's`);
    }
    if (value.includes("\0") || value.includes("\n")) {
      throw invalidArgument(`invalid value for sysctl ${key}`);
    }
    out.push([key.replaceAll(".", "/"), value]);
  }
  return out;
}

// $1 = hostname ("" = leave), $2 = 1 to bring lo up, then pairs of /proc/sys path and value.
const PIN_SCRIPT = [
  "set -e",
  'if [ "$2" = 1 ]; then ip link set lo up; fi',
  'if [ -n "$1" ]; then printf %s "$1" > /proc/sys/kernel/hostname; fi',
  "shift 2",
  'while [ "$#" -gt 1 ]; do printf %s "$2" > "/proc/sys/$1"; shift 2; done',
].join("\n");

/** Creates the requested namespaces, pinned under `dir`; returns the files. */
export async function createPodNamespaces(opts: CreatePodNamespacesOptions): Promise<PodNamespacePaths> {
  if (!ID_RE.test(opts.id)) throw invalidArgument(`invalid pod id ${JSON.stringify(opts.id)}`);
  const created = { net: opts.net, ipc: opts.ipc, uts: opts.uts };
  const hostname = opts.uts ? (opts.hostname ?? "") : "";
  if (hostname !== "" && !HOSTNAME_RE.test(hostname)) {
    throw invalidArgument(`invalid hostname ${JSON.stringify(hostname)}`);
  }
  const sysctls = planSysctls(opts.sysctls ?? {}, created);
  const kinds = NAMESPACE_KINDS.filter((k) => created[k]);
  if (kinds.length === 0) return {};

  await ensurePinDir(opts.dir);
  const paths: PodNamespacePaths = {};
  try {
    for (const kind of kinds) {
      const kindDir = join(opts.dir, kind);
      await mkdir(kindDir, { recursive: true, mode: 0o755 });
      const file = join(kindDir, opts.id);
      let fh: Awaited<ReturnType<typeof open>>;
      try {
        fh = await open(file, "wx", 0o444);
      } catch (err) {
        if (errnoCode(err) === "EEXIST") {
          throw alreadyExists(`${kind} namespace for pod ${opts.id} already pinned at ${file}`);
        }
        throw err;
      }
      await fh.close();
      paths[kind] = file;
    }
    const args = kinds.map((k) => `--${k}=${paths[k]}`);
    args.push("--", "/bin/sh", "-c", PIN_SCRIPT, "berth-pinns", hostname, opts.net ? "1" : "0");
    for (const [p, v] of sysctls) args.push(p, v);
    const res = await run("unshare", args, { timeoutMs: opts.timeoutMs ?? 30_000 });
    if (res.timedOut) throw internal(`pinning namespaces for pod ${opts.id}: unshare timed out`);
    if (res.exitCode !== 0) {
      throw internal(
        `pinning namespaces for pod ${opts.id}: unshare exited ${res.exitCode ?? res.signal}: ${tail(res.stderr)}`,
      );
    }
    for (const kind of kinds) {
      if (!(await isNsfs(paths[kind]!)))
        throw internal(`pinning ${kind} namespace: ${paths[kind]} is not nsfs`);
    }
    return paths;
  } catch (err) {
    await removePodNamespaces(paths).catch(() => {});
    throw err;
  }
}

/** Unmounts (lazily) and unlinks pinned namespace files; missing or unmounted files are fine. */
export async function removePodNamespaces(paths: PodNamespacePaths | readonly string[]): Promise<void> {
  const files = Array.isArray(paths)
    ? (paths as readonly string[])
    : Object.values(paths as PodNamespacePaths).filter((p): p is string => p !== undefined);
  const errors: unknown[] = [];
  for (const file of files) {
    try {
      // A file may carry stacked mounts after a crash in the middle of a retry; peel them all.
      for (let i = 0; i < 8; i++) {
        try {
          await native().umount2(file, MNT_DETACH);
        } catch (err) {
          const code = errnoCode(err);
          if (code === "EINVAL" || code === "ENOENT") break;
          throw err;
        }
      }
      await unlink(file).catch((err: unknown) => {
        if (errnoCode(err) !== "ENOENT") throw err;
      });
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw internal(`removing pinned namespaces: ${String(errors[0])}`, errors[0]);
}

export interface PinnedPod {
  id: string;
  paths: PodNamespacePaths;
}

/** Pinned namespace files under `dir`, grouped by pod id (for crash recovery / GC). */
export async function listPinned(dir: string): Promise<PinnedPod[]> {
  const byId = new Map<string, PodNamespacePaths>();
  for (const kind of NAMESPACE_KINDS) {
    let names: string[];
    try {
      names = await readdir(join(dir, kind));
    } catch (err) {
      if (errnoCode(err) === "ENOENT") continue;
      throw err;
    }
    for (const name of names) {
      if (!ID_RE.test(name)) continue;
      const entry = byId.get(name) ?? {};
      entry[kind] = join(dir, kind, name);
      byId.set(name, entry);
    }
  }
  return [...byId.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, paths]) => ({ id, paths }));
}

/** True when `path` is a live bind-mounted namespace (nsfs), false if missing or a plain file. */
export async function isNsfs(path: string): Promise<boolean> {
  try {
    return (await statfs(path)).type === NSFS_MAGIC;
  } catch (err) {
    if (errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR") return false;
    throw err;
  }
}

const ensured = new Map<string, Promise<void>>();

/** Makes `dir` a bind mount of itself with private propagation (once per process and dir). */
export function ensurePinDir(dir: string): Promise<void> {
  let p = ensured.get(dir);
  if (p === undefined) {
    p = doEnsurePinDir(dir);
    ensured.set(dir, p);
    p.catch(() => ensured.delete(dir));
  }
  return p;
}

async function doEnsurePinDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const real = await realpath(dir);
  const mount = (await readMountInfo()).filter((m) => m.mountPoint === real).at(-1);
  if (mount === undefined) {
    await native().mount(real, real, "", MS_BIND | MS_REC, "");
  } else if (!mount.shared) {
    return;
  }
  await native().mount("", real, "", MS_PRIVATE | MS_REC, "");
}

interface MountInfoEntry {
  mountPoint: string;
  shared: boolean;
}

async function readMountInfo(): Promise<MountInfoEntry[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out: MountInfoEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const fields = line.split(" ");
    const sep = fields.indexOf("-");
    const optional = fields.slice(6, sep < 0 ? undefined : sep);
    out.push({
      mountPoint: unescapeMountInfo(fields[4] ?? ""),
      shared: optional.some((f) => f.startsWith("shared:") || f.startsWith("master:")),
    });
  }
  return out;
}

function unescapeMountInfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}
