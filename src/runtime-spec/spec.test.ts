import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ContainerConfig,
  type LinuxContainerResources,
  type LinuxContainerSecurityContext,
  MountPropagation,
  NamespaceMode,
  type PodSandboxConfig,
  SecurityProfile_ProfileType,
} from "../api/gen/runtime/v1/api.js";
import { isBerthError } from "../common/errors.js";
import type { ImageConfig } from "../image/registry/oci.js";
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
} from "./defaults.js";
import { buildContainerSpec, type ContainerSpecInput } from "./spec.js";
import type { Spec } from "./types.js";

const isInvalid = (err: unknown) => isBerthError(err, "InvalidArgument");

function securityContext(over: Partial<LinuxContainerSecurityContext> = {}): LinuxContainerSecurityContext {
  return {
    privileged: false,
    runAsUsername: "",
    readonlyRootfs: false,
    supplementalGroups: [],
    noNewPrivs: false,
    maskedPaths: [],
    readonlyPaths: [],
    apparmorProfile: "",
    seccompProfilePath: "",
    ...over,
  };
}

function resources(over: Partial<LinuxContainerResources> = {}): LinuxContainerResources {
  return {
    cpuPeriod: 0n,
    cpuQuota: 0n,
    cpuShares: 0n,
    memoryLimitInBytes: 0n,
    oomScoreAdj: 0n,
    cpusetCpus: "",
    cpusetMems: "",
    hugepageLimits: [],
    unified: {},
    memorySwapLimitInBytes: 0n,
    ...over,
  };
}

function containerConfig(over: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    metadata: { name: "web", attempt: 0 },
    image: {
      image: "docker.io/library/busybox:latest",
      annotations: {},
      userSpecifiedImage: "busybox",
      runtimeHandler: "",
    },
    command: [],
    args: [],
    workingDir: "",
    envs: [{ key: "FOO", value: "bar" }],
    mounts: [],
    devices: [],
    labels: { app: "web" },
    annotations: { "example.com/a": "1" },
    logPath: "web.log",
    stdin: false,
    stdinOnce: false,
    tty: false,
    CDIDevices: [],
    linux: { securityContext: securityContext(), resources: resources() },
    ...over,
  };
}

function sandboxConfig(over: Partial<PodSandboxConfig> = {}, privileged = false): PodSandboxConfig {
  return {
    metadata: { name: "pod", uid: "uid-1", namespace: "default", attempt: 0 },
    hostname: "pod-host",
    logDirectory: "/var/log/pods/x",
    portMappings: [],
    labels: {},
    annotations: {},
    linux: {
      cgroupParent: "/kubepods/besteffort/poduid-1",
      sysctls: {},
      securityContext: {
        privileged,
        readonlyRootfs: false,
        supplementalGroups: [],
        seccompProfilePath: "",
      },
    },
    ...over,
  };
}

const image: ImageConfig = {
  architecture: "amd64",
  os: "linux",
  config: {
    Entrypoint: ["/bin/sh"],
    Cmd: ["-c", "echo hi"],
    Env: ["PATH=/bin", "FOO=img"],
    WorkingDir: "/srv",
  },
  rootfs: { type: "layers", diff_ids: [] },
};

const POD_NS = { net: "/run/berth/ns/net/p", ipc: "/run/berth/ns/ipc/p", uts: "/run/berth/ns/uts/p" };
const POD_FILES = {
  resolvConf: "/pods/p/resolv.conf",
  hosts: "/pods/p/hosts",
  hostname: "/pods/p/hostname",
  shm: "/pods/p/shm",
};

