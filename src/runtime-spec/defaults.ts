/**
 * Defaults of a CRI container spec, following containerd's CRI plugin (oci/spec.go default Unix
 * spec, minus the /run tmpfs and the NOFILE rlimit that the CRI plugin removes, plus the read-only
 * cgroupfs mount it adds).
 */
import type { LinuxDeviceCgroup, Mount } from "./types.js";

/** containerd's default capability set (CapEff 0x00000000a80425fb). */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
]);

/** Every capability known to runc 1.1, indexed by its bit number. */
export const ALL_CAPABILITIES: readonly string[] = Object.freeze([
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
]);

/** Capability names for a bit mask such as /proc/self/status `CapBnd` (unknown bits are skipped). */
export function capabilityNamesFromMask(mask: bigint): string[] {
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** The bit mask of a set of capability names (unknown names are ignored). */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    const bit = ALL_CAPABILITIES.indexOf(n);
    if (bit >= 0) mask |= 1n << BigInt(bit);
  }
  return mask;
}

/** Default mounts. /dev/shm is normally replaced by the pod's shm bind mount. */
export function defaultMounts(): Mount[] {
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
    },
  ];
}

export const DEFAULT_MASKED_PATHS: readonly string[] = Object.freeze([
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
  "/proc/scsi",
]);

export const DEFAULT_READONLY_PATHS: readonly string[] = Object.freeze([
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
]);

/**
 * Device cgroup rules of an unprivileged container before its own devices: deny everything, then
 * allow mknod of any node and the standard nodes runc creates (null, zero, full, random, urandom,
 * tty, console, ptmx, pts/*). runc adds the same rules itself; listing them keeps the spec
 * self-describing and runtime independent.
 */
export function defaultDeviceRules(): LinuxDeviceCgroup[] {
  const allow = (type: "c" | "b", major: number | undefined, minor: number | undefined, access: string) => {
    const rule: LinuxDeviceCgroup = { allow: true, type };
    if (major !== undefined) rule.major = major;
    if (minor !== undefined) rule.minor = minor;
    rule.access = access;
    return rule;
  };
  return [
    { allow: false, access: "rwm" },
    allow("c", undefined, undefined, "m"),
    allow("b", undefined, undefined, "m"),
    allow("c", 1, 3, "rwm"), // /dev/null
    allow("c", 1, 5, "rwm"), // /dev/zero
    allow("c", 1, 7, "rwm"), // /dev/full
    allow("c", 1, 8, "rwm"), // /dev/random
    allow("c", 1, 9, "rwm"), // /dev/urandom
    allow("c", 5, 0, "rwm"), // /dev/tty
    allow("c", 5, 1, "rwm"), // /dev/console
    allow("c", 5, 2, "rwm"), // /dev/ptmx
    allow("c", 136, undefined, "rwm"), // /dev/pts/*
  ];
}

export const DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Whether a sysctl is namespaced (safe to set per pod): net.*, kernel.shm*, kernel.msg*,
 * kernel.sem and fs.mqueue.*. Names may use "/" as separator.
 */
export function isNamespacedSysctl(name: string): boolean {
  const n = name.replaceAll("/", ".");
  return (
    n.startsWith("net.") ||
    n.startsWith("kernel.shm") ||
    n.startsWith("kernel.msg") ||
    n === "kernel.sem" ||
    n.startsWith("fs.mqueue.")
  );
}
