import assert from "node:assert/strict";
import { access, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CniClient } from "./cni.js";
import { parseNetworkConfig } from "./cni-config.js";
import { pluginVersionInfo } from "./cni-exec.js";
import {
  DEFAULT_CNI_VERSION,
  defaultConflist,
  installDefaultConflist,
  pickCniVersion,
} from "./default-conflist.js";

const haveBridge = await access("/usr/lib/cni/bridge").then(
  () => true,
  () => false,
);
const needsPlugins = haveBridge ? false : "containernetworking-plugins not installed";
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-defconf-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("default conflist: berth / berth0 / 10.88.0.0/16 with portmap and bandwidth", () => {
  const c = defaultConflist();
  assert.deepEqual(c, {
    cniVersion: DEFAULT_CNI_VERSION,
    name: "berth",
    plugins: [
      {
        type: "bridge",
        bridge: "berth0",
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet: "10.88.0.0/16" }]], routes: [{ dst: "0.0.0.0/0" }] },
      },
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "bandwidth", capabilities: { bandwidth: true } },
    ],
  });
  const parsed = parseNetworkConfig(JSON.stringify(c), "default");
  assert.equal(parsed.plugins.length, 3);
  assert.equal((defaultConflist({ bandwidth: false }).plugins as unknown[]).length, 2);
});

test("the bridge gets hairpin mode or promiscuous mode, never both (the plugin refuses both)", () => {
  const bridgeOf = (l: Record<string, unknown>) => (l["plugins"] as Array<Record<string, unknown>>)[0]!;
  assert.equal(bridgeOf(defaultConflist())["hairpinMode"], true);
  assert.equal(bridgeOf(defaultConflist())["promiscMode"], undefined);
  const promisc = bridgeOf(defaultConflist({ promiscMode: true }));
  assert.deepEqual([promisc["promiscMode"], promisc["hairpinMode"]], [true, undefined]);
  const plugins = (
    defaultConflist({ portmap: false, bandwidth: false, loopback: true })["plugins"] as Array<{
      type: string;
    }>
  ).map((p) => p.type);
  assert.deepEqual(plugins, ["bridge", "loopback"]);
});

test("the installed plugins (1.1.1) support cniVersion 1.0.0", { skip: needsPlugins }, async () => {
  const info = await pluginVersionInfo("/usr/lib/cni/bridge");
  assert.ok(info.supportedVersions.includes("1.0.0"), info.supportedVersions.join(","));
  assert.equal(await pickCniVersion(["/usr/lib/cni"]), "1.0.0");
  assert.equal(await pickCniVersion(["/usr/lib/cni"], ["0.4.0", "0.3.1"]), "0.4.0");
});

test("installDefaultConflist writes once and keeps an existing config", { skip: needsPlugins }, async () => {
  const confDir = join(dir, "net.d");
  const path = await installDefaultConflist(confDir, { binDirs: ["/usr/lib/cni"] });
  assert.equal(path, join(confDir, "10-berth.conflist"));
  const written = JSON.parse(await readFile(path!, "utf8")) as { cniVersion: string };
  assert.equal(written.cniVersion, "1.0.0");
  assert.equal(await installDefaultConflist(confDir, { binDirs: ["/usr/lib/cni"] }), null);
  const status = await new CniClient({
    confDirs: [confDir],
    binDirs: ["/usr/lib/cni", "/opt/cni/bin"],
  }).networkStatus();
  assert.deepEqual(status, { ready: true, networkName: "berth", source: path });

  const other = join(dir, "other");
  await installDefaultConflist(other, { cniVersion: "0.4.0" });
  await writeFile(join(other, "00-admin.conflist"), "{}");
  assert.equal(await installDefaultConflist(other), null);
});
