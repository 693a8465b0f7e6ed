/**
 * Security-context pieces of a container spec: the capability sets (add / drop with "ALL"),
 * the choice of seccomp profile (new SecurityProfile field first, then the deprecated path form)
 * and the AppArmor selection (parsed and validated; not applied on hosts without AppArmor).
 */

import {
  type Capability,
  type SecurityProfile,
  SecurityProfile_ProfileType,
} from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from "./defaults.js";
import type { Capabilities } from "./types.js";

/** "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" → "CAP_NET_ADMIN"; unknown names are invalidArgument. */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  if (!ALL_CAPABILITIES.includes(full)) throw invalidArgument(`unknown capability ${JSON.stringify(name)}`);
  return full;
}

const isAll = (c: string) => c.trim().toUpperCase() === "ALL";

/**
 * The capability sets of a container, like containerd's CRI plugin: start from the default set
 * (or `allCaps` when privileged); add "ALL" → allCaps; drop "ALL" → none; then individual adds,
 * then individual drops. Ambient capabilities are also placed in the inheritable set, as the
 * kernel requires.
 */
export function buildCapabilities(
  caps: Capability | undefined,
  privileged: boolean,
  allCaps: readonly string[] = ALL_CAPABILITIES,
): Capabilities {
  let set: string[];
  if (privileged) {
    set = [...allCaps];
  } else {
    set = [...DEFAULT_CAPABILITIES];
    const add = caps?.addCapabilities ?? [];
    const drop = caps?.dropCapabilities ?? [];
    if (add.some(isAll)) set = [...allCaps];
    if (drop.some(isAll)) set = [];
    for (const c of add) {
      if (isAll(c)) continue;
      const n = normalizeCapability(c);
      if (!set.includes(n)) set.push(n);
    }
    const dropped = new Set(drop.filter((c) => !isAll(c)).map(normalizeCapability));
    set = set.filter((c) => !dropped.has(c));
  }
  const ambient = [...new Set((caps?.addAmbientCapabilities ?? []).map(normalizeCapability))];
  for (const a of ambient) {
    if (!set.includes(a))
      throw invalidArgument(`ambient capability ${a} is not in the container's capability set`);
  }
  return { bounding: set, effective: [...set], permitted: [...set], inheritable: [...ambient], ambient };
}

export type ProfileChoice =
  | { kind: "runtime-default" }
  | { kind: "unconfined" }
  | { kind: "localhost"; ref: string };

/** Reads a SecurityProfile message (seccomp or apparmor). */
function fromSecurityProfile(p: SecurityProfile, what: string): ProfileChoice {
  switch (p.profileType) {
    case SecurityProfile_ProfileType.RuntimeDefault:
      return { kind: "runtime-default" };
    case SecurityProfile_ProfileType.Unconfined:
      return { kind: "unconfined" };
    case SecurityProfile_ProfileType.Localhost:
      if (p.localhostRef === "")
        throw invalidArgument(`${what} profile type Localhost requires localhost_ref`);
      return { kind: "localhost", ref: p.localhostRef };
    default:
      throw invalidArgument(`unknown ${what} profile type ${p.profileType}`);
  }
}

/**
 * The seccomp profile of a container: the `seccomp` field when present, else the deprecated
 * `seccomp_profile_path` ("runtime/default", "docker/default", "unconfined", "localhost/<path>"),
 * else `unset` (containerd's unset_seccomp_profile; "unconfined" by default).
 */
export function selectSeccomp(
  profile: SecurityProfile | undefined,
  deprecatedPath: string,
  unset: ProfileChoice = { kind: "unconfined" },
): ProfileChoice {
  if (profile) return fromSecurityProfile(profile, "seccomp");
  switch (deprecatedPath) {
    case "":
      return unset;
    case "runtime/default":
    case "docker/default":
      return { kind: "runtime-default" };
    case "unconfined":
      return { kind: "unconfined" };
  }
  if (deprecatedPath.startsWith("localhost/")) {
    const ref = deprecatedPath.slice("localhost/".length);
    if (ref === "") throw invalidArgument("seccomp profile path localhost/ names no file");
    return { kind: "localhost", ref };
  }
  throw invalidArgument(`unsupported seccomp profile path ${JSON.stringify(deprecatedPath)}`);
}

/** The AppArmor selection, same precedence; "runtime/default" when nothing is set. */
export function selectApparmor(profile: SecurityProfile | undefined, deprecated: string): ProfileChoice {
  if (profile) return fromSecurityProfile(profile, "apparmor");
  switch (deprecated) {
    case "":
    case "runtime/default":
      return { kind: "runtime-default" };
    case "unconfined":
      return { kind: "unconfined" };
  }
  if (deprecated.startsWith("localhost/") && deprecated.length > "localhost/".length) {
    return { kind: "localhost", ref: deprecated.slice("localhost/".length) };
  }
  throw invalidArgument(`unsupported apparmor profile ${JSON.stringify(deprecated)}`);
}

/**
 * The file of a Localhost seccomp profile. Absolute refs are used as given (kubelet sends
 * absolute paths); relative ones are resolved under `root` and may not leave it.
 */
export function localhostProfilePath(ref: string, root: string | undefined): string {
  if (ref.includes("\0")) throw invalidArgument("seccomp profile path contains NUL");
  if (ref.startsWith("/")) return ref;
  if (!root) throw invalidArgument(`relative seccomp profile ${JSON.stringify(ref)} without a profile root`);
  const parts = ref.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0 || parts.includes("..")) {
    throw invalidArgument(`seccomp profile ${JSON.stringify(ref)} escapes the profile root`);
  }
  return `${root.replace(/\/+$/, "")}/${parts.join("/")}`;
}
