/**
 * End-to-end with the real containernetworking plugins (bridge + host-local + portmap +
 * loopback) on a test-only bridge berthtest0 / 10.250.0.0/24. Needs root. All traffic stays
 * between the host and namespaces this test creates; everything it creates is removed in
 * after(), including iptables chains the plugins add and host sysctls they flip.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { MNT_DETACH, native } from "../common/native.js";
import { needsRoot } from "../test/harness/skip.js";
import { CniClient } from "./cni.js";
import { defaultConflist } from "./default-conflist.js";
import { createPodNamespaces, type PodNamespacePaths, removePodNamespaces } from "./namespaces.js";

const run = promisify(execFile);
const BIN_DIRS = ["/usr/lib/cni", "/opt/cni/bin"];
const haveBridge = await access("/usr/lib/cni/bridge").then(
  () => true,
  () => false,
);
const skip = needsRoot() || (!haveBridge ? "containernetworking-plugins not installed" : false);

const BRIDGE = "berthtest0";
const SUBNET = "10.250.0.0/24";
const GATEWAY = "10.250.0.1";
const SUFFIX = `${process.pid}${Date.now().toString(36)}`;
const POD1 = `berthtest-a${SUFFIX}`;
const POD2 = `berthtest-b${SUFFIX}`;
const HOST_SYSCTLS = [
  "net/ipv4/ip_forward",
  "net/ipv4/conf/all/route_localnet",
  "net/ipv4/conf/default/route_localnet",
  "net/ipv4/conf/all/forwarding",
];

let dir: string;
let pinDir: string;
let ipamDir: string;
const pinned: PodNamespacePaths[] = [];
const servers: ChildProcess[] = [];
const sysctlsBefore = new Map<string, string>();
type Family = "ip" | "ip6";
const FAMILIES: readonly Family[] = ["ip", "ip6"];
const chainsBefore = new Map<Family, Map<string, Set<string>>>();
const saveCmd = (f: Family) => (f === "ip" ? "iptables-save" : "ip6tables-save");
const iptCmd = (f: Family) => (f === "ip" ? "iptables" : "ip6tables");
let client: () => CniClient;

async function sh(cmd: string, ...args: string[]): Promise<string> {
  return (await run(cmd, args)).stdout;
}

/**
 * table -> user-defined chain names, from iptables-save / ip6tables-save. Built-in chains (those
 * with a policy) are left out: a table the test loads first shows them afterwards.
 */
async function iptablesChains(f: Family): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  let table = "";
  for (const line of (await sh(saveCmd(f))).split("\n")) {
    if (line.startsWith("*")) table = line.slice(1);
    else if (line.startsWith(":")) {
      const [name = "", policy] = line.slice(1).split(" ");
      if (policy !== "-") continue;
      const chains = out.get(table) ?? new Set<string>();
      chains.add(name);
      out.set(table, chains);
    }
  }
  return out;
}

async function iptablesRulesMatching(needle: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of FAMILIES) {
    out.push(...(await sh(saveCmd(f))).split("\n").filter((l) => l.includes(needle) && !l.startsWith("#")));
  }
  return out;
}

/** Deletes every chain (and jumps into it) and table that did not exist before the test. */
async function removeNewChains(f: Family): Promise<void> {
  const now = await iptablesChains(f);
  const save = (await sh(saveCmd(f))).split("\n");
  const tablesBefore = chainsBefore.get(f) ?? new Map<string, Set<string>>();
  for (const [table, chains] of now) {
    const before = tablesBefore.get(table) ?? new Set<string>();
    const added = [...chains].filter((c) => !before.has(c));
    if (added.length === 0) continue;
    // Jumps into the new chains from old ones, deleted by rule number (the rules' comments hold
    // escaped quotes that do not survive being split back into arguments).
    let cur = "";
    const parents = new Set<string>();
    for (const line of save) {
      if (line.startsWith("*")) cur = line.slice(1);
      if (cur !== table || !line.startsWith("-A ")) continue;
      const target = / -j (\S+)/.exec(line)?.[1];
      const chain = line.split(" ")[1] ?? "";
      if (target !== undefined && added.includes(target) && !added.includes(chain)) parents.add(chain);
    }
    for (const chain of parents) {
      const listing = await sh(iptCmd(f), "-t", table, "-L", chain, "-n", "--line-numbers");
      const numbers = listing
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((cols) => /^\d+$/.test(cols[0] ?? "") && added.includes(cols[1] ?? ""))
        .map((cols) => Number(cols[0]))
        .sort((a, b) => b - a);
      for (const n of numbers) await run(iptCmd(f), ["-t", table, "-D", chain, String(n)]).catch(() => {});
    }
    for (const c of added) await run(iptCmd(f), ["-t", table, "-F", c]).catch(() => {});
    for (const c of added) await run(iptCmd(f), ["-t", table, "-X", c]).catch(() => {});
  }
  // iptables-nft leaves the (now empty) tables it created; drop those too.
  for (const table of now.keys()) {
    if (!tablesBefore.has(table)) await run("nft", ["delete", "table", f, table]).catch(() => {});
  }
}

