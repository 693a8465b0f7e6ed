/** Cleanup of what the runtimes leave on the host when a pod benchmark went wrong. */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { BRIDGE, CGROUP_PARENT, CGROUP_ROOT, NETWORK_NAME } from "./pod-configs.js";
import { listProcs, monitorsUnder } from "./procs.js";
import { errorText, log, run, sleep } from "./util.js";

export async function cgroupDirs(): Promise<string[]> {
  const out: string[] = [];
  for (const hierarchy of await readdir(CGROUP_ROOT).catch(() => [] as string[])) {
    const d = join(CGROUP_ROOT, hierarchy, CGROUP_PARENT);
    if (existsSync(d)) out.push(d);
  }
  return out;
}

/** Every cgroup dir at or below `dir`, deepest first. */
export async function cgroupTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
    }
    out.push(d);
  };
  await walk(dir);
  return out;
}

/** Kills whatever still runs in the bench cgroup parent and monitors naming `dirs`, then removes the cgroups. */
export async function sweepHost(dirs: readonly string[]): Promise<void> {
  const strays = new Set<number>();
  for (const top of await cgroupDirs()) {
    for (const d of await cgroupTree(top)) {
      const procs = await readFile(join(d, "cgroup.procs"), "utf8").catch(() => "");
      for (const p of procs.split("\n").filter(Boolean)) strays.add(Number(p));
    }
  }
  const procs = await listProcs();
  for (const dir of dirs) {
    for (const bin of ["conmon", "containerd-shim-runc-v2"]) {
      for (const p of monitorsUnder(procs, bin, dir)) strays.add(p.pid);
    }
  }
  if (strays.size > 0) {
    log(`cleanup: killing ${strays.size} leftover process(es): ${[...strays].join(" ")}`);
    for (const pid of strays) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await sleep(500);
  }
  for (const top of await cgroupDirs()) {
    for (const d of await cgroupTree(top)) {
      await rmdir(d).catch((err: unknown) => log(`cleanup: rmdir ${d}: ${errorText(err)}`));
    }
  }
}

export async function removeBridge(): Promise<void> {
  if (!existsSync(`/sys/class/net/${BRIDGE}`)) return;
  await run("ip", ["link", "del", BRIDGE]).catch((err: unknown) => log(`cleanup: ${errorText(err)}`));
}

/** Rules left in iptables that name the bench subnet (CNI DEL should have removed them all). */
export async function leftoverIptables(): Promise<string[]> {
  const out = await run("iptables-save", []).catch(() => "");
  return out.split("\n").filter((l) => l.includes("10.253.") || l.includes(BRIDGE));
}

/**
 * Last resort when a pod was never torn down (bench killed midway): the bridge plugin's DEL
 * cannot remove its ipMasq rules once the netns is gone (it reads the addresses from it), so
 * delete the NAT rules tagged with the bench network's name, then its per-pod chains.
 */
export async function removeLeftoverNatRules(): Promise<void> {
  const text = await run("iptables-save", ["-t", "nat"]).catch(() => "");
  const ours = text
    .split("\n")
    .filter((l) => l.startsWith("-A ") && l.includes(`name: \\"${NETWORK_NAME}\\"`));
  if (ours.length === 0) return;
  const chains = new Set<string>();
  const deletes: string[] = [];
  for (const line of ours) {
    const chain = line.split(" ")[1] ?? "";
    if (/^CNI-[0-9a-f]{24}$/.test(chain)) chains.add(chain);
    else deletes.push(`-D ${line.slice(3)}`);
  }
  const script = [
    "*nat",
    ...deletes,
    ...[...chains].map((c) => `-F ${c}`),
    ...[...chains].map((c) => `-X ${c}`),
    "COMMIT",
    "",
  ].join("\n");
  log(`cleanup: removing ${ours.length} leftover NAT rule(s) of ${NETWORK_NAME}`);
  await runWithInput("iptables-restore", ["--noflush"], script).catch((err: unknown) =>
    log(`cleanup: iptables-restore: ${errorText(err)}`),
  );
}

export function runWithInput(file: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`exit ${code}: ${stderr.trim()}`)),
    );
    child.stdin?.end(input);
  });
}

/** containerd's shim sockets go to /run/containerd/s whatever its state dir: remove what we add. */
export async function runContainerdSnapshot(): Promise<{ existed: boolean; sockets: Set<string> }> {
  const existed = existsSync("/run/containerd");
  const sockets = new Set(await readdir("/run/containerd/s").catch(() => [] as string[]));
  return { existed, sockets };
}

export async function restoreRunContainerd(before: {
  existed: boolean;
  sockets: Set<string>;
}): Promise<void> {
  for (const s of await readdir("/run/containerd/s").catch(() => [] as string[])) {
    if (!before.sockets.has(s)) await rm(join("/run/containerd/s", s), { force: true, recursive: true });
  }
  if (!before.existed) {
    // Only if nothing else moved in meanwhile.
    await rmdir("/run/containerd/s").catch(() => {});
    await rmdir("/run/containerd").catch(() => {});
  }
}
