import assert from "node:assert/strict";
import { test } from "node:test";
import { isBerthError } from "../common/errors.js";
import { parseCniResult, podIPs } from "./cni-result.js";

test("1.0.0 result: pod IPs are the sandbox eth0 addresses, IPv4 first", () => {
  const raw = {
    cniVersion: "1.0.0",
    interfaces: [
      { name: "cni0", mac: "aa:aa:aa:aa:aa:aa" },
      { name: "vethX", mac: "bb:bb:bb:bb:bb:bb" },
      { name: "eth0", mac: "cc:cc:cc:cc:cc:cc", sandbox: "/run/berth/ns/net/p1" },
    ],
    ips: [
      { address: "fd00:10::5/64", gateway: "fd00:10::1", interface: 2 },
      { address: "10.88.0.5/16", gateway: "10.88.0.1", interface: 2 },
      { address: "10.88.0.1/16", interface: 0 },
    ],
    routes: [{ dst: "0.0.0.0/0" }],
    dns: {},
  };
  const r = parseCniResult(raw, "test");
  assert.equal(r.cniVersion, "1.0.0");
  assert.equal(r.interfaces.length, 3);
  assert.equal(r.interfaces[2]?.sandbox, "/run/berth/ns/net/p1");
  assert.deepEqual(r.ips[1], { address: "10.88.0.5/16", gateway: "10.88.0.1", interface: 2 });
  assert.deepEqual(podIPs(r), ["10.88.0.5", "fd00:10::5"]);
  assert.deepEqual(podIPs(r, "net1"), []);
  assert.equal(r.raw, raw);
});

test("0.4.0 result without interface indexes, and legacy 0.2.0 ip4/ip6", () => {
  assert.deepEqual(
    podIPs(parseCniResult({ cniVersion: "0.4.0", ips: [{ version: "4", address: "10.1.2.3/24" }] }, "t")),
    ["10.1.2.3"],
  );
  const legacy = parseCniResult(
    { cniVersion: "0.2.0", ip4: { ip: "10.9.0.2/16", gateway: "10.9.0.1" } },
    "t",
  );
  assert.deepEqual(podIPs(legacy), ["10.9.0.2"]);
});

test("malformed results give clear Internal errors", () => {
  const bad = [
    [null, /not a JSON object/],
    [{ ips: {} }, /"ips" is not an array/],
    [{ ips: [{ address: "10.0.0.300/24" }] }, /invalid IP address/],
    [{ ips: [{ address: "10.0.0.3" }] }, /invalid IP address/],
    [{ interfaces: [{ mac: "x" }] }, /interface without a name/],
  ] as const;
  for (const [v, re] of bad) {
    assert.throws(
      () => parseCniResult(v, "plugin bridge ADD"),
      (e) => isBerthError(e, "Internal") && re.test(e.message) && e.message.startsWith("plugin bridge ADD"),
    );
  }
});
