/**
 * Seccomp profiles: RuntimeDefault (moby/containerd's default allow list, including the
 * capability-conditional rules and the personality / clone argument filters), Unconfined, and
 * Localhost (a JSON file read by the caller, validated here).
 */
import { invalidArgument } from "../common/errors.js";
import type { Seccomp, SeccompAction, SeccompArg, SeccompOperator, SeccompSyscall } from "./types.js";

const ENOSYS = 38;
// CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP
const CLONE_NS_FLAGS =
  0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000;

/** The seccomp architectures of the host (native + compat), by Node's process.arch. */
export function hostSeccompArchitectures(arch: string = process.arch): string[] {
  switch (arch) {
    case "x64":
      return ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
    case "arm64":
      return ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"];
    case "s390x":
      return ["SCMP_ARCH_S390", "SCMP_ARCH_S390X"];
    case "ppc64":
      return ["SCMP_ARCH_PPC64LE"];
    case "riscv64":
      return ["SCMP_ARCH_RISCV64"];
    default:
      return [];
  }
}

const ALLOWED = `accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek
lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir
mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect open openat openat2
pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list
setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget
shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socket socketcall socketpair splice
stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill
time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev ptrace`;

/** Syscalls allowed unconditionally by the default profile (ptrace: kernel >= 4.8 assumed). */
export const DEFAULT_ALLOWED_SYSCALLS: readonly string[] = Object.freeze(
  ALLOWED.split(/\s+/).filter(Boolean),
);

const ARCH_SYSCALLS: Record<string, string[]> = {
  x64: ["arch_prctl", "modify_ldt"],
  arm64: [
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
  ],
  ppc64: ["sync_file_range2", "swapcontext"],
  s390x: ["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"],
  riscv64: ["riscv_flush_icache"],
};

const CAP_SYSCALLS: Record<string, string[]> = {
  CAP_DAC_READ_SEARCH: ["open_by_handle_at"],
  CAP_SYS_ADMIN: [
    "bpf",
    "clone",
    "clone3",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "open_tree",
    "perf_event_open",
    "quotactl",
    "quotactl_fd",
    "setdomainname",
    "sethostname",
    "setns",
    "syslog",
    "umount",
    "umount2",
    "unshare",
  ],
  CAP_SYS_BOOT: ["reboot"],
  CAP_SYS_CHROOT: ["chroot"],
  CAP_SYS_MODULE: ["delete_module", "init_module", "finit_module"],
  CAP_SYS_PACCT: ["acct"],
  CAP_SYS_PTRACE: [
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
  ],
  CAP_SYS_RAWIO: ["iopl", "ioperm"],
  CAP_SYS_TIME: ["settimeofday", "stime", "clock_settime", "clock_settime64"],
  CAP_SYS_TTY_CONFIG: ["vhangup"],
  CAP_SYSLOG: ["syslog"],
  CAP_BPF: ["bpf"],
  CAP_PERFMON: ["perf_event_open"],
};

/**
 * The RuntimeDefault profile for a container whose bounding set is `boundingCaps`.
 * Without CAP_SYS_ADMIN, clone may not create namespaces and clone3 fails with ENOSYS (so libcs
 * fall back to clone, whose flags can be filtered).
 */
export function defaultSeccompProfile(boundingCaps: readonly string[], arch: string = process.arch): Seccomp {
  const allow = (names: string[], args?: SeccompArg[]): SeccompSyscall =>
    args ? { names, action: "SCMP_ACT_ALLOW", args } : { names, action: "SCMP_ACT_ALLOW" };
  const syscalls: SeccompSyscall[] = [allow([...DEFAULT_ALLOWED_SYSCALLS])];
  for (const persona of [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff]) {
    syscalls.push(allow(["personality"], [{ index: 0, value: persona, op: "SCMP_CMP_EQ" }]));
  }
  const archCalls = ARCH_SYSCALLS[arch];
  if (archCalls) syscalls.push(allow([...archCalls]));
  for (const cap of boundingCaps) {
    const extra = CAP_SYSCALLS[cap];
    if (extra) syscalls.push(allow([...extra]));
  }
  if (!boundingCaps.includes("CAP_SYS_ADMIN")) {
    const argIndex = arch === "s390x" ? 1 : 0;
    syscalls.push(
      allow(["clone"], [{ index: argIndex, value: CLONE_NS_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]),
    );
    syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS });
  }
  return { defaultAction: "SCMP_ACT_ERRNO", architectures: hostSeccompArchitectures(arch), syscalls };
}