function input(
  sc: Partial<LinuxContainerSecurityContext> = {},
  over: Partial<ContainerSpecInput> = {},
  cfg: Partial<ContainerConfig> = {},
): ContainerSpecInput {
  return {
    id: "c1",
    sandboxId: "s1",
    config: containerConfig({
      linux: { securityContext: securityContext(sc), resources: resources() },
      ...cfg,
    }),
    sandboxConfig: sandboxConfig({}, sc.privileged ?? false),
    image,
    rootfs: "/var/lib/berth/c1/rootfs",
    readRootfsFile: async (p) =>
      p === "/etc/passwd" ? "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/:/bin/false\n" : undefined,
    namespaces: POD_NS,
    podFiles: POD_FILES,
    oomScoreAdjMin: -999,
    ...over,
  };
}

const mountOf = (s: Spec, dst: string) => s.mounts.find((m) => m.destination === dst);

describe("buildContainerSpec: default container", () => {
  it("produces the expected key fields", async () => {
    const s = await buildContainerSpec(input());
    assert.equal(s.ociVersion, "1.0.2-dev");
    assert.deepEqual(s.root, { path: "/var/lib/berth/c1/rootfs", readonly: false });
    assert.deepEqual(s.process.args, ["/bin/sh", "-c", "echo hi"]);
    assert.deepEqual(s.process.env, ["PATH=/bin", "HOSTNAME=pod-host", "FOO=bar"]);
    assert.equal(s.process.cwd, "/srv");
    assert.deepEqual(s.process.user, { uid: 0, gid: 0, additionalGids: [] });
    assert.equal(s.process.terminal, false);
    assert.equal(s.process.noNewPrivileges, false);
    assert.equal(s.process.oomScoreAdj, 0);
    assert.equal(s.process.rlimits, undefined);
    assert.deepEqual(s.process.capabilities?.bounding, [...DEFAULT_CAPABILITIES]);
    assert.deepEqual(s.process.capabilities?.effective, [...DEFAULT_CAPABILITIES]);
    assert.equal(s.hostname, undefined, "joins the pod's UTS namespace: no hostname");
    assert.deepEqual(s.linux.namespaces, [
      { type: "mount" },
      { type: "network", path: POD_NS.net },
      { type: "uts", path: POD_NS.uts },
      { type: "ipc", path: POD_NS.ipc },
      { type: "pid" },
    ]);
    assert.equal(s.linux.cgroupsPath, "/kubepods/besteffort/poduid-1/berth-c1");
    assert.deepEqual(s.linux.maskedPaths, [...DEFAULT_MASKED_PATHS]);
    assert.deepEqual(s.linux.readonlyPaths, [...DEFAULT_READONLY_PATHS]);
    assert.equal(s.linux.seccomp, undefined, "unset seccomp → unconfined, like containerd");
    assert.equal(s.linux.resources.devices[0]?.allow, false);
    assert.deepEqual(s.linux.devices, []);
    assert.deepEqual(
      s.mounts.map((m) => [m.destination, m.type, m.source]),
      [
        ["/proc", "proc", "proc"],
        ["/dev", "tmpfs", "tmpfs"],
        ["/dev/pts", "devpts", "devpts"],
        ["/dev/mqueue", "mqueue", "mqueue"],
        ["/sys", "sysfs", "sysfs"],
        ["/sys/fs/cgroup", "cgroup", "cgroup"],
        ["/etc/hostname", "bind", POD_FILES.hostname],
        ["/etc/hosts", "bind", POD_FILES.hosts],
        ["/etc/resolv.conf", "bind", POD_FILES.resolvConf],
        ["/dev/shm", "bind", POD_FILES.shm],
      ],
    );
    assert.deepEqual(mountOf(s, "/etc/hosts")?.options, ["rbind", "rprivate", "rw"]);
    assert.ok(mountOf(s, "/sys")?.options?.includes("ro"));
    assert.deepEqual(s.annotations, {
      "example.com/a": "1",
      "io.kubernetes.cri.container-type": "container",
      "io.kubernetes.cri.sandbox-id": "s1",
      "io.kubernetes.cri.container-name": "web",
      "io.kubernetes.cri.sandbox-name": "pod",
      "io.kubernetes.cri.sandbox-namespace": "default",
      "io.kubernetes.cri.sandbox-uid": "uid-1",
      "io.kubernetes.cri.image-name": "busybox",
    });
  });

  it("sets the hostname with a new UTS namespace and tty as terminal", async () => {
    const s = await buildContainerSpec(input({}, { namespaces: {} }, { tty: true, stdin: true }));
    assert.equal(s.hostname, "pod-host");
    assert.equal(s.process.terminal, true);
    assert.deepEqual(
      s.linux.namespaces.map((n) => n.type),
      ["mount", "network", "uts", "ipc", "pid"],
    );
    assert.ok(s.linux.namespaces.every((n) => n.path === undefined));
  });
});

