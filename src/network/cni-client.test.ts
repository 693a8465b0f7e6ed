/**
 * The CNI client against fake plugins (small node scripts that log their env and stdin),
 * no root needed: chaining, runtimeConfig, DEL order, cache across restarts, errors, timeouts.
 */
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { isBerthError } from "../common/errors.js";
import { CniClient } from "./cni.js";
import { CniPluginError } from "./cni-exec.js";

// The fake: records {type, env, conf} to conf.log; conf.fail = {command, code, msg, details}
// makes that command fail; conf.sleepMs delays; conf.addIP adds an eth0 address to the result.
const FAKE = `#!${process.execPath}
const fs = require("node:fs");
const path = require("node:path");
const conf = JSON.parse(fs.readFileSync(0, "utf8"));
const cmd = process.env.CNI_COMMAND;
const env = {};
for (const k of Object.keys(process.env)) if (k.startsWith("CNI_")) env[k] = process.env[k];
fs.appendFileSync(conf.log, JSON.stringify({ type: path.basename(process.argv[1]), env, conf }) + "\\n");
if (conf.sleepMs) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, conf.sleepMs);
if (conf.fail && conf.fail.command === cmd) {
  if (conf.fail.raw) { process.stderr.write(conf.fail.raw); process.exit(2); }
  process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: conf.fail.code, msg: conf.fail.msg, details: conf.fail.details }));
  process.exit(1);
}
if (cmd !== "ADD") process.exit(0);
const res = conf.prevResult ? JSON.parse(JSON.stringify(conf.prevResult)) : { cniVersion: conf.cniVersion, interfaces: [], ips: [] };
if (conf.addIP) {
  res.interfaces.push({ name: process.env.CNI_IFNAME, sandbox: process.env.CNI_NETNS });
  res.ips.push({ address: conf.addIP, interface: res.interfaces.length - 1 });
}
process.stdout.write(JSON.stringify(res));
`;

let dir: string;
let bin: string;
let conf: string;
let cache: string;
let log: string;

interface LogEntry {
  type: string;
  env: Record<string, string>;
  conf: Record<string, unknown>;
}

async function readLog(): Promise<LogEntry[]> {
  const text = await readFile(log, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as LogEntry);
}

async function writeConf(
  plugins: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): Promise<void> {
  await writeFile(
    join(conf, "10-fake.conflist"),
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "fakenet",
      ...extra,
      plugins: plugins.map((p) => ({ log, ...p })),
    }),
  );
}

const pod = {
  podId: "pod1",
  name: "web",
  namespace: "ns1",
  uid: "uid-1",
  netns: "/nonexistent/netns/pod1",
  portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "TCP" }],
  bandwidth: { egressRate: 1000 },
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-cnifake-"));
  bin = join(dir, "bin");
  conf = join(dir, "net.d");
  cache = join(dir, "results");
  log = join(dir, "calls.log");
  await mkdir(bin);
  await mkdir(conf);
  for (const name of ["fakea", "fakeb", "fakec"]) {
    await writeFile(join(bin, name), FAKE);
    await chmod(join(bin, name), 0o755);
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await rm(log, { force: true });
  await rm(cache, { recursive: true, force: true });
});

function client(timeoutMs = 20_000): CniClient {
  return new CniClient({
    confDirs: [conf],
    binDirs: ["/nonexistent-bin", bin],
    cacheDir: cache,
    pluginTimeoutMs: timeoutMs,
  });
}

