/**
 * CNI network configuration: loading `.conflist` / `.conf` / `.json` files from conf dirs
 * (the first file in name order wins, like CRI-O and containerd) and validating them.
 * A single-plugin `.conf` is wrapped into a one-plugin list.
 */
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { errnoCode, failedPrecondition } from "../common/errors.js";

export const DEFAULT_CONF_DIRS: readonly string[] = ["/etc/cni/net.d"];
export const CONF_EXTENSIONS: readonly string[] = [".conflist", ".conf", ".json"];
/** cniVersions whose config and result formats this client understands. */
export const SUPPORTED_CNI_VERSIONS: readonly string[] = [
  "0.1.0",
  "0.2.0",
  "0.3.0",
  "0.3.1",
  "0.4.0",
  "1.0.0",
  "1.1.0",
];

/** One plugin's configuration; other keys are plugin-specific and passed through untouched. */
export interface CniPluginConfig {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniNetworkConfigList {
  name: string;
  cniVersion: string;
  disableCheck: boolean;
  plugins: CniPluginConfig[];
  /** The file it came from (or a label for in-memory configs). */
  source: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function bad(source: string, detail: string): Error {
  return failedPrecondition(`invalid CNI network config ${source}: ${detail}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Compares dotted versions numerically (-1, 0, 1). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function checkVersion(v: unknown, source: string): string {
  if (typeof v !== "string" || v === "") throw bad(source, '"cniVersion" must be a non-empty string');
  if (!SUPPORTED_CNI_VERSIONS.includes(v)) {
    throw bad(
      source,
      `unsupported cniVersion ${JSON.stringify(v)} (supported: ${SUPPORTED_CNI_VERSIONS.join(", ")})`,
    );
  }
  return v;
}

function checkPlugin(p: unknown, source: string, where: string): CniPluginConfig {
  if (!isObject(p)) throw bad(source, `${where} must be a JSON object`);
  const type = p["type"];
  if (typeof type !== "string" || type === "") throw bad(source, `${where} has no "type"`);
  if (!TYPE_RE.test(type)) throw bad(source, `${where} has an invalid "type" ${JSON.stringify(type)}`);
  const caps = p["capabilities"];
  if (caps !== undefined) {
    if (!isObject(caps) || !Object.values(caps).every((c) => typeof c === "boolean")) {
      throw bad(source, `${where} ("${type}"): "capabilities" must map names to booleans`);
    }
  }
  return p as CniPluginConfig;
}

/**
 * Parses a network config: a list (has "plugins") or a single plugin (has "type", wrapped into
 * a list). Throws FailedPrecondition naming `source` and what is wrong.
 */
export function parseNetworkConfig(text: string, source: string): CniNetworkConfigList {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(source, `not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw bad(source, "top level must be a JSON object");
  const name = doc["name"];
  if (typeof name !== "string" || name === "") throw bad(source, 'missing "name"');
  if (!NAME_RE.test(name)) throw bad(source, `invalid network name ${JSON.stringify(name)}`);
  const cniVersion = checkVersion(doc["cniVersion"], source);
  const rawPlugins = doc["plugins"];
  if (rawPlugins === undefined) {
    if (source.endsWith(".conflist")) throw bad(source, 'a .conflist needs a "plugins" array');
    // Single plugin (.conf): the whole document is the plugin's config.
    return {
      name,
      cniVersion,
      disableCheck: false,
      plugins: [checkPlugin(doc, source, "the config")],
      source,
    };
  }
  if (!Array.isArray(rawPlugins)) throw bad(source, '"plugins" must be an array');
  if (rawPlugins.length === 0) throw bad(source, '"plugins" is empty');
  const plugins = rawPlugins.map((p, i) => checkPlugin(p, source, `plugins[${i}]`));
  const dc = doc["disableCheck"];
  if (dc !== undefined && typeof dc !== "boolean") throw bad(source, '"disableCheck" must be a boolean');
  return { name, cniVersion, disableCheck: dc === true, plugins, source };
}

/** Config files in `dir` with a CNI extension, sorted by name; [] if the dir does not exist. */
export async function listConfFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR") return [];
    throw err;
  }
  return names
    .filter((n) => CONF_EXTENSIONS.includes(extname(n)) && !n.startsWith("."))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(dir, n));
}

/**
 * The network config to use: the first file (name order) of the first conf dir that has any.
 * null when there is none; throws FailedPrecondition when that first file is invalid.
 */
export async function loadNetworkConfig(confDirs: readonly string[]): Promise<CniNetworkConfigList | null> {
  for (const dir of confDirs) {
    const first = (await listConfFiles(dir))[0];
    if (first === undefined) continue;
    let text: string;
    try {
      text = await readFile(first, "utf8");
    } catch (err) {
      throw failedPrecondition(`reading CNI network config ${first}: ${(err as Error).message}`, err);
    }
    return parseNetworkConfig(text, first);
  }
  return null;
}