describe("buildContainerSpec: privileged", () => {
  it("gets all capabilities, no seccomp / masked paths, all devices, rw sysfs", async () => {
    const devices = [
      {
        path: "/dev/sda",
        type: "b" as const,
        major: 8,
        minor: 0,
        fileMode: 0o660,
        uid: 0,
        gid: 6,
        permissions: "rwm",
      },
    ];
    const s = await buildContainerSpec(
      input({ privileged: true, seccompProfilePath: "runtime/default" }, { devices }),
    );
    assert.deepEqual(s.process.capabilities?.bounding, [...ALL_CAPABILITIES]);
    assert.equal(s.linux.seccomp, undefined);
    assert.equal(s.linux.maskedPaths, undefined);
    assert.equal(s.linux.readonlyPaths, undefined);
    assert.deepEqual(s.linux.resources.devices, [{ allow: true, access: "rwm" }]);
    assert.deepEqual(s.linux.devices, [
      { path: "/dev/sda", type: "b", major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 },
    ]);
    assert.ok(mountOf(s, "/sys")?.options?.includes("rw"));
    assert.ok(!mountOf(s, "/sys/fs/cgroup")?.options?.includes("ro"));
  });

  it("is refused in a non-privileged pod", async () => {
    const i = input({ privileged: true });
    i.sandboxConfig = sandboxConfig({}, false);
    await assert.rejects(buildContainerSpec(i), isInvalid);
  });
});