test("ADD chains prevResult, passes env and only declared capabilities; result is cached", async () => {
  await writeConf([
    { type: "fakea", addIP: "10.99.0.7/24" },
    { type: "fakeb", capabilities: { portMappings: true } },
    { type: "fakec", capabilities: { bandwidth: true }, addIP: "fd00::7/64" },
  ]);
  const res = await client().setUpPod(pod);
  assert.equal(res.networkName, "fakenet");
  assert.deepEqual(res.ips, ["10.99.0.7", "fd00::7"]);

  const calls = await readLog();
  assert.deepEqual(
    calls.map((c) => c.type),
    ["fakea", "fakeb", "fakec"],
  );
  const [a, b, c] = calls as [LogEntry, LogEntry, LogEntry];
  assert.deepEqual(a.env, {
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: "pod1",
    CNI_NETNS: pod.netns,
    CNI_IFNAME: "eth0",
    CNI_ARGS:
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID=uid-1",
    CNI_PATH: `/nonexistent-bin:${bin}`,
  });
  assert.equal(a.conf["name"], "fakenet");
  assert.equal(a.conf["cniVersion"], "1.0.0");
  assert.equal("prevResult" in a.conf, false);
  assert.equal("runtimeConfig" in a.conf, false);
  assert.deepEqual(b.conf["runtimeConfig"], {
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
  });
  assert.deepEqual((b.conf["prevResult"] as { ips: unknown[] }).ips, [
    { address: "10.99.0.7/24", interface: 0 },
  ]);
  assert.deepEqual(c.conf["runtimeConfig"], { bandwidth: { egressRate: 1000 } });

  const cached = await client().cachedAttachment("pod1");
  assert.ok(cached);
  assert.equal(cached.networkName, "fakenet");
  assert.equal((cached.result["ips"] as unknown[]).length, 2);
  assert.deepEqual(await client().cachedPodIds(), ["pod1"]);
});

test("CHECK and DEL after a restart use the cached config, args and prevResult; DEL is idempotent", async () => {
  await writeConf([
    { type: "fakea", addIP: "10.99.0.8/24" },
    { type: "fakeb", capabilities: { portMappings: true } },
  ]);
  await client().setUpPod(pod);
  // The admin replaces the config meanwhile; the pod keeps its original network.
  await writeConf([{ type: "fakec" }], { name: "othernet" });
  await rm(log);

  const restarted = client();
  await restarted.checkPod({ podId: "pod1", netns: pod.netns });
  // A DEL request without port mappings: the cached ones must be used (portmap needs them).
  await restarted.tearDownPod({ ...pod, portMappings: [], bandwidth: {} });
  const calls = await readLog();
  assert.deepEqual(
    calls.map((c) => `${c.env["CNI_COMMAND"]} ${c.type}`),
    ["CHECK fakea", "CHECK fakeb", "DEL fakeb", "DEL fakea"],
  );
  for (const c of calls) {
    assert.equal(c.conf["name"], "fakenet");
    assert.deepEqual((c.conf["prevResult"] as { ips: unknown[] }).ips, [
      { address: "10.99.0.8/24", interface: 0 },
    ]);
  }
  const delB = calls[2]!;
  assert.deepEqual(delB.conf["runtimeConfig"], {
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
  });
  // The netns path does not exist: DEL passes an empty CNI_NETNS.
  assert.equal(delB.env["CNI_NETNS"], "");
  assert.equal(await restarted.cachedAttachment("pod1"), null);

  // Second DEL: no cache, so the current config is used; still fine.
  await rm(log);
  await restarted.tearDownPod(pod);
  const again = await readLog();
  assert.deepEqual(
    again.map((c) => `${c.env["CNI_COMMAND"]} ${c.type} ${c.conf["name"]}`),
    ["DEL fakec othernet"],
  );
  assert.equal("prevResult" in again[0]!.conf, false);

  await assert.rejects(restarted.checkPod({ podId: "pod1", netns: pod.netns }), /no cached network result/);
});

