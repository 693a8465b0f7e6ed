import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { expandGlob } from "./glob.js";
import { hostRootFrom, hostView, onHost, overlayUpperDir, upperDirOfPid } from "./host-root.js";

describe("host root", () => {
  it("comes from the flag, else the environment; must be absolute", () => {
    assert.equal(hostRootFrom(undefined, {}), "");
    assert.equal(hostRootFrom(undefined, { BERTH_COLLECTOR_HOST_ROOT: "/logtail_host/" }), "/logtail_host");
    assert.equal(hostRootFrom("/h", { BERTH_COLLECTOR_HOST_ROOT: "/logtail_host" }), "/h");
    assert.equal(hostRootFrom("/", {}), "");
    assert.throws(() => hostRootFrom("logtail_host", {}), /absolute path/);
  });

  it("opens host paths under it and gives back the host's view", () => {
    assert.equal(onHost("", "/var/log/pods/a/0.log"), "/var/log/pods/a/0.log");
    assert.equal(onHost("/logtail_host", "/var/log/pods/a/0.log"), "/logtail_host/var/log/pods/a/0.log");
    assert.equal(hostView("/logtail_host", "/logtail_host/var/log/x"), "/var/log/x");
    assert.equal(hostView("/logtail_host", "/elsewhere/x"), "/elsewhere/x");
    assert.equal(hostView("", "/var/log/x"), "/var/log/x");
  });

  it("finds the writable layer of the overlay on top at / in a mountinfo", () => {
    const info = [
      "1023 987 0:77 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/var/lib/c/snap\\04012/fs,workdir=/var/lib/c/w",
      "1024 1023 0:80 / /proc rw,nosuid - proc proc rw",
    ].join("\n");
    assert.equal(overlayUpperDir(info), "/var/lib/c/snap 12/fs");
    const stacked = `${info}\n1030 1023 0:90 / / rw - tmpfs tmpfs rw\n`;
    assert.equal(overlayUpperDir(stacked), undefined, "the last mount at / is on top");
    assert.equal(overlayUpperDir("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw"), undefined);
  });

  it("reads /proc/<pid>/mountinfo under the host root", async () => {
    const root = await mkdtemp(join(tmpdir(), "berth-host-root-"));
    try {
      await mkdir(join(root, "proc", "42"), { recursive: true });
      await writeFile(
        join(root, "proc", "42", "mountinfo"),
        "5 1 0:7 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/up,workdir=/w\n",
      );
      assert.equal(await upperDirOfPid(root, 42), "/up");
      assert.equal(await upperDirOfPid(root, 43), undefined);
      assert.equal(await upperDirOfPid(root, 0), undefined);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("expands globs under it, taking its own name literally", async () => {
    const root = await mkdtemp(join(tmpdir(), "berth-host-root-[x]-"));
    try {
      await mkdir(join(root, "var", "log", "app"), { recursive: true });
      await writeFile(join(root, "var", "log", "app", "a.log"), "");
      await writeFile(join(root, "var", "log", "app", "b.txt"), "");
      assert.deepEqual(await expandGlob("/var/log/*/*.log", 0, root), [join(root, "var/log/app/a.log")]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