describe("buildContainerSpec: security context", () => {
  it("readonly rootfs + no_new_privs", async () => {
    const s = await buildContainerSpec(input({ readonlyRootfs: true, noNewPrivs: true }));
    assert.equal(s.root.readonly, true);
    assert.equal(s.process.noNewPrivileges, true);
    assert.deepEqual(mountOf(s, "/etc/resolv.conf")?.options, ["rbind", "rprivate", "ro"]);
    assert.deepEqual(mountOf(s, "/dev/shm")?.options, ["rbind", "rprivate", "rw"]);
  });

  it("caps add/drop incl. ALL and the seccomp rules that follow them", async () => {
    const s = await buildContainerSpec(
      input({
        capabilities: {
          addCapabilities: ["ALL"],
          dropCapabilities: ["NET_RAW", "CAP_MKNOD"],
          addAmbientCapabilities: [],
        },
        seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault, localhostRef: "" },
      }),
    );
    const want = ALL_CAPABILITIES.filter((c) => c !== "CAP_NET_RAW" && c !== "CAP_MKNOD");
    assert.deepEqual(s.process.capabilities?.bounding, want);
    assert.ok(s.linux.seccomp?.syscalls?.some((r) => r.names.includes("mount") && !r.args));
    const dropAll = await buildContainerSpec(
      input({
        capabilities: { addCapabilities: ["kill"], dropCapabilities: ["all"], addAmbientCapabilities: [] },
      }),
    );
    assert.deepEqual(dropAll.process.capabilities?.bounding, ["CAP_KILL"]);
  });

  it("seccomp variants", async () => {
    const rd = await buildContainerSpec(input({ seccompProfilePath: "runtime/default" }));
    assert.equal(rd.linux.seccomp?.defaultAction, "SCMP_ACT_ERRNO");
    const unconf = await buildContainerSpec(
      input({
        seccomp: { profileType: SecurityProfile_ProfileType.Unconfined, localhostRef: "" },
        seccompProfilePath: "runtime/default",
      }),
    );
    assert.equal(unconf.linux.seccomp, undefined);
    const unsetDefault = await buildContainerSpec(input({}, { unsetSeccompProfile: "runtime/default" }));
    assert.equal(unsetDefault.linux.seccomp?.defaultAction, "SCMP_ACT_ERRNO");

    const read: string[] = [];
    const readProfileFile = async (p: string) => {
      read.push(p);
      return JSON.stringify({ defaultAction: "SCMP_ACT_LOG" });
    };
    const local = await buildContainerSpec(
      input(
        { seccompProfilePath: "localhost/team/p.json" },
        { seccompProfileRoot: "/var/lib/kubelet/seccomp", readProfileFile },
      ),
    );
    assert.deepEqual(local.linux.seccomp, { defaultAction: "SCMP_ACT_LOG" });
    const local2 = await buildContainerSpec(
      input(
        { seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: "/abs/p.json" } },
        { readProfileFile },
      ),
    );
    assert.equal(local2.linux.seccomp?.defaultAction, "SCMP_ACT_LOG");
    assert.deepEqual(read, ["/var/lib/kubelet/seccomp/team/p.json", "/abs/p.json"]);

    const missing = async () => {
      throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
    };
    await assert.rejects(
      buildContainerSpec(input({ seccompProfilePath: "localhost//nope.json" }, { readProfileFile: missing })),
      isInvalid,
    );
    await assert.rejects(
      buildContainerSpec(
        input({ seccompProfilePath: "localhost//bad.json" }, { readProfileFile: async () => "{" }),
      ),
      isInvalid,
    );
  });

  it("masked / readonly path overrides and user", async () => {
    const s = await buildContainerSpec(
      input({ maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"], runAsUsername: "www" }),
    );
    assert.deepEqual(s.linux.maskedPaths, ["/proc/kcore"]);
    assert.deepEqual(s.linux.readonlyPaths, ["/proc/sys"]);
    assert.deepEqual(s.process.user, { uid: 33, gid: 33, additionalGids: [] });
  });
});

