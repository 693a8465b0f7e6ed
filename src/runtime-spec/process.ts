/**
 * Process fields of a container with Kubernetes' rules: args from command / args / image
 * Entrypoint + Cmd, env merge, working directory, and user / group resolution against the
 * container rootfs's /etc/passwd and /etc/group.
 */

import type { Int64Value, KeyValue } from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import type { ContainerConfig as ImageRuntimeConfig } from "../image/registry/oci.js";
import { DEFAULT_PATH_ENV } from "./defaults.js";

/**
 * Reads a file of the container rootfs by its in-container absolute path ("/etc/passwd").
 * Returns undefined when the file does not exist. The implementation must not escape the rootfs
 * (symlinks resolved inside it).
 */
export type RootfsReader = (path: string) => Promise<string | undefined>;

/** Kubernetes' command rules: command replaces Entrypoint and drops Cmd; args alone replace Cmd. */
export function resolveArgs(
  command: readonly string[],
  args: readonly string[],
  image?: ImageRuntimeConfig,
): string[] {
  const entrypoint = image?.Entrypoint ?? [];
  const cmd = image?.Cmd ?? [];
  let out: string[];
  if (command.length > 0) out = [...command, ...args];
  else if (args.length > 0) out = [...entrypoint, ...args];
  else out = [...entrypoint, ...cmd];
  if (out.length === 0) throw invalidArgument("no command specified");
  return out;
}

/**
 * `base` (default PATH), then the image's env, then the CRI envs; later entries override earlier
 * ones by name, keeping the first position.
 */
export function mergeEnv(
  imageEnv: readonly string[] | undefined,
  criEnvs: readonly KeyValue[],
  base: readonly string[] = [DEFAULT_PATH_ENV],
): string[] {
  const order: string[] = [];
  const values = new Map<string, string>();
  const set = (name: string, entry: string) => {
    if (!values.has(name)) order.push(name);
    values.set(name, entry);
  };
  const setEntry = (entry: string) => {
    const eq = entry.indexOf("=");
    set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? `${entry}=` : entry);
  };
  for (const e of base) setEntry(e);
  for (const e of imageEnv ?? []) if (e !== "") setEntry(e);
  for (const kv of criEnvs) {
    if (kv.key === "") continue;
    set(kv.key, `${kv.key}=${kv.value}`);
  }
  return order.map((n) => values.get(n)!);
}

/** CRI working_dir, else the image's WorkingDir, else "/". Must be absolute. */
export function resolveWorkingDir(criWorkingDir: string, image?: ImageRuntimeConfig): string {
  const wd = criWorkingDir || image?.WorkingDir || "/";
  if (!wd.startsWith("/")) throw invalidArgument(`working directory ${JSON.stringify(wd)} is not absolute`);
  return wd;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_ID = 0xfffffffe;

function parseId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

export function parsePasswd(content: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of content.split("\n")) {
    if (line.startsWith("#")) continue;
    const f = line.trim().split(":");
    if (f.length < 4 || !f[0]) continue;
    const uid = parseId(f[2] ?? "");
    const gid = parseId(f[3] ?? "");
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0], uid, gid });
  }
  return out;
}

export function parseGroup(content: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of content.split("\n")) {
    if (line.startsWith("#")) continue;
    const f = line.trim().split(":");
    if (f.length < 3 || !f[0]) continue;
    const gid = parseId(f[2] ?? "");
    if (gid === undefined) continue;
    const members = (f[3] ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter(Boolean);
    out.push({ name: f[0], gid, members });
  }
  return out;
}

export interface UserInput {
  runAsUser?: Int64Value | undefined;
  runAsUsername?: string;
  runAsGroup?: Int64Value | undefined;
  supplementalGroups?: readonly bigint[];
  /** The image config's User ("", "name", "uid", "uid:gid", "name:group"...). */
  imageUser?: string | undefined;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** The passwd name of the uid, when the rootfs has one. */
  username?: string;
}

function int64Id(v: Int64Value, what: string): number {
  if (v.value < 0n || v.value > BigInt(MAX_ID)) throw invalidArgument(`${what} ${v.value} is out of range`);
  return Number(v.value);
}

/**
 * Resolves the process user. Precedence: run_as_user, then run_as_username, then the image User;
 * run_as_group overrides the group (and requires a user). Names are looked up in the rootfs;
 * a numeric uid without a passwd entry gets gid 0. Additional gids: the groups of /etc/group
 * listing the user as a member, then supplemental_groups (deduplicated, primary gid excluded).
 */
export async function resolveUser(input: UserInput, readRootfsFile: RootfsReader): Promise<ResolvedUser> {
  let passwdCache: PasswdEntry[] | undefined;
  let groupCache: GroupEntry[] | undefined;
  const passwd = async () => (passwdCache ??= parsePasswd((await readRootfsFile("/etc/passwd")) ?? ""));
  const groups = async () => (groupCache ??= parseGroup((await readRootfsFile("/etc/group")) ?? ""));

  const byUid = async (uid: number) => (await passwd()).find((p) => p.uid === uid);
  const byName = async (name: string) => {
    const p = (await passwd()).find((e) => e.name === name);
    if (!p) throw invalidArgument(`user ${JSON.stringify(name)} not found in the container's /etc/passwd`);
    return p;
  };
  const groupByName = async (name: string) => {
    const g = (await groups()).find((e) => e.name === name);
    if (!g) throw invalidArgument(`group ${JSON.stringify(name)} not found in the container's /etc/group`);
    return g;
  };

  const runAsGroup = input.runAsGroup ? int64Id(input.runAsGroup, "run_as_group") : undefined;
  let uid: number;
  let gid: number;
  let username: string | undefined;

  if (input.runAsUser) {
    uid = int64Id(input.runAsUser, "run_as_user");
    const p = await byUid(uid);
    gid = p?.gid ?? 0;
    username = p?.name;
  } else if (input.runAsUsername) {
    const p = await byName(input.runAsUsername);
    ({ uid, gid, name: username } = p);
  } else if (input.imageUser) {
    if (runAsGroup !== undefined) throw invalidArgument("run_as_group is specified without a user");
    const colon = input.imageUser.indexOf(":");
    const userPart = colon < 0 ? input.imageUser : input.imageUser.slice(0, colon);
    const groupPart = colon < 0 ? undefined : input.imageUser.slice(colon + 1);
    if (userPart === "") throw invalidArgument(`invalid image user ${JSON.stringify(input.imageUser)}`);
    const numericUid = parseId(userPart);
    if (numericUid !== undefined) {
      uid = numericUid;
      const p = await byUid(uid);
      gid = p?.gid ?? 0;
      username = p?.name;
    } else {
      ({ uid, gid, name: username } = await byName(userPart));
    }
    if (groupPart !== undefined && groupPart !== "") {
      gid = parseId(groupPart) ?? (await groupByName(groupPart)).gid;
    }
  } else {
    if (runAsGroup !== undefined) throw invalidArgument("run_as_group is specified without a user");
    uid = 0;
    gid = 0;
    username = (await byUid(0))?.name;
  }
  if (runAsGroup !== undefined) gid = runAsGroup;

  const extra: number[] = [];
  if (username !== undefined) {
    for (const g of await groups()) if (g.members.includes(username)) extra.push(g.gid);
  }
  for (const g of input.supplementalGroups ?? []) {
    extra.push(int64Id({ value: g }, "supplemental group"));
  }
  const additionalGids = [...new Set(extra)].filter((g) => g !== gid);
  const out: ResolvedUser = { uid, gid, additionalGids };
  if (username !== undefined) out.username = username;
  return out;
}
