import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hostsFile, resolvConf } from "./files.js";

describe("pod files", () => {
  it("writes resolv.conf from the CRI DNSConfig", async () => {
    const text = await resolvConf({
      servers: ["10.96.0.10"],
      searches: ["ns.svc.cluster.local", "svc.cluster.local"],
      options: ["ndots:5"],
    });
    assert.equal(
      text,
      "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
  });
  it("falls back to the host's resolv.conf", async () => {
    assert.equal(await resolvConf(undefined, "/nonexistent"), "");
  });
  it("rejects a DNS server that is not an address", async () => {
    await assert.rejects(
      resolvConf({ servers: ["1.2.3.4\nsearch evil"], searches: [], options: [] }),
      /not an IP/,
    );
  });
  it("lists the pod's own addresses in /etc/hosts", () => {
    assert.match(hostsFile("web-1", ["10.88.0.5"]), /10\.88\.0\.5\tweb-1\n$/);
  });
});