async function netnsIPs(file: string): Promise<string> {
  return sh("nsenter", `--net=${file}`, "--", "ip", "-o", "-4", "addr");
}

/** A TCP server inside the pod netns that greets and closes; resolves once it listens. */
async function startPodServer(netns: string, port: number, greeting: string): Promise<void> {
  const code = `require("net").createServer((s)=>s.end(${JSON.stringify(greeting)})).listen(${port},()=>console.log("ready"))`;
  const child = spawn("nsenter", [`--net=${netns}`, "--", process.execPath, "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  servers.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (b: Buffer) => {
      if (b.toString().includes("ready")) resolve();
    });
    child.on("exit", (c) => reject(new Error(`pod server exited ${c}`)));
  });
}

function fetchGreeting(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, timeout: 5000 });
    let data = "";
    s.on("data", (b) => {
      data += b.toString();
    });
    s.on("end", () => resolve(data));
    s.on("timeout", () => {
      s.destroy();
      reject(new Error(`timeout connecting to ${host}:${port}`));
    });
    s.on("error", reject);
  });
}

before(async () => {
  if (skip) return;
  const links = await sh("ip", "-o", "link");
  assert.doesNotMatch(links, new RegExp(`: ${BRIDGE}[:@]`), `${BRIDGE} already exists; refusing to run`);
  for (const k of HOST_SYSCTLS) {
    const v = await sh("cat", `/proc/sys/${k}`).catch(() => "");
    if (v !== "") sysctlsBefore.set(k, v.trim());
  }
  for (const f of FAMILIES) chainsBefore.set(f, await iptablesChains(f));

  dir = await mkdtemp(join(tmpdir(), "berth-cnibr-"));
  pinDir = join(dir, "ns");
  ipamDir = join(dir, "ipam");
  const confDir = join(dir, "net.d");
  await mkdir(confDir);
  await writeFile(
    join(confDir, "10-berthtest.conflist"),
    JSON.stringify(
      defaultConflist({
        name: "berthtest",
        bridge: BRIDGE,
        subnet: SUBNET,
        dataDir: ipamDir,
        bandwidth: false,
        loopback: true,
      }),
    ),
  );
  const cacheDir = join(dir, "results");
  client = () => new CniClient({ confDirs: [confDir], binDirs: BIN_DIRS, cacheDir, pluginTimeoutMs: 30_000 });
});

after(async () => {
  if (skip) return;
  for (const s of servers) s.kill("SIGKILL");
  for (const [i, id] of [POD1, POD2].entries()) {
    await client()
      .tearDownPod({
        podId: id,
        name: "p",
        namespace: "t",
        uid: "u",
        netns: pinned[i]?.net ?? "/nonexistent",
      })
      .catch(() => {});
  }
  for (const p of pinned) await removePodNamespaces(p).catch(() => {});
  await run("ip", ["link", "del", BRIDGE]).catch(() => {});
  for (const f of FAMILIES) await removeNewChains(f).catch(() => {});
  for (const [k, v] of sysctlsBefore) await writeFile(`/proc/sys/${k}`, v).catch(() => {});
  for (let i = 0; i < 4; i++)
    await native()
      .umount2(pinDir, MNT_DETACH)
      .catch(() => {});
  await rm(dir, { recursive: true, force: true });

  // Verify nothing is left behind.
  assert.doesNotMatch(await sh("ip", "-o", "link"), new RegExp(`: ${BRIDGE}[:@]`));
  assert.deepEqual(await iptablesRulesMatching(SUFFIX), []);
  for (const f of FAMILIES) assert.deepEqual(await iptablesChains(f), chainsBefore.get(f), f);
  for (const [k, v] of sysctlsBefore) assert.equal((await sh("cat", `/proc/sys/${k}`)).trim(), v, k);
});

