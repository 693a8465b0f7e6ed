/**
 * Test helpers for src/runtime (not a test file itself): busybox bundles with a minimal OCI
 * config, and cleanup that works even after a failed test.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, rm, rmdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../common/process.js";
import { needsRoot } from "../test/harness/skip.js";
import { readPidFile } from "./conmon.js";

export const RUNC = "/usr/sbin/runc";
export const CONMON = "/usr/bin/conmon";
export const CGROUP_PARENT = "berth-rt-test";

/** Why the integration tests cannot run here, or undefined if they can. */
export function skipReason(): string | undefined {
  const root = needsRoot();
  if (root) return root;
  for (const f of [RUNC, CONMON, "/bin/busybox"]) if (!existsSync(f)) return `needs ${f}`;
  return undefined;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export interface BundleOptions {
  terminal?: boolean;
  env?: string[];
}

/** A bundle at `<dir>/bundle`: busybox rootfs and a minimal config.json running `args`. */
export async function makeBundle(
  dir: string,
  id: string,
  args: string[],
  o: BundleOptions = {},
): Promise<string> {
  const bundle = join(dir, "bundle");
  const rootfs = join(bundle, "rootfs");
  for (const d of ["bin", "proc", "dev", "tmp", "etc"]) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile("/bin/busybox", join(rootfs, "bin", "busybox"));
  for (const applet of ["sh", "echo", "sleep", "cat", "id", "printf", "ps", "true", "false"]) {
    await symlink("busybox", join(rootfs, "bin", applet));
  }
  const config = {
    ociVersion: "1.0.2",
    process: {
      terminal: o.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args,
      env: o.env ?? ["PATH=/bin", "HOME=/"],
      cwd: "/",
    },
    root: { path: "rootfs" },
    hostname: "berth-test",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
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
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
      },
    ],
    linux: {
      cgroupsPath: `/${CGROUP_PARENT}/${id}`,
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
    },
  };
  await writeFile(join(bundle, "config.json"), JSON.stringify(config, null, 2));
  return bundle;
}

/**
 * Best-effort teardown: runc delete -f, SIGKILL any conmon named by the pid files, remove the
 * directories and the test cgroups (`<controller>/berth-rt-test/<id>`, then the parent if empty).
 */
export async function cleanup(o: {
  runtimeRoot: string;
  ids: string[];
  conmonPidFiles?: string[];
  dirs?: string[];
}): Promise<void> {
  for (const id of o.ids) {
    await run(RUNC, [`--root=${o.runtimeRoot}`, "delete", "--force", id]).catch(() => {});
  }
  for (const f of o.conmonPidFiles ?? []) {
    const pid = await readPidFile(f);
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
  for (const d of o.dirs ?? []) await rm(d, { recursive: true, force: true }).catch(() => {});
  await removeTestCgroups(o.ids);
}

export async function removeTestCgroups(ids: string[]): Promise<void> {
  let controllers: string[] = [];
  try {
    controllers = await readdir("/sys/fs/cgroup");
  } catch {
    return;
  }
  for (const c of controllers) {
    const parent = join("/sys/fs/cgroup", c, CGROUP_PARENT);
    for (const id of ids) await rmdir(join(parent, id)).catch(() => {});
    await rmdir(parent).catch(() => {});
  }
}

/** Polls `f` until it returns something defined or `ms` elapse. */
export async function waitFor<T>(
  f: () => Promise<T | undefined>,
  ms: number,
  step = 50,
): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, step));
  }
}
