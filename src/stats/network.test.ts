import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readlink } from "node:fs/promises";
import { describe, it } from "node:test";
import { needsRoot } from "../test/harness/skip.js";
import { networkUsage, parseNetDev, readNetDevOfNetns, readNetDevOfPid, readPodNetDev } from "./network.js";

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1234      10    0    0    0     0          0         0     1234      10    0    0    0     0       0          0
  eth0: 559242876   14633    3    1    0     0          0         0  1175535   10003    5    0    0     0       0          0
 net1:18446744073709551615 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
garbage line
  bad0: 1 2 3
`;

describe("network counters", () => {
  it("parses /proc/net/dev", () => {
    assert.deepEqual(parseNetDev(NET_DEV), [
      { name: "lo", rxBytes: 1234n, rxErrors: 0n, txBytes: 1234n, txErrors: 0n },
      { name: "eth0", rxBytes: 559242876n, rxErrors: 3n, txBytes: 1175535n, txErrors: 5n },
      { name: "net1", rxBytes: 18446744073709551615n, rxErrors: 2n, txBytes: 8n, txErrors: 10n },
    ]);
    assert.deepEqual(parseNetDev(""), []);
  });

  it("builds NetworkUsage without lo, eth0 as default, else the first interface", () => {
    const all = parseNetDev(NET_DEV);
    const u = networkUsage(all, 42n);
    assert.equal(u.timestamp, 42n);
    assert.deepEqual(
      u.interfaces.map((i) => i.name),
      ["eth0", "net1"],
    );
    assert.equal(u.defaultInterface?.name, "eth0");
    assert.deepEqual(u.defaultInterface?.rxBytes, { value: 559242876n });
    assert.deepEqual(u.defaultInterface?.txErrors, { value: 5n });
    const noEth0 = networkUsage(
      all.filter((i) => i.name !== "eth0"),
      1n,
    );
    assert.equal(noEth0.defaultInterface?.name, "net1");
    const onlyLo = networkUsage(
      all.filter((i) => i.name === "lo"),
      1n,
    );
    assert.deepEqual(onlyLo.interfaces, []);
    assert.equal(onlyLo.defaultInterface, undefined);
  });

  it("reads a live process's netns and nothing for pid 0 or a gone pid", async () => {
    const mine = await readNetDevOfPid(process.pid);
    assert.ok(mine?.some((i) => i.name === "lo"));
    assert.equal(await readNetDevOfPid(0), undefined);
    assert.equal(await readNetDevOfPid(-1), undefined);
    assert.equal(await readNetDevOfPid(2 ** 22 + 1), undefined); // above pid_max
    assert.equal(await readPodNetDev([0, 2 ** 22 + 1]), undefined);
    assert.ok((await readPodNetDev([0, process.pid]))?.some((i) => i.name === "lo"));
  });

  it("reads a netns by path when no pod process is alive", {
    skip: needsRoot("unshare"),
  }, async () => {
    // A fresh netns holds only lo.
    const child = spawn("unshare", ["--net", "sleep", "30"], { stdio: "ignore" });
    try {
      const pid = child.pid ?? 0;
      // Wait until unshare has entered its new netns (its ns link differs from ours).
      const own = await readlink("/proc/self/ns/net");
      for (let i = 0; i < 200; i++) {
        const ns = await readlink(`/proc/${pid}/ns/net`).catch(() => own);
        if (ns !== own) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      // unshare execs sleep in the new netns, so the child pid itself is inside it.
      const viaPath = await readNetDevOfNetns(`/proc/${pid}/ns/net`);
      assert.deepEqual(
        viaPath?.map((i) => i.name),
        ["lo"],
      );
      assert.deepEqual(
        (await readNetDevOfPid(pid))?.map((i) => i.name),
        ["lo"],
      );
      assert.deepEqual((await readPodNetDev([0], `/proc/${pid}/ns/net`))?.length, 1);
      assert.equal(await readNetDevOfNetns("/nonexistent/netns"), undefined);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