describe("buildContainerSpec: mounts", () => {
  it("maps propagation, sorts by depth, and lets CRI mounts replace pod files", async () => {
    const mounts = [
      {
        containerPath: "/data/sub/deep",
        hostPath: "/h/deep",
        readonly: true,
        selinuxRelabel: true,
        propagation: MountPropagation.PROPAGATION_PRIVATE,
        uidMappings: [],
        gidMappings: [],
      },
      {
        containerPath: "/data",
        hostPath: "/h/data",
        readonly: false,
        selinuxRelabel: false,
        propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER,
        uidMappings: [],
        gidMappings: [],
      },
      {
        containerPath: "/etc/hosts",
        hostPath: "/h/hosts",
        readonly: true,
        selinuxRelabel: false,
        propagation: MountPropagation.PROPAGATION_PRIVATE,
        uidMappings: [],
        gidMappings: [],
      },
      {
        containerPath: "/var/lib/kubelet/pods/",
        hostPath: "/var/lib/kubelet/pods",
        readonly: false,
        selinuxRelabel: false,
        propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL,
        uidMappings: [],
        gidMappings: [],
      },
    ];
    const s = await buildContainerSpec(input({}, {}, { mounts }));
    const binds = s.mounts
      .filter((m) => m.type === "bind")
      .map((m) => [m.destination, m.source, m.options?.join(",")]);
    assert.deepEqual(binds, [
      ["/data", "/h/data", "rbind,rslave,rw"],
      ["/etc/hostname", POD_FILES.hostname, "rbind,rprivate,rw"],
      ["/etc/resolv.conf", POD_FILES.resolvConf, "rbind,rprivate,rw"],
      ["/dev/shm", POD_FILES.shm, "rbind,rprivate,rw"],
      ["/etc/hosts", "/h/hosts", "rbind,rprivate,ro"],
      ["/data/sub/deep", "/h/deep", "rbind,rprivate,ro"],
      ["/var/lib/kubelet/pods", "/var/lib/kubelet/pods", "rbind,rshared,rw"],
    ]);
    assert.equal(s.linux.rootfsPropagation, "rshared");
  });

  it("a supplied /dev replaces every default /dev mount", async () => {
    const mounts = [
      {
        containerPath: "/dev",
        hostPath: "/dev",
        readonly: false,
        selinuxRelabel: false,
        propagation: 0,
        uidMappings: [],
        gidMappings: [],
      },
    ];
    const s = await buildContainerSpec(input({}, { podFiles: {} }, { mounts }));
    assert.deepEqual(
      s.mounts.filter((m) => m.destination.startsWith("/dev")).map((m) => m.type),
      ["bind"],
    );
  });

  it("rejects bad mounts", async () => {
    const base = {
      hostPath: "/h",
      readonly: false,
      selinuxRelabel: false,
      propagation: 0,
      uidMappings: [],
      gidMappings: [],
    };
    for (const m of [
      { ...base, containerPath: "" },
      { ...base, containerPath: "relative" },
      { ...base, containerPath: "/x", hostPath: "" },
      { ...base, containerPath: "/x", propagation: 7 },
      { ...base, containerPath: "/x", uidMappings: [{ hostId: 1, containerId: 0, length: 1 }] },
    ]) {
      await assert.rejects(buildContainerSpec(input({}, {}, { mounts: [m] })), isInvalid, JSON.stringify(m));
    }
    const dup = [
      { ...base, containerPath: "/x" },
      { ...base, containerPath: "/x/" },
    ];
    await assert.rejects(buildContainerSpec(input({}, {}, { mounts: dup })), isInvalid);
  });
});

describe("buildContainerSpec: resources and devices", () => {
  const withResources = (r: Partial<LinuxContainerResources>, over: Partial<ContainerSpecInput> = {}) => {
    const i = input({}, over);
    i.config.linux = { securityContext: securityContext(), resources: resources(r) };
    return buildContainerSpec(i);
  };

  it("maps cpu, memory (swap = limit), hugepages and unified", async () => {
    const s = await withResources({
      cpuShares: 512n,
      cpuQuota: 50000n,
      cpuPeriod: 100000n,
      cpusetCpus: "0-1",
      cpusetMems: "0",
      memoryLimitInBytes: 64n * 1024n * 1024n,
      hugepageLimits: [{ pageSize: "2MB", limit: 4194304n }],
      unified: { "memory.high": "50000000" },
      oomScoreAdj: 500n,
    });
    const { devices, ...rest } = s.linux.resources;
    assert.ok(devices.length > 0);
    assert.deepEqual(rest, {
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: "0-1", mems: "0" },
      memory: { limit: 67108864, swap: 67108864 },
      hugepageLimits: [{ pageSize: "2MB", limit: 4194304 }],
      unified: { "memory.high": "50000000" },
    });
    assert.equal(s.process.oomScoreAdj, 500);
    const swap = await withResources({ memoryLimitInBytes: 100n, memorySwapLimitInBytes: 200n });
    assert.deepEqual(swap.linux.resources.memory, { limit: 100, swap: 200 });
    const empty = await withResources({});
    assert.deepEqual(Object.keys(empty.linux.resources), ["devices"]);
  });

  it("clamps oom_score_adj to berthd's own", async () => {
    assert.equal(
      (await withResources({ oomScoreAdj: -998n }, { oomScoreAdjMin: -500 })).process.oomScoreAdj,
      -500,
    );
    assert.equal(
      (await withResources({ oomScoreAdj: 1000n }, { oomScoreAdjMin: -500 })).process.oomScoreAdj,
      1000,
    );
    assert.equal(
      (await withResources({ oomScoreAdj: -998n }, { oomScoreAdjMin: undefined })).process.oomScoreAdj,
      -998,
    );
    await assert.rejects(withResources({ oomScoreAdj: 1001n }), isInvalid);
  });

  it("rejects bad resources", async () => {
    await assert.rejects(withResources({ cpuShares: -1n }), isInvalid);
    await assert.rejects(withResources({ memoryLimitInBytes: 100n, memorySwapLimitInBytes: 50n }), isInvalid);
    await assert.rejects(withResources({ hugepageLimits: [{ pageSize: "2 MB", limit: 1n }] }), isInvalid);
  });

  it("adds device nodes and cgroup rules", async () => {
    const devices = [
      {
        path: "/dev/fuse",
        type: "c" as const,
        major: 10,
        minor: 229,
        fileMode: 0o666,
        uid: 0,
        gid: 0,
        permissions: "rw",
      },
      {
        path: "/dev/kvm",
        type: "c" as const,
        major: 10,
        minor: 232,
        fileMode: 0o660,
        uid: 0,
        gid: 108,
        permissions: "",
      },
    ];
    const s = await buildContainerSpec(input({}, { devices }));
    assert.deepEqual(
      s.linux.devices?.map((d) => d.path),
      ["/dev/fuse", "/dev/kvm"],
    );
    assert.deepEqual(s.linux.resources.devices.slice(-2), [
      { allow: true, type: "c", major: 10, minor: 229, access: "rw" },
      { allow: true, type: "c", major: 10, minor: 232, access: "rwm" },
    ]);
    await assert.rejects(
      buildContainerSpec(input({}, { devices: [{ ...devices[0]!, permissions: "rx" }] })),
      isInvalid,
    );
  });
});

