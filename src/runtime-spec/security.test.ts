import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SecurityProfile_ProfileType as PT } from "../api/gen/runtime/v1/api.js";
import { isBerthError } from "../common/errors.js";
import {
  ALL_CAPABILITIES,
  capabilityMask,
  capabilityNamesFromMask,
  DEFAULT_CAPABILITIES,
  isNamespacedSysctl,
} from "./defaults.js";
import {
  buildCapabilities,
  localhostProfilePath,
  normalizeCapability,
  selectApparmor,
  selectSeccomp,
} from "./security.js";

const isInvalid = (err: unknown) => isBerthError(err, "InvalidArgument");
const caps = (add: string[], drop: string[] = [], ambient: string[] = []) => ({
  addCapabilities: add,
  dropCapabilities: drop,
  addAmbientCapabilities: ambient,
});

describe("capability defaults", () => {
  it("default set is containerd's (CapEff a80425fb)", () => {
    assert.equal(capabilityMask(DEFAULT_CAPABILITIES).toString(16), "a80425fb");
    assert.deepEqual(capabilityNamesFromMask(0xa80425fbn).sort(), [...DEFAULT_CAPABILITIES].sort());
    assert.deepEqual(
      capabilityNamesFromMask(0x1fffeffffffn),
      ALL_CAPABILITIES.filter((c) => c !== "CAP_SYS_RESOURCE"),
    );
  });

  it("namespaced sysctls", () => {
    for (const s of [
      "net.ipv4.ip_forward",
      "net/core/somaxconn",
      "kernel.shmmax",
      "kernel.msgmax",
      "kernel.sem",
      "fs.mqueue.msg_max",
    ]) {
      assert.ok(isNamespacedSysctl(s), s);
    }
    for (const s of ["kernel.panic", "vm.swappiness", "fs.file-max", "kernel.semx", "kernel.hostname"]) {
      assert.ok(!isNamespacedSysctl(s), s);
    }
  });
});

describe("buildCapabilities", () => {
  const cases: Array<[string, ReturnType<typeof caps> | undefined, boolean, string[] | "error"]> = [
    ["default", undefined, false, [...DEFAULT_CAPABILITIES]],
    [
      "add without prefix, lower case",
      caps(["net_admin", "CAP_SYS_TIME"]),
      false,
      [...DEFAULT_CAPABILITIES, "CAP_NET_ADMIN", "CAP_SYS_TIME"],
    ],
    [
      "drop",
      caps([], ["CHOWN", "cap_kill"]),
      false,
      DEFAULT_CAPABILITIES.filter((c) => c !== "CAP_CHOWN" && c !== "CAP_KILL"),
    ],
    ["add ALL", caps(["ALL"]), false, [...ALL_CAPABILITIES]],
    [
      "add ALL drop one",
      caps(["all"], ["SYS_ADMIN"]),
      false,
      ALL_CAPABILITIES.filter((c) => c !== "CAP_SYS_ADMIN"),
    ],
    ["drop ALL", caps([], ["ALL"]), false, []],
    ["drop ALL add back", caps(["NET_BIND_SERVICE"], ["ALL"]), false, ["CAP_NET_BIND_SERVICE"]],
    ["privileged ignores drops", caps([], ["ALL"]), true, [...ALL_CAPABILITIES]],
    ["unknown capability", caps(["CAP_FLY"]), false, "error"],
    ["unknown drop", caps([], ["NOPE"]), false, "error"],
  ];
  for (const [name, c, privileged, want] of cases) {
    it(name, () => {
      if (want === "error") {
        assert.throws(() => buildCapabilities(c, privileged), isInvalid);
        return;
      }
      const got = buildCapabilities(c, privileged);
      assert.deepEqual(got.bounding, want);
      assert.deepEqual(got.effective, want);
      assert.deepEqual(got.permitted, want);
      assert.deepEqual(got.ambient, []);
    });
  }

  it("ambient capabilities go to inheritable and must be in the set", () => {
    const got = buildCapabilities(caps(["NET_ADMIN"], [], ["net_admin"]), false);
    assert.deepEqual(got.ambient, ["CAP_NET_ADMIN"]);
    assert.deepEqual(got.inheritable, ["CAP_NET_ADMIN"]);
    assert.throws(() => buildCapabilities(caps([], [], ["SYS_ADMIN"]), false), isInvalid);
  });

  it("privileged uses the given host set", () => {
    assert.deepEqual(buildCapabilities(undefined, true, ["CAP_CHOWN"]).bounding, ["CAP_CHOWN"]);
    assert.equal(normalizeCapability(" sys_admin "), "CAP_SYS_ADMIN");
  });
});

describe("selectSeccomp", () => {
  const cases: Array<[string, Parameters<typeof selectSeccomp>[0], string, unknown]> = [
    [
      "field RuntimeDefault",
      { profileType: PT.RuntimeDefault, localhostRef: "" },
      "unconfined",
      { kind: "runtime-default" },
    ],
    [
      "field Unconfined beats path",
      { profileType: PT.Unconfined, localhostRef: "" },
      "runtime/default",
      { kind: "unconfined" },
    ],
    [
      "field Localhost",
      { profileType: PT.Localhost, localhostRef: "/p.json" },
      "",
      { kind: "localhost", ref: "/p.json" },
    ],
    ["field Localhost without ref", { profileType: PT.Localhost, localhostRef: "" }, "", "error"],
    ["path runtime/default", undefined, "runtime/default", { kind: "runtime-default" }],
    ["path docker/default", undefined, "docker/default", { kind: "runtime-default" }],
    ["path unconfined", undefined, "unconfined", { kind: "unconfined" }],
    [
      "path localhost/",
      undefined,
      "localhost//var/lib/p.json",
      { kind: "localhost", ref: "/var/lib/p.json" },
    ],
    ["path localhost/ relative", undefined, "localhost/prof.json", { kind: "localhost", ref: "prof.json" }],
    ["path localhost/ empty", undefined, "localhost/", "error"],
    ["bad path form", undefined, "/abs/profile.json", "error"],
    ["bad path name", undefined, "default", "error"],
    ["unset → unconfined", undefined, "", { kind: "unconfined" }],
  ];
  for (const [name, field, path, want] of cases) {
    it(name, () => {
      if (want === "error") assert.throws(() => selectSeccomp(field, path), isInvalid);
      else assert.deepEqual(selectSeccomp(field, path), want);
    });
  }
  it("unset follows the configured default", () => {
    assert.deepEqual(selectSeccomp(undefined, "", { kind: "runtime-default" }), { kind: "runtime-default" });
  });
});

describe("apparmor and localhost paths", () => {
  it("parses apparmor forms", () => {
    assert.deepEqual(selectApparmor(undefined, ""), { kind: "runtime-default" });
    assert.deepEqual(selectApparmor(undefined, "localhost/k8s-nginx"), {
      kind: "localhost",
      ref: "k8s-nginx",
    });
    assert.deepEqual(selectApparmor({ profileType: PT.Unconfined, localhostRef: "" }, "x"), {
      kind: "unconfined",
    });
    assert.throws(() => selectApparmor(undefined, "enforce"), isInvalid);
  });
  it("resolves localhost refs safely", () => {
    assert.equal(localhostProfilePath("/abs/p.json", undefined), "/abs/p.json");
    assert.equal(localhostProfilePath("a/./p.json", "/var/lib/seccomp/"), "/var/lib/seccomp/a/p.json");
    assert.throws(() => localhostProfilePath("../etc/shadow", "/var/lib/seccomp"), isInvalid);
    assert.throws(() => localhostProfilePath("p.json", undefined), isInvalid);
  });
});
