/**
 * Mount list of a container spec, as containerd's CRI plugin builds it: the default mounts minus
 * those a supplied mount overrides (and everything under /dev when /dev itself is supplied), then
 * the pod's files (/etc/hostname, /etc/hosts, /etc/resolv.conf, /dev/shm) and the CRI mounts,
 * sorted by destination depth so parents are mounted before children.
 */
import { posix } from "node:path";
import { type Mount as CriMount, MountPropagation } from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import { defaultMounts } from "./defaults.js";
import type { Mount } from "./types.js";

/** Host files of the pod to bind-mount into its containers. */
export interface PodFiles {
  resolvConf?: string;
  hosts?: string;
  hostname?: string;
  shm?: string;
}

export interface MountsInput {
  criMounts: readonly CriMount[];
  podFiles?: PodFiles | undefined;
  readonlyRootfs: boolean;
  /** Privileged containers get read-write sysfs and cgroupfs. */
  privileged: boolean;
}

export interface MountsResult {
  mounts: Mount[];
  /** "rshared" / "rslave" when a mount needs that propagation of the rootfs. */
  rootfsPropagation?: string;
}

function cleanAbs(p: string, what: string): string {
  if (p === "") throw invalidArgument(`${what} is empty`);
  if (!p.startsWith("/")) throw invalidArgument(`${what} ${JSON.stringify(p)} is not absolute`);
  if (p.includes("\0")) throw invalidArgument(`${what} contains NUL`);
  return posix.normalize(p).replace(/(.)\/+$/, "$1");
}

function propagationOption(p: MountPropagation): string {
  switch (p) {
    case MountPropagation.PROPAGATION_PRIVATE:
      return "rprivate";
    case MountPropagation.PROPAGATION_HOST_TO_CONTAINER:
      return "rslave";
    case MountPropagation.PROPAGATION_BIDIRECTIONAL:
      return "rshared";
    default:
      throw invalidArgument(`unknown mount propagation ${p}`);
  }
}

const depth = (p: string) => (p === "/" ? 0 : p.split("/").length - 1);

export function buildMounts(input: MountsInput): MountsResult {
  type Supplied = { destination: string; source: string; readonly: boolean; propagation: string };
  const criMounts: Supplied[] = [];
  const seen = new Set<string>();
  for (const m of input.criMounts) {
    if (m.containerPath === "") throw invalidArgument("mount has no container path");
    const destination = cleanAbs(m.containerPath, "mount container path");
    const source = cleanAbs(m.hostPath, `host path of mount ${destination}`);
    if (m.uidMappings.length > 0 || m.gidMappings.length > 0) {
      throw invalidArgument(`mount ${destination}: idmapped mounts are not supported`);
    }
    if (seen.has(destination)) throw invalidArgument(`duplicate mount destination ${destination}`);
    seen.add(destination);
    // selinux_relabel is ignored: no SELinux on the hosts Berth targets.
    criMounts.push({
      destination,
      source,
      readonly: m.readonly,
      propagation: propagationOption(m.propagation),
    });
  }

  // The pod's files come first (containerd's order), unless the request mounts that path itself.
  const supplied: Supplied[] = [];
  const pod = input.podFiles ?? {};
  const podMounts: Array<[string, string | undefined, boolean]> = [
    ["/etc/hostname", pod.hostname, input.readonlyRootfs],
    ["/etc/hosts", pod.hosts, input.readonlyRootfs],
    ["/etc/resolv.conf", pod.resolvConf, input.readonlyRootfs],
    ["/dev/shm", pod.shm, false],
  ];
  for (const [destination, source, readonly] of podMounts) {
    if (source === undefined || seen.has(destination)) continue;
    seen.add(destination);
    supplied.push({
      destination,
      source: cleanAbs(source, `pod file for ${destination}`),
      readonly,
      propagation: "rprivate",
    });
  }
  supplied.push(...criMounts);

  const mounts: Mount[] = [];
  for (const m of defaultMounts()) {
    if (seen.has(m.destination)) continue;
    if (seen.has("/dev") && m.destination.startsWith("/dev/")) continue;
    if (input.privileged && (m.destination === "/sys" || m.destination === "/sys/fs/cgroup")) {
      m.options = (m.options ?? []).map((o) => (o === "ro" ? "rw" : o));
    }
    mounts.push(m);
  }

  let rootfsPropagation: string | undefined;
  const ordered = supplied
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i);
  for (const { m } of ordered) {
    mounts.push({
      destination: m.destination,
      type: "bind",
      source: m.source,
      options: ["rbind", m.propagation, m.readonly ? "ro" : "rw"],
    });
    if (m.propagation === "rshared") rootfsPropagation = "rshared";
    else if (m.propagation === "rslave" && rootfsPropagation !== "rshared") rootfsPropagation = "rslave";
  }
  const result: MountsResult = { mounts };
  if (rootfsPropagation) result.rootfsPropagation = rootfsPropagation;
  return result;
}