describe("buildContainerSpec: namespaces and sysctls", () => {
  const withNs = (
    network: NamespaceMode,
    pid: NamespaceMode,
    ipc: NamespaceMode,
    over: Partial<ContainerSpecInput> = {},
  ) => buildContainerSpec(input({ namespaceOptions: { network, pid, ipc, targetId: "" } }, over));

  it("pid modes", async () => {
    const types = (s: Spec) => s.linux.namespaces.filter((n) => n.type === "pid");
    const ns = { ...POD_NS, pid: "/run/berth/ns/pid/p", targetPid: "/proc/4242/ns/pid" };
    assert.deepEqual(types(await withNs(0, NamespaceMode.POD, 0, { namespaces: ns })), [
      { type: "pid", path: ns.pid },
    ]);
    assert.deepEqual(types(await withNs(0, NamespaceMode.CONTAINER, 0, { namespaces: ns })), [
      { type: "pid" },
    ]);
    // A container may not widen: NODE in a pod that is not NODE joins the pod's pid namespace.
    assert.deepEqual(types(await withNs(0, NamespaceMode.NODE, 0, { namespaces: ns })), [
      { type: "pid", path: ns.pid },
    ]);
    assert.deepEqual(types(await withNs(0, NamespaceMode.TARGET, 0, { namespaces: ns })), [
      { type: "pid", path: ns.targetPid },
    ]);
    await assert.rejects(withNs(0, NamespaceMode.TARGET, 0), isInvalid);
    // A pod without a pid namespace of its own (no init): POD gets a new one.
    assert.deepEqual(types(await withNs(0, NamespaceMode.POD, 0)), [{ type: "pid" }]);
  });

  const hostPod = (network: NamespaceMode, pid: NamespaceMode, ipc: NamespaceMode) => {
    const sandbox = sandboxConfig();
    sandbox.linux!.securityContext!.namespaceOptions = { network, pid, ipc, targetId: "" };
    return { sandboxConfig: sandbox };
  };

  it("the pod's namespace options decide, whatever the container's say", async () => {
    const types = (s: Spec) => s.linux.namespaces.map((n) => n.type);
    const N = NamespaceMode.NODE;
    const P = NamespaceMode.POD;
    const C = NamespaceMode.CONTAINER;
    // Host network + IPC + PID pod; the container asks for its own namespaces of every kind.
    assert.deepEqual(types(await withNs(P, C, P, hostPod(N, N, N))), ["mount"]);
    assert.deepEqual(types(await withNs(P, P, P, hostPod(N, C, P))), ["mount", "ipc", "pid"]);
    assert.deepEqual(types(await withNs(P, P, P, hostPod(P, C, N))), ["mount", "network", "uts", "pid"]);
    // A container asking for the host's namespaces in a pod that has its own gets the pod's.
    const own = await withNs(N, N, N, hostPod(P, P, P));
    assert.deepEqual(
      own.linux.namespaces.filter((n) => n.type !== "mount"),
      [
        { type: "network", path: POD_NS.net },
        { type: "uts", path: POD_NS.uts },
        { type: "ipc", path: POD_NS.ipc },
        { type: "pid" },
      ],
    );
  });

  it("refuses unknown namespace modes", async () => {
    await assert.rejects(withNs(99 as NamespaceMode, 0, 0), isInvalid);
    await assert.rejects(withNs(0, 7 as NamespaceMode, 0), isInvalid);
    await assert.rejects(withNs(0, 0, 0, hostPod(0, 0, 42 as NamespaceMode)), isInvalid);
  });

  it("host network / ipc drop those namespaces and their sysctls", async () => {
    const sysctls = {
      "net.ipv4.ip_forward": "1",
      "kernel.shmmax": "1000",
      "kernel.panic": "10",
      "fs.mqueue.msg_max": "20",
    };
    const withSysctls = (over: Partial<ContainerSpecInput>) => {
      const i = { sandboxConfig: sandboxConfig(), ...over };
      i.sandboxConfig.linux!.sysctls = sysctls;
      return i;
    };
    const pod = await buildContainerSpec(input({}, withSysctls({})));
    assert.deepEqual(pod.linux.sysctl, {
      "net.ipv4.ip_forward": "1",
      "kernel.shmmax": "1000",
      "fs.mqueue.msg_max": "20",
    });

    const host = await buildContainerSpec(
      input(
        {
          namespaceOptions: {
            network: NamespaceMode.NODE,
            pid: NamespaceMode.CONTAINER,
            ipc: NamespaceMode.NODE,
            targetId: "",
          },
        },
        withSysctls(hostPod(NamespaceMode.NODE, NamespaceMode.CONTAINER, NamespaceMode.NODE)),
      ),
    );
    assert.deepEqual(
      host.linux.namespaces.map((n) => n.type),
      ["mount", "pid"],
    );
    assert.equal(host.linux.sysctl, undefined);
    assert.equal(host.hostname, undefined);
  });
});

describe("buildContainerSpec: bad inputs", () => {
  it("rejects them with invalidArgument", async () => {
    await assert.rejects(
      buildContainerSpec(
        input({
          capabilities: { addCapabilities: ["CAP_FLY"], dropCapabilities: [], addAmbientCapabilities: [] },
        }),
      ),
      isInvalid,
    );
    await assert.rejects(buildContainerSpec(input({ seccompProfilePath: "/profile.json" })), isInvalid);
    await assert.rejects(buildContainerSpec(input({ apparmorProfile: "enforce" })), isInvalid);
    await assert.rejects(buildContainerSpec(input({}, { id: "../x" })), isInvalid);
    await assert.rejects(buildContainerSpec(input({}, { rootfs: "rel" })), isInvalid);
    await assert.rejects(buildContainerSpec(input({}, { image: undefined })), isInvalid);
    await assert.rejects(buildContainerSpec(input({}, { cgroupParent: "kubepods.slice" })), isInvalid);
    await assert.rejects(buildContainerSpec(input({ runAsUsername: "ghost" })), isInvalid);
    await assert.rejects(buildContainerSpec(input({}, {}, { metadata: undefined })), isInvalid);
  });
});