const ACTIONS = new Set<string>([
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
]);
const OPERATORS = new Set<string>([
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
]);

type Json = Record<string, unknown>;

/**
 * Parses and validates a Localhost seccomp profile: the OCI `linux.seccomp` format, also accepting
 * the Docker profile format's `archMap` (flattened to architectures) and per-rule `name`.
 * Docker's conditional `includes` / `excludes` are rejected. Throws invalidArgument.
 */
export function parseSeccompProfile(content: string, source = "seccomp profile"): Seccomp {
  const fail = (msg: string): never => {
    throw invalidArgument(`invalid ${source}: ${msg}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(content);
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`);
  }
  const obj = (v: unknown, what: string): Json =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Json)
      : fail(`${what} must be an object`);
  const strings = (v: unknown, what: string): string[] =>
    Array.isArray(v) && v.every((x) => typeof x === "string")
      ? v
      : fail(`${what} must be an array of strings`);
  const uint = (v: unknown, what: string): number =>
    typeof v === "number" && Number.isInteger(v) && v >= 0
      ? v
      : fail(`${what} must be a non-negative integer`);
  const action = (v: unknown, what: string): SeccompAction =>
    typeof v === "string" && ACTIONS.has(v)
      ? (v as SeccompAction)
      : fail(`${what}: unknown action ${String(v)}`);

  const p = obj(raw, "profile");
  const out: Seccomp = { defaultAction: action(p["defaultAction"], "defaultAction") };
  if (p["defaultErrnoRet"] != null) out.defaultErrnoRet = uint(p["defaultErrnoRet"], "defaultErrnoRet");
  const arches = new Set<string>();
  if (p["architectures"] != null) for (const a of strings(p["architectures"], "architectures")) arches.add(a);
  if (p["archMap"] != null) {
    if (!Array.isArray(p["archMap"])) fail("archMap must be an array");
    for (const [i, m] of (p["archMap"] as unknown[]).entries()) {
      const e = obj(m, `archMap[${i}]`);
      if (typeof e["architecture"] !== "string") fail(`archMap[${i}].architecture must be a string`);
      arches.add(e["architecture"] as string);
      if (e["subArchitectures"] != null) {
        for (const s of strings(e["subArchitectures"], `archMap[${i}].subArchitectures`)) arches.add(s);
      }
    }
  }
  if (arches.size > 0) out.architectures = [...arches];
  if (p["flags"] != null) out.flags = strings(p["flags"], "flags");
  if (p["listenerPath"] != null) {
    if (typeof p["listenerPath"] !== "string") fail("listenerPath must be a string");
    out.listenerPath = p["listenerPath"] as string;
  }
  if (p["syscalls"] != null) {
    if (!Array.isArray(p["syscalls"])) fail("syscalls must be an array");
    out.syscalls = (p["syscalls"] as unknown[]).map((s, i) =>
      parseRule(obj(s, `syscalls[${i}]`), `syscalls[${i}]`),
    );
  }
  return out;

  function parseRule(r: Json, where: string): SeccompSyscall {
    for (const cond of ["includes", "excludes"]) {
      const c = r[cond];
      if (c != null && (typeof c !== "object" || Object.keys(c as object).length > 0)) {
        fail(`${where}.${cond}: conditional rules are not supported`);
      }
    }
    const names: string[] = [];
    if (r["names"] != null) names.push(...strings(r["names"], `${where}.names`));
    if (typeof r["name"] === "string") names.push(r["name"]);
    if (names.length === 0) fail(`${where} has no syscall names`);
    const rule: SeccompSyscall = { names, action: action(r["action"], `${where}.action`) };
    if (r["errnoRet"] != null) rule.errnoRet = uint(r["errnoRet"], `${where}.errnoRet`);
    if (r["args"] != null) {
      if (!Array.isArray(r["args"])) fail(`${where}.args must be an array`);
      rule.args = (r["args"] as unknown[]).map((a, j) => {
        const aw = `${where}.args[${j}]`;
        const o = obj(a, aw);
        if (typeof o["op"] !== "string" || !OPERATORS.has(o["op"])) fail(`${aw}.op: unknown operator`);
        const arg: SeccompArg = {
          index: uint(o["index"], `${aw}.index`),
          value: uint(o["value"] ?? 0, `${aw}.value`),
          op: o["op"] as SeccompOperator,
        };
        if (arg.index > 5) fail(`${aw}.index must be 0..5`);
        if (o["valueTwo"] != null) arg.valueTwo = uint(o["valueTwo"], `${aw}.valueTwo`);
        return arg;
      });
    }
    return rule;
  }
}
