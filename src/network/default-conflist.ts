/**
 * The conflist Berth's setup installs when a node has no CNI config: network "berth" on bridge
 * berth0 (gateway, masquerade), host-local IPAM in 10.88.0.0/16, portmap for hostPorts and
 * optionally bandwidth for traffic shaping.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../store/atomic.js";
import { compareVersions, listConfFiles } from "./cni-config.js";
import { DEFAULT_BIN_DIRS, findPlugin, pluginVersionInfo } from "./cni-exec.js";

/** containernetworking-plugins 1.1.1 (Debian 12) report 0.1.0 … 1.0.0, so 1.0.0 is used. */
export const DEFAULT_CNI_VERSION = "1.0.0";
export const DEFAULT_CONFLIST_NAME = "10-berth.conflist";

export interface DefaultConflistOptions {
  cniVersion?: string;
  name?: string;
  bridge?: string;
  subnet?: string;
  /** host-local's state dir (default the plugin's own, /var/lib/cni/networks). */
  dataDir?: string;
  /** Add the bandwidth plugin (needs the sch_tbf/ifb kernel modules on use). Default true. */
  bandwidth?: boolean;
  /** Masquerade traffic leaving the pod subnet (default true). */
  ipMasq?: boolean;
  /** Add portmap for hostPorts (default true). */
  portmap?: boolean;
  /** The bridge in promiscuous mode (default false). */
  promiscMode?: boolean;
  /** Add the loopback plugin (default false: berthd brings lo up itself). */
  loopback?: boolean;
}

export function defaultConflist(opts: DefaultConflistOptions = {}): Record<string, unknown> {
  const ipam: Record<string, unknown> = {
    type: "host-local",
    ranges: [[{ subnet: opts.subnet ?? "10.88.0.0/16" }]],
    routes: [{ dst: "0.0.0.0/0" }],
  };
  if (opts.dataDir !== undefined) ipam["dataDir"] = opts.dataDir;
  const plugins: Record<string, unknown>[] = [
    {
      type: "bridge",
      bridge: opts.bridge ?? "berth0",
      isGateway: true,
      ipMasq: opts.ipMasq ?? true,
      // The bridge plugin takes one of the two: hairpin by default, promiscuous when asked.
      ...(opts.promiscMode ? { promiscMode: true } : { hairpinMode: true }),
      ipam,
    },
  ];
  if (opts.portmap ?? true) plugins.push({ type: "portmap", capabilities: { portMappings: true } });
  if (opts.bandwidth ?? true) plugins.push({ type: "bandwidth", capabilities: { bandwidth: true } });
  if (opts.loopback) plugins.push({ type: "loopback" });
  return { cniVersion: opts.cniVersion ?? DEFAULT_CNI_VERSION, name: opts.name ?? "berth", plugins };
}

/** The highest cniVersion of `preferred` that the installed bridge plugin supports. */
export async function pickCniVersion(
  binDirs: readonly string[] = DEFAULT_BIN_DIRS,
  preferred: readonly string[] = ["1.0.0", "0.4.0", "0.3.1"],
): Promise<string> {
  const info = await pluginVersionInfo(await findPlugin("bridge", binDirs));
  const ok = preferred
    .filter((v) => info.supportedVersions.includes(v))
    .sort((a, b) => compareVersions(b, a));
  return ok[0] ?? "0.3.1";
}

/**
 * Writes the default conflist into confDir unless a config is already there. Returns the path
 * written, or null when an existing config was kept.
 */
export async function installDefaultConflist(
  confDir: string,
  opts: DefaultConflistOptions & { binDirs?: readonly string[] } = {},
): Promise<string | null> {
  if ((await listConfFiles(confDir)).length > 0) return null;
  const cniVersion = opts.cniVersion ?? (await pickCniVersion(opts.binDirs));
  await mkdir(confDir, { recursive: true, mode: 0o755 });
  const path = join(confDir, DEFAULT_CONFLIST_NAME);
  await writeFileAtomic(
    path,
    `${JSON.stringify(defaultConflist({ ...opts, cniVersion }), null, 2)}\n`,
    0o644,
  );
  return path;
}