test("bridge + portmap + loopback: ADD, reach the pod, CHECK, DEL (twice, and with the netns gone)", {
  skip,
}, async () => {
  const ns1 = await createPodNamespaces({
    dir: pinDir,
    id: POD1,
    net: true,
    ipc: true,
    uts: true,
    hostname: "pod1",
  });
  pinned[0] = ns1;
  const ns2 = await createPodNamespaces({ dir: pinDir, id: POD2, net: true, ipc: false, uts: false });
  pinned[1] = ns2;
  const req1 = {
    podId: POD1,
    name: "pod1",
    namespace: "berth-test",
    uid: "uid-1",
    netns: ns1.net!,
    portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: "TCP" }],
  };
  const req2 = { podId: POD2, name: "pod2", namespace: "berth-test", uid: "uid-2", netns: ns2.net! };

  const r1 = await client().setUpPod(req1);
  const r2 = await client().setUpPod(req2);
  assert.equal(r1.networkName, "berthtest");
  assert.equal(r1.ips.length, 1);
  const ip1 = r1.ips[0]!;
  const ip2 = r2.ips[0]!;
  assert.match(ip1, /^10\.250\.0\.\d+$/);
  assert.match(ip2, /^10\.250\.0\.\d+$/);
  assert.notEqual(ip1, ip2);
  assert.notEqual(ip1, GATEWAY);

  // eth0 with the pod IP inside the netns, lo up; the host has the bridge with the gateway.
  assert.match(await netnsIPs(ns1.net!), new RegExp(`eth0 +inet ${ip1.replaceAll(".", "\\.")}/24`));
  assert.match(await netnsIPs(ns1.net!), /lo +inet 127\.0\.0\.1/);
  assert.match(await sh("ip", "-o", "-4", "addr", "show", "dev", BRIDGE), /inet 10\.250\.0\.1\/24/);
  // host-local recorded both addresses in our temp data dir.
  assert.deepEqual(
    (await readdir(join(ipamDir, "berthtest"))).filter((f) => f.startsWith("10.")).sort(),
    [ip1, ip2].sort(),
  );

  // The host reaches a server in the pod at the pod IP, and through the hostPort on the gateway.
  await startPodServer(ns1.net!, 8080, "hello from pod1\n");
  assert.equal(await fetchGreeting(ip1, 8080), "hello from pod1\n");
  assert.equal(await fetchGreeting(GATEWAY, 18080), "hello from pod1\n");
  // Pod to pod across the bridge.
  const fromPod2 = await sh(
    "nsenter",
    `--net=${ns2.net}`,
    "--",
    process.execPath,
    "-e",
    `require("net").connect(8080,${JSON.stringify(ip1)}).on("data",(d)=>process.stdout.write(d))`,
  );
  assert.equal(fromPod2, "hello from pod1\n");
  // portmap's rules name our container id.
  assert.notDeepEqual(await iptablesRulesMatching(POD1), []);

  // CHECK (from a fresh client: the cached result is what counts). pod2 has no hostPorts.
  await client().checkPod(req2);
  // portmap <= 1.2 fails CHECK of an IPv4-only pod with hostPorts, looking for an ip6tables
  // chain it never made (containernetworking/plugins#819); accept exactly that failure.
  await client()
    .checkPod(req1)
    .catch((err: unknown) => {
      assert.match(String(err), /portmap CHECK failed .*could not check ipv6 dnat/);
    });
  // CHECK notices a broken pod: remove eth0 behind the plugins' back.
  await sh("nsenter", `--net=${ns2.net}`, "--", "ip", "link", "del", "eth0");
  await assert.rejects(client().checkPod(req2), /bridge CHECK failed/);

  // DEL pod1: IP released, eth0 gone, iptables rules gone; then DEL again.
  await client().tearDownPod(req1);
  assert.doesNotMatch(await netnsIPs(ns1.net!), /eth0/);
  assert.deepEqual(
    (await readdir(join(ipamDir, "berthtest"))).filter((f) => f.startsWith("10.")),
    [ip2],
  );
  assert.deepEqual(await iptablesRulesMatching(POD1), []);
  await assert.rejects(fetchGreeting(GATEWAY, 18080));
  await client().tearDownPod(req1);

  // DEL after the netns is gone (crash recovery): the IP is still released.
  await removePodNamespaces(ns2);
  await client().tearDownPod(req2);
  assert.deepEqual(
    (await readdir(join(ipamDir, "berthtest"))).filter((f) => f.startsWith("10.")),
    [],
  );
  // Known upstream limitation: bridge <= 1.x cannot find the pod's addresses without the netns,
  // so its ipMasq rules for pod2 stay behind (after() removes them). On a real node this path
  // follows a reboot, which also cleared iptables; berthd itself DELs before unpinning.
  await client().tearDownPod(req2);
  assert.equal(await client().cachedAttachment(POD2), null);
  // No veths left on the bridge.
  assert.equal((await sh("ip", "-o", "link", "show", "master", BRIDGE)).trim(), "");
});