test("a plugin's JSON error becomes a CniPluginError; a failed ADD is rolled back with DEL", async () => {
  await writeConf([
    { type: "fakea", addIP: "10.99.0.9/24" },
    { type: "fakeb", fail: { command: "ADD", code: 7, msg: "invalid bridge", details: "bridge x0 busy" } },
  ]);
  await assert.rejects(client().setUpPod(pod), (e: unknown) => {
    assert.ok(e instanceof CniPluginError);
    assert.equal(e.code, "Internal");
    assert.equal(e.plugin, "fakeb");
    assert.equal(e.command, "ADD");
    assert.equal(e.cniCode, 7);
    assert.equal(e.msg, "invalid bridge");
    assert.equal(e.details, "bridge x0 busy");
    assert.equal(e.message, "CNI plugin fakeb ADD failed (CNI error 7): invalid bridge: bridge x0 busy");
    return true;
  });
  const calls = await readLog();
  assert.deepEqual(
    calls.map((c) => `${c.env["CNI_COMMAND"]} ${c.type}`),
    ["ADD fakea", "ADD fakeb", "DEL fakeb", "DEL fakea"],
  );
  assert.equal(await client().cachedAttachment("pod1"), null);
});

test("error code 11 maps to Unavailable; non-JSON failures carry stderr", async () => {
  await writeConf([{ type: "fakea", fail: { command: "ADD", code: 11, msg: "try later" } }]);
  await assert.rejects(
    client().setUpPod(pod),
    (e) => isBerthError(e, "Unavailable") && /try later/.test(e.message),
  );
  await writeConf([{ type: "fakea", fail: { command: "ADD", raw: "panic: boom\n" } }]);
  await assert.rejects(
    client().setUpPod(pod),
    (e) => e instanceof CniPluginError && /exit status 2: panic: boom/.test(e.message),
  );
});

test("DEL runs every plugin even when one fails, keeps the cache and reports the error", async () => {
  await writeConf([
    { type: "fakea", addIP: "10.99.0.10/24" },
    { type: "fakeb", fail: { command: "DEL", code: 5, msg: "iptables locked" } },
  ]);
  await client().setUpPod(pod);
  await rm(log);
  await assert.rejects(client().tearDownPod(pod), /fakeb DEL failed \(CNI error 5\): iptables locked/);
  assert.deepEqual(
    (await readLog()).map((c) => `${c.env["CNI_COMMAND"]} ${c.type}`),
    ["DEL fakeb", "DEL fakea"],
  );
  assert.ok(await client().cachedAttachment("pod1"));
});

test("a hanging plugin is killed after the timeout (DeadlineExceeded)", async () => {
  await writeConf([{ type: "fakea", sleepMs: 5000 }]);
  const t0 = Date.now();
  await assert.rejects(
    client(300).setUpPod(pod),
    (e) => isBerthError(e, "DeadlineExceeded") && /fakea ADD timed out/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 4000);
});

test("a missing plugin binary is a FailedPrecondition naming it", async () => {
  await writeConf([{ type: "fakea" }, { type: "nosuchplugin" }]);
  await assert.rejects(
    client().setUpPod(pod),
    (e) => isBerthError(e, "FailedPrecondition") && /CNI plugin "nosuchplugin" not found/.test(e.message),
  );
  assert.deepEqual(await readLog(), []);
});

test("concurrent operations on one pod run one at a time", async () => {
  await writeConf([{ type: "fakea", addIP: "10.99.0.11/24", sleepMs: 100 }]);
  const c = client();
  await Promise.all([c.setUpPod(pod), c.tearDownPod(pod), c.setUpPod(pod)]);
  assert.deepEqual(
    (await readLog()).map((e) => e.env["CNI_COMMAND"]),
    ["ADD", "DEL", "ADD"],
  );
  assert.ok(await c.cachedAttachment("pod1"));
});

test("invalid requests are rejected before any plugin runs", async () => {
  await assert.rejects(client().setUpPod({ ...pod, podId: "../x" }), (e) =>
    isBerthError(e, "InvalidArgument"),
  );
  await assert.rejects(client().setUpPod({ ...pod, netns: "relative" }), (e) =>
    isBerthError(e, "InvalidArgument"),
  );
});
