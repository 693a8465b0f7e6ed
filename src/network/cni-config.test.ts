import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { isBerthError } from "../common/errors.js";
import { CniClient } from "./cni.js";
import { compareVersions, listConfFiles, loadNetworkConfig, parseNetworkConfig } from "./cni-config.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-cniconf-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const conflist = {
  cniVersion: "1.0.0",
  name: "n1",
  plugins: [
    { type: "bridge", bridge: "b0" },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};

test("a .conflist parses; a .conf single plugin is wrapped into a list", () => {
  const l = parseNetworkConfig(JSON.stringify(conflist), "/x/10-n1.conflist");
  assert.equal(l.name, "n1");
  assert.equal(l.plugins.length, 2);
  assert.equal(l.disableCheck, false);
  const c = parseNetworkConfig(
    JSON.stringify({ cniVersion: "0.4.0", name: "single", type: "bridge" }),
    "/x/a.conf",
  );
  assert.equal(c.name, "single");
  assert.equal(c.cniVersion, "0.4.0");
  assert.deepEqual(c.plugins, [{ cniVersion: "0.4.0", name: "single", type: "bridge" }]);
});

test("invalid configs: errors name the file and the problem", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["{ not json", "/c/bad.conflist", /invalid CNI network config \/c\/bad\.conflist: not valid JSON/],
    ["[]", "/c/a.conf", /top level must be a JSON object/],
    [JSON.stringify({ cniVersion: "1.0.0", plugins: [] }), "/c/a.conflist", /missing "name"/],
    [JSON.stringify({ ...conflist, name: "a/b" }), "/c/a.conflist", /invalid network name/],
    [
      JSON.stringify({ ...conflist, cniVersion: "9.9.9" }),
      "/c/a.conflist",
      /unsupported cniVersion "9\.9\.9"/,
    ],
    [JSON.stringify({ ...conflist, cniVersion: 1 }), "/c/a.conflist", /"cniVersion" must be/],
    [JSON.stringify({ ...conflist, plugins: [] }), "/c/a.conflist", /"plugins" is empty/],
    [
      JSON.stringify({ ...conflist, plugins: [{ bridge: "x" }] }),
      "/c/a.conflist",
      /plugins\[0\] has no "type"/,
    ],
    [JSON.stringify({ ...conflist, plugins: [{ type: "../../bin/sh" }] }), "/c/a.conflist", /invalid "type"/],
    [
      JSON.stringify({ cniVersion: "1.0.0", name: "x", type: "bridge" }),
      "/c/a.conflist",
      /needs a "plugins" array/,
    ],
    [
      JSON.stringify({ ...conflist, plugins: [{ type: "portmap", capabilities: { portMappings: "yes" } }] }),
      "/c/a.conflist",
      /"capabilities" must map names to booleans/,
    ],
  ];
  for (const [text, source, re] of cases) {
    assert.throws(
      () => parseNetworkConfig(text, source),
      (e) => isBerthError(e, "FailedPrecondition") && re.test(e.message) && e.message.includes(source),
      `${source}: ${text}`,
    );
  }
});

test("the first config file by name wins; other extensions and dotfiles are ignored", async () => {
  const d = join(dir, "order");
  await mkdir(d);
  await writeFile(join(d, "20-b.conflist"), JSON.stringify({ ...conflist, name: "b" }));
  await writeFile(join(d, "10-a.conf"), JSON.stringify({ cniVersion: "1.0.0", name: "a", type: "bridge" }));
  await writeFile(join(d, "05-ignored.txt"), "x");
  await writeFile(join(d, ".01-hidden.conflist"), "x");
  assert.deepEqual(await listConfFiles(d), [join(d, "10-a.conf"), join(d, "20-b.conflist")]);
  assert.equal((await loadNetworkConfig([join(dir, "missing"), d]))?.name, "a");
  assert.equal(await loadNetworkConfig([join(dir, "missing")]), null);
});

test("networkStatus: not ready without config, with a bad first file, or a missing plugin binary", async () => {
  const empty = join(dir, "empty");
  await mkdir(empty);
  const s1 = await new CniClient({ confDirs: [empty], binDirs: [] }).networkStatus();
  assert.deepEqual(s1, {
    ready: false,
    reason: "NetworkPluginNotReady",
    message: `no network config found in ${empty}`,
  });

  const bad = join(dir, "bad");
  await mkdir(bad);
  await writeFile(join(bad, "10-bad.conflist"), "{ nope");
  await writeFile(join(bad, "20-good.conflist"), JSON.stringify(conflist));
  const s2 = await new CniClient({ confDirs: [bad], binDirs: [] }).networkStatus();
  assert.equal(s2.ready, false);
  assert.match(s2.message ?? "", /10-bad\.conflist: not valid JSON/);

  const good = join(dir, "good");
  const bin = join(dir, "bin");
  await mkdir(good);
  await mkdir(bin);
  await writeFile(join(good, "10-n1.conflist"), JSON.stringify(conflist));
  await writeFile(join(bin, "bridge"), "#!/bin/sh\n", { mode: 0o755 });
  const client = new CniClient({ confDirs: [good], binDirs: [bin] });
  const s3 = await client.networkStatus();
  assert.equal(s3.ready, false);
  assert.match(s3.message ?? "", /network n1 .*10-n1\.conflist.*CNI plugin "portmap" not found in .*\/bin/);
  await assert.rejects(
    client.loadNetwork(),
    (e) => isBerthError(e, "FailedPrecondition") && /"portmap"/.test(e.message),
  );

  await writeFile(join(bin, "portmap"), "#!/bin/sh\n", { mode: 0o755 });
  assert.deepEqual(await client.networkStatus(), {
    ready: true,
    networkName: "n1",
    source: join(good, "10-n1.conflist"),
  });
});

test("compareVersions orders numerically", () => {
  assert.equal(compareVersions("0.10.0", "0.4.0"), 1);
  assert.equal(compareVersions("1.0.0", "1.0.0"), 0);
  assert.equal(compareVersions("0.3.1", "0.4.0"), -1);
});
