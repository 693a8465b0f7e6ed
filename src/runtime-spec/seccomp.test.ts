import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isBerthError } from "../common/errors.js";
import { DEFAULT_CAPABILITIES } from "./defaults.js";
import { defaultSeccompProfile, hostSeccompArchitectures, parseSeccompProfile } from "./seccomp.js";
import type { Seccomp } from "./types.js";

const isInvalid = (err: unknown) => isBerthError(err, "InvalidArgument");
const rulesFor = (p: Seccomp, name: string) => (p.syscalls ?? []).filter((s) => s.names.includes(name));
const unconditionallyAllowed = (p: Seccomp, name: string) =>
  rulesFor(p, name).some((r) => r.action === "SCMP_ACT_ALLOW" && (r.args ?? []).length === 0);

describe("RuntimeDefault seccomp profile", () => {
  const p = defaultSeccompProfile(DEFAULT_CAPABILITIES, "x64");

  it("denies by default with EPERM, for the host's architectures", () => {
    assert.equal(p.defaultAction, "SCMP_ACT_ERRNO");
    assert.deepEqual(p.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    assert.deepEqual(hostSeccompArchitectures("arm64"), ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"]);
  });

  it("allows what a shell, sleep and httpd need", () => {
    for (const s of [
      "read",
      "write",
      "openat",
      "execve",
      "wait4",
      "nanosleep",
      "clock_nanosleep",
      "socket",
      "bind",
      "listen",
      "accept4",
      "epoll_wait",
      "arch_prctl",
      "rt_sigaction",
      "chroot",
      "getdents64",
      "statx",
      "rseq",
    ]) {
      assert.ok(unconditionallyAllowed(p, s), s);
    }
  });

  it("keeps privileged syscalls out without the capability", () => {
    for (const s of [
      "mount",
      "umount2",
      "unshare",
      "setns",
      "reboot",
      "bpf",
      "init_module",
      "kexec_load",
      "open_by_handle_at",
    ]) {
      assert.ok(!unconditionallyAllowed(p, s), s);
    }
  });

  it("filters clone namespace flags and answers clone3 with ENOSYS", () => {
    const [clone] = rulesFor(p, "clone");
    assert.deepEqual(clone?.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]);
    assert.deepEqual(rulesFor(p, "clone3"), [{ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }]);
  });

  it("allows personality for the usual personas only", () => {
    assert.deepEqual(
      rulesFor(p, "personality").map((r) => r.args?.[0]?.value),
      [0, 8, 0x20000, 0x20008, 0xffffffff],
    );
  });

  it("adds capability-conditional syscalls", () => {
    const admin = defaultSeccompProfile([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], "x64");
    for (const s of ["mount", "unshare", "setns", "clone", "clone3", "process_vm_readv"]) {
      assert.ok(unconditionallyAllowed(admin, s), s);
    }
    assert.ok(!rulesFor(admin, "clone3").some((r) => r.action === "SCMP_ACT_ERRNO"));
    const none = defaultSeccompProfile([], "x64");
    assert.ok(!unconditionallyAllowed(none, "chroot"));
  });
});

describe("parseSeccompProfile", () => {
  it("accepts the OCI format", () => {
    const p = parseSeccompProfile(
      JSON.stringify({
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: 1,
        architectures: ["SCMP_ARCH_X86_64"],
        syscalls: [
          { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
          {
            names: ["personality"],
            action: "SCMP_ACT_ALLOW",
            args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }],
          },
        ],
      }),
    );
    assert.equal(p.defaultErrnoRet, 1);
    assert.deepEqual(p.syscalls?.[1]?.args, [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }]);
  });

  it("accepts Docker's archMap and single name", () => {
    const p = parseSeccompProfile(
      JSON.stringify({
        defaultAction: "SCMP_ACT_LOG",
        archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86"] }],
        syscalls: [{ name: "read", action: "SCMP_ACT_ALLOW", comment: "x", includes: {}, excludes: {} }],
      }),
    );
    assert.deepEqual(p.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    assert.deepEqual(p.syscalls, [{ names: ["read"], action: "SCMP_ACT_ALLOW" }]);
  });

  const bad: Array<[string, string]> = [
    ["not JSON", "{"],
    ["not an object", "[]"],
    ["missing defaultAction", "{}"],
    ["unknown action", JSON.stringify({ defaultAction: "SCMP_ACT_MAYBE" })],
    ["syscalls not an array", JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: {} })],
    [
      "rule without names",
      JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ action: "SCMP_ACT_ERRNO" }] }),
    ],
    [
      "bad operator",
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["x"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 1, op: "EQ" }] }],
      }),
    ],
    [
      "arg index out of range",
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [
          { names: ["x"], action: "SCMP_ACT_ERRNO", args: [{ index: 6, value: 1, op: "SCMP_CMP_EQ" }] },
        ],
      }),
    ],
    [
      "conditional rule",
      JSON.stringify({
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [{ names: ["mount"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN"] } }],
      }),
    ],
  ];
  for (const [name, content] of bad) {
    it(`rejects: ${name}`, () => assert.throws(() => parseSeccompProfile(content), isInvalid));
  }
});
