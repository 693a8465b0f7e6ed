/**
 * A berthd killed in the middle of RunPodSandbox (here: while a CNI plugin hangs) restarts
 * into a consistent state: the half-made pod is gone, with its namespaces and mounts.
 */
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BerthdProcess } from "../tools/berthd-process.js";
import { type RuntimeClient, runtimeClient } from "./harness/cri.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

describe("crash recovery", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let rt: RuntimeClient;
  let dir: string;
  let marker: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-recovery-"));
    marker = join(dir, "bin", "hang");
    await mkdir(join(dir, "bin"));
    await mkdir(join(dir, "net.d"));
    // A CNI plugin that never answers ADD (and answers DEL at once).
    await writeFile(marker, '#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then exec sleep 300; fi\necho "{}"\n');
    await chmod(marker, 0o755);
    await writeFile(
      join(dir, "net.d", "10-hang.conflist"),
      JSON.stringify({ cniVersion: "1.0.0", name: "hang", plugins: [{ type: "hang" }] }),
    );
    berthd = await BerthdProcess.start({
      toml: `[cni]\nconf_dirs = ["${dir}/net.d"]\nbin_dirs = ["${dir}/bin"]\n`,
    });
    rt = runtimeClient(berthd.socket);
  });

  after(async () => {
    rt?.client.close();
    await berthd?.stop();
    // The orphaned plugin, if any.
    for (const pid of await readdir("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (cmd.includes("sleep\u0000300")) process.kill(Number(pid), "SIGKILL");
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("removes a pod whose CNI ADD was cut off by a crash", async () => {
    const pending = rt
      .call("runPodSandbox", {
        config: { metadata: { name: "cut", namespace: "default", uid: "cut-uid", attempt: 0 } },
      })
      .catch((err: unknown) => err);
    // Wait until the pod is recorded and its namespaces are pinned: CNI ADD is now hanging.
    const nsDir = join(berthd.dir, "state", "ns", "net");
    for (let i = 0; i < 300; i++) {
      if ((await readdir(nsDir).catch(() => [])).length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await readdir(nsDir)).length, 1, "the pod's network namespace was pinned");
    await berthd.kill("SIGKILL");
    assert.ok((await pending) instanceof Error);

    await berthd.launch();
    rt.client.close();
    rt = runtimeClient(berthd.socket);
    assert.deepEqual((await rt.call<{ items: unknown[] }>("listPodSandbox", {})).items, []);
    assert.deepEqual(await readdir(join(berthd.root, "pods")), []);
    assert.deepEqual(await readdir(nsDir), []);
    const mounts = await readFile("/proc/self/mountinfo", "utf8");
    assert.ok(!mounts.includes(`${nsDir}/`), "no pinned namespace left mounted");
  });
});
