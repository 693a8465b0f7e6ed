import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { isBerthError } from "../common/errors.js";
import { MNT_DETACH, native } from "../common/native.js";
import { needsRoot } from "../test/harness/skip.js";
import {
  createPodNamespaces,
  isNsfs,
  listPinned,
  type PodNamespacePaths,
  planSysctls,
  removePodNamespaces,
  sysctlNamespace,
} from "./namespaces.js";

const run = promisify(execFile);
const skipUnlessRoot = needsRoot("unshare, mount");

let dir: string;
const created: PodNamespacePaths[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-ns-"));
});
after(async () => {
  for (const p of created) await removePodNamespaces(p).catch(() => {});
  // The pin dir is a bind mount of itself; detach it before removing the tree.
  for (let i = 0; i < 4; i++)
    await native()
      .umount2(dir, MNT_DETACH)
      .catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

async function inNs(kind: "net" | "uts" | "ipc", file: string, ...cmd: string[]): Promise<string> {
  const { stdout } = await run("nsenter", [`--${kind}=${file}`, "--", ...cmd]);
  return stdout;
}

test("sysctls are checked against the namespaces being created", () => {
  assert.equal(sysctlNamespace("net.ipv4.ip_unprivileged_port_start"), "net");
  assert.equal(sysctlNamespace("kernel.shmmax"), "ipc");
  assert.equal(sysctlNamespace("fs.mqueue.msg_max"), "ipc");
  assert.equal(sysctlNamespace("kernel.pid_max"), null);
  const all = { net: true, ipc: true, uts: true };
  assert.deepEqual(planSysctls({ "net.ipv4.ping_group_range": "0 1000" }, all), [
    ["net/ipv4/ping_group_range", "0 1000"],
  ]);
  assert.throws(() => planSysctls({ "kernel.pid_max": "1" }, all), /not namespaced/);
  assert.throws(() => planSysctls({ "net.core.somaxconn": "1" }, { ...all, net: false }), /host's/);
  assert.throws(() => planSysctls({ "net/../../x": "1" }, all), /invalid sysctl name/);
  assert.throws(() => planSysctls({ "net.core.somaxconn": "1\n2" }, all), /invalid value/);
});

test("pins net/ipc/uts: hostname set, lo up, sysctls applied; survives without processes", {
  skip: skipUnlessRoot,
}, async () => {
  const paths = await createPodNamespaces({
    dir,
    id: "podA",
    net: true,
    ipc: true,
    uts: true,
    hostname: "pod-a-host",
    sysctls: { "net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "1234" },
  });
  created.push(paths);
  assert.deepEqual(paths, {
    net: join(dir, "net/podA"),
    ipc: join(dir, "ipc/podA"),
    uts: join(dir, "uts/podA"),
  });
  for (const p of Object.values(paths)) assert.equal(await isNsfs(p), true);

  assert.equal((await inNs("uts", paths.uts!, "hostname")).trim(), "pod-a-host");
  const addrs = await inNs("net", paths.net!, "ip", "-o", "addr");
  assert.match(addrs, /^1: lo +inet 127\.0\.0\.1\/8/m);
  assert.match(await inNs("net", paths.net!, "ip", "-o", "link", "show", "lo"), /state UNKNOWN|LOWER_UP/);
  // Only lo: a fresh namespace.
  assert.equal((await inNs("net", paths.net!, "ip", "-o", "link")).trim().split("\n").length, 1);
  assert.equal(
    (await inNs("net", paths.net!, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")).trim(),
    "80",
  );
  assert.equal((await inNs("ipc", paths.ipc!, "cat", "/proc/sys/kernel/shmmni")).trim(), "1234");
  // The host's namespaces are untouched.
  assert.notEqual((await readFile("/proc/sys/kernel/hostname", "utf8")).trim(), "pod-a-host");
  assert.notEqual((await readFile("/proc/sys/kernel/shmmni", "utf8")).trim(), "1234");

  // Distinct from the host's namespaces.
  const hostNet = await stat("/proc/self/ns/net");
  assert.notEqual((await stat(paths.net!)).ino, hostNet.ino);

  // The pin dir is a private mount, so nothing propagates.
  const mi = await readFile("/proc/self/mountinfo", "utf8");
  const line = mi.split("\n").find((l) => l.split(" ")[4] === dir);
  assert.ok(line, "pin dir is a mount point");
  assert.doesNotMatch(line, /shared:|master:/);

  // Pinning the same id twice is AlreadyExists and leaves the first pin intact.
  await assert.rejects(createPodNamespaces({ dir, id: "podA", net: true, ipc: false, uts: false }), (e) =>
    isBerthError(e, "AlreadyExists"),
  );
  assert.equal(await isNsfs(paths.net!), true);

  assert.deepEqual(await listPinned(dir), [{ id: "podA", paths }]);
  await removePodNamespaces(paths);
  for (const p of Object.values(paths)) await assert.rejects(stat(p), { code: "ENOENT" });
  // Idempotent: missing files are fine.
  await removePodNamespaces(paths);
  assert.deepEqual(await listPinned(dir), []);
});

test("host network/IPC/UTS: only the private kinds are created", { skip: skipUnlessRoot }, async () => {
  const paths = await createPodNamespaces({
    dir,
    id: "podB",
    net: false,
    ipc: true,
    uts: true,
    hostname: "b",
  });
  created.push(paths);
  assert.deepEqual(Object.keys(paths).sort(), ["ipc", "uts"]);
  assert.deepEqual(await createPodNamespaces({ dir, id: "podC", net: false, ipc: false, uts: false }), {});
  // A net sysctl with host network is refused before anything is created.
  await assert.rejects(
    createPodNamespaces({
      dir,
      id: "podD",
      net: false,
      ipc: true,
      uts: true,
      sysctls: { "net.core.somaxconn": "1" },
    }),
    (e) => isBerthError(e, "InvalidArgument"),
  );
  const pinned = await listPinned(dir);
  assert.deepEqual(
    pinned.map((p) => p.id),
    ["podB"],
  );
  await removePodNamespaces([paths.ipc!, paths.uts!, join(dir, "net/never-existed")]);
});

test("a failing helper leaves no files or mounts behind", { skip: skipUnlessRoot }, async () => {
  await assert.rejects(
    createPodNamespaces({
      dir,
      id: "podE",
      net: true,
      ipc: true,
      uts: false,
      sysctls: { "net.ipv4.no_such_sysctl": "1" },
    }),
    (e) => isBerthError(e, "Internal") && /unshare exited/.test(e.message),
  );
  assert.deepEqual(
    (await listPinned(dir)).map((p) => p.id),
    [],
  );
});

test("invalid ids and hostnames are refused", async () => {
  await assert.rejects(
    createPodNamespaces({ dir, id: "../x", net: true, ipc: false, uts: false }),
    /invalid pod id/,
  );
  await assert.rejects(
    createPodNamespaces({ dir, id: "ok", net: false, ipc: false, uts: true, hostname: "bad host" }),
    /invalid hostname/,
  );
});
