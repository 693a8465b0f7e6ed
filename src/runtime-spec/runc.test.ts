/**
 * Runs generated specs with the real runc (root only): a busybox rootfs, new namespaces, cgroups
 * under /berth-oci-test. Skipped when not root or when runc / a static busybox is missing.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, rmdir, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import type { ContainerConfig, PodSandboxConfig } from "../api/gen/runtime/v1/api.js";
import { SecurityProfile_ProfileType } from "../api/gen/runtime/v1/api.js";
import { needsRoot } from "../test/harness/skip.js";
import { SUITE_TIMEOUT_MS } from "../test/harness/timeouts.js";
import { buildContainerSpec } from "./spec.js";

const exec = promisify(execFile);
const RUNC = "/usr/sbin/runc";
const BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
const CGROUP_PARENT = "/berth-oci-test";
const skip = needsRoot() || (!existsSync(RUNC) ? "runc missing" : !BUSYBOX ? "busybox missing" : false);

async function removeTestCgroups(): Promise<void> {
  const base = "/sys/fs/cgroup";
  let controllers: string[] = [];
  try {
    controllers = await readdir(base);
  } catch {
    return;
  }
  for (const c of controllers) {
    const dir = join(base, c, CGROUP_PARENT);
    let children: string[] = [];
    try {
      children = (await readdir(dir, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      continue;
    }
    for (const child of children) await rmdir(join(dir, child)).catch(() => {});
    await rmdir(dir).catch(() => {});
  }
}

function config(command: string[], over: Partial<ContainerConfig["linux"]> = {}): ContainerConfig {
  return {
    metadata: { name: "oci-test", attempt: 0 },
    command,
    args: [],
    workingDir: "",
    envs: [{ key: "GREETING", value: "hi" }],
    mounts: [],
    devices: [],
    labels: {},
    annotations: {},
    logPath: "",
    stdin: false,
    stdinOnce: false,
    tty: false,
    CDIDevices: [],
    linux: {
      resources: {
        cpuPeriod: 100000n,
        cpuQuota: 50000n,
        cpuShares: 256n,
        memoryLimitInBytes: 64n * 1024n * 1024n,
        oomScoreAdj: -1000n, // below berthd's own: must be clamped or runc fails
        cpusetCpus: "",
        cpusetMems: "",
        hugepageLimits: [],
        unified: {},
        memorySwapLimitInBytes: 0n,
      },
      securityContext: {
        privileged: false,
        runAsUsername: "",
        readonlyRootfs: true,
        supplementalGroups: [],
        noNewPrivs: true,
        maskedPaths: [],
        readonlyPaths: [],
        apparmorProfile: "",
        seccompProfilePath: "",
        seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault, localhostRef: "" },
      },
      ...over,
    },
  };
}

const sandbox: PodSandboxConfig = {
  metadata: { name: "pod", uid: "u", namespace: "default", attempt: 0 },
  hostname: "berth-oci",
  logDirectory: "",
  portMappings: [],
  labels: {},
  annotations: {},
  linux: {
    cgroupParent: CGROUP_PARENT,
    sysctls: { "net.ipv4.ip_unprivileged_port_start": "80", "kernel.panic": "1" },
  },
};

async function runInRunc(
  cfg: ContainerConfig,
  writableTmp = false,
): Promise<{ stdout: string; stderr: string }> {
  const id = `berth-oci-${randomBytes(4).toString("hex")}`;
  const bundle = await mkdtemp(join(tmpdir(), "berth-oci-"));
  const runcRoot = join(bundle, "runc-state");
  const rootfs = join(bundle, "rootfs");
  try {
    await mkdir(join(rootfs, "bin"), { recursive: true });
    await mkdir(join(rootfs, "etc"), { recursive: true });
    await copyFile(BUSYBOX!, join(rootfs, "bin/busybox"));
    for (const applet of [
      "sh",
      "id",
      "cat",
      "grep",
      "hostname",
      "echo",
      "httpd",
      "wget",
      "sleep",
      "kill",
      "mkdir",
    ]) {
      await symlink("busybox", join(rootfs, "bin", applet));
    }
    await writeFile(
      join(rootfs, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
    );
    await writeFile(join(rootfs, "etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:app\n");
    if (writableTmp) {
      await mkdir(join(bundle, "tmp"));
      cfg.mounts.push({
        containerPath: "/tmp",
        hostPath: join(bundle, "tmp"),
        readonly: false,
        selinuxRelabel: false,
        propagation: 0,
        uidMappings: [],
        gidMappings: [],
      });
    }
    const oomScoreAdjMin = Number((await readFile("/proc/self/oom_score_adj", "utf8")).trim());
    const spec = await buildContainerSpec({
      id,
      sandboxId: "sandbox",
      config: cfg,
      sandboxConfig: sandbox,
      rootfs,
      // Test-only reader: the fixture rootfs has no symlinks under /etc.
      readRootfsFile: (p) => readFile(join(rootfs, p), "utf8").catch(() => undefined),
      oomScoreAdjMin,
    });
    assert.equal(spec.process.oomScoreAdj, Math.max(-1000, oomScoreAdjMin));
    assert.equal(spec.linux.cgroupsPath, `${CGROUP_PARENT}/berth-${id}`);
    await writeFile(join(bundle, "config.json"), JSON.stringify(spec, null, 2));
    return await exec(RUNC, ["--root", runcRoot, "run", "--bundle", bundle, id], { timeout: 30_000 });
  } finally {
    await exec(RUNC, ["--root", runcRoot, "delete", "-f", id]).catch(() => {});
    await rm(bundle, { recursive: true, force: true });
    await removeTestCgroups();
  }
}

describe("generated specs under runc", { skip, timeout: SUITE_TIMEOUT_MS }, () => {
  it("runs busybox as root with the default capabilities and RuntimeDefault seccomp", async () => {
    const { stdout } = await runInRunc(
      config([
        "/bin/sh",
        "-c",
        "id -u; grep CapEff /proc/self/status; hostname; echo $GREETING; grep Seccomp: /proc/self/status; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; echo x > /probe || echo ro",
      ]),
    );
    const lines = stdout.trim().split("\n");
    assert.equal(lines[0], "0");
    assert.match(lines[1] ?? "", /^CapEff:\s+00000000a80425fb$/);
    assert.equal(lines[2], "berth-oci");
    assert.equal(lines[3], "hi");
    assert.match(lines[4] ?? "", /^Seccomp:\s+2$/);
    assert.equal(lines[5], "80");
    assert.equal(lines[6], "ro");
  });

  it("serves HTTP with busybox httpd under RuntimeDefault seccomp", async () => {
    const script =
      "mkdir -p /tmp/www && echo served > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www && sleep 0.3 && wget -q -O - http://127.0.0.1:8080/";
    const cfg = config(["/bin/sh", "-c", script]);
    const { stdout } = await runInRunc(cfg, true);
    assert.equal(stdout.trim(), "served");
  });

  it("runs as a non-root user with its groups and no effective capabilities", async () => {
    const cfg = config(["/bin/sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status"]);
    cfg.linux!.securityContext!.runAsUser = { value: 1000n };
    cfg.linux!.securityContext!.supplementalGroups = [4242n];
    const { stdout } = await runInRunc(cfg);
    const lines = stdout.trim().split("\n");
    assert.deepEqual(lines.slice(0, 3), ["1000", "1000", "1000 50 4242"]);
    assert.match(lines[3] ?? "", /^CapEff:\s+0000000000000000$/);
  });
});
