import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isBerthError } from "../common/errors.js";
import { processesWithArgs } from "../test/harness/processes.js";
import { SUITE_TIMEOUT_MS } from "../test/harness/timeouts.js";
import { readPidFile } from "./conmon.js";
import { RuntimeHandlers } from "./handlers.js";
import { ConmonOciRuntime, observeExit } from "./oci-runtime.js";
import { CONMON, cleanup, makeBundle, RUNC, skipReason, uniqueId } from "./testutil.js";

describe("RuntimeHandlers", () => {
  test("default handler and named handlers with their own binary/root", () => {
    const h = new RuntimeHandlers({
      stateDir: "/tmp/x",
      handlers: {
        runc: { runtimePath: "/usr/sbin/runc", runtimeRoot: "/run/runc" },
        other: { runtimePath: "/usr/bin/crun", runtimeRoot: "/run/crun", runtimeType: "oci" },
      },
    });
    assert.equal(h.get().handler, "runc");
    assert.equal(h.get("").handler, "runc");
    const other = h.get("other") as ConmonOciRuntime;
    assert.deepEqual(other.runc.binary, { path: "/usr/bin/crun", root: "/run/crun" });
  });

  test("unknown handler → NotFound naming it", () => {
    const h = new RuntimeHandlers({ stateDir: "/tmp/x" });
    assert.throws(
      () => h.get("kata"),
      (e: unknown) => isBerthError(e, "NotFound") && /"kata"/.test(e.message) && /runc/.test(e.message),
    );
  });

  test("bad config → InvalidArgument", () => {
    assert.throws(
      () =>
        new RuntimeHandlers({
          stateDir: "/x",
          handlers: { vm: { runtimePath: "/a", runtimeRoot: "/b", runtimeType: "vm" } },
          defaultHandler: "vm",
        }),
      (e: unknown) => isBerthError(e, "InvalidArgument") && /vm/.test(e.message),
    );
    assert.throws(
      () => new RuntimeHandlers({ stateDir: "/x", defaultHandler: "crun" }),
      (e: unknown) => isBerthError(e, "InvalidArgument") && /crun/.test(e.message),
    );
  });
});

describe("observeExit", () => {
  const finishedAt = new Date(0);
  const exited = { exitCode: 0, finishedAt };

  test("the exit file when there is one", async () => {
    const rt = { exitStatus: async () => exited, monitorAlive: async () => false };
    assert.deepEqual(await observeExit(rt, "c"), exited);
  });

  test("running while the monitor lives without an exit file", async () => {
    const rt = { exitStatus: async () => undefined, monitorAlive: async () => true };
    assert.equal(await observeExit(rt, "c"), "running");
  });

  test("an exit between the first read and the liveness check is read, not lost", async () => {
    // the first read misses the file; conmon writes it and exits before monitorAlive looks
    let reads = 0;
    const rt = {
      exitStatus: async () => (reads++ === 0 ? undefined : exited),
      monitorAlive: async () => false,
    };
    assert.deepEqual(await observeExit(rt, "c"), exited);
  });

  test("lost when the monitor is gone without an exit file", async () => {
    const rt = { exitStatus: async () => undefined, monitorAlive: async () => false };
    assert.equal(await observeExit(rt, "c"), "lost");
  });
});

async function procStat(pid: number): Promise<{ ppid: number; sid: number }> {
  const st = await readFile(`/proc/${pid}/stat`, "utf8");
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), sid: Number(f[3]) };
}

describe("ConmonOciRuntime with real conmon + runc", {
  skip: skipReason(),
  timeout: SUITE_TIMEOUT_MS,
}, () => {
  let dir = "";
  let rt: ConmonOciRuntime;
  const ids: string[] = [];
  const id = uniqueId("berth-rt");

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-rt-"));
    rt = new ConmonOciRuntime({
      handler: "runc",
      runtimePath: RUNC,
      runtimeRoot: join(dir, "runc-root"),
      stateDir: join(dir, "state"),
      conmonPath: CONMON,
    });
    ids.push(id);
  });

  after(async () => {
    await cleanup({
      runtimeRoot: join(dir, "runc-root"),
      ids,
      conmonPidFiles: ids.map((i) => join(dir, "state", "containers", i, "conmon.pid")),
      dirs: [dir],
    });
  });

  test("long-running container: running, and conmon is not our child", async () => {
    const bundle = await makeBundle(join(dir, id), id, ["sleep", "1000"]);
    const created = await rt.create({ id, bundle, logPath: join(dir, "logs", `${id}.log`) });
    await rt.start(id);
    const st = await rt.state(id);
    assert.equal(st?.status, "running");
    assert.equal(st?.pid, created.pid);
    assert.equal(await rt.exitStatus(id), undefined);

    const conmonPid = await readPidFile(join(dir, "state", "containers", id, "conmon.pid"));
    assert.ok(conmonPid);
    assert.equal(conmonPid, created.conmonPid);
    const cm = await procStat(conmonPid);
    const me = await procStat(process.pid);
    assert.notEqual(cm.ppid, process.pid, "conmon must not be berthd's child");
    assert.equal(cm.ppid, 1, "conmon is re-parented to init");
    assert.notEqual(cm.sid, me.sid, "conmon is in its own session");
    // The container's init is conmon's child.
    assert.equal((await procStat(created.pid)).ppid, conmonPid);
    assert.equal(await rt.monitorAlive(id), true);
  });

  test("execSync: output, exit codes", async () => {
    const proc = (args: string[]) => ({ args, env: ["PATH=/bin"], cwd: "/", user: { uid: 0, gid: 0 } });
    const hi = await rt.execSync(id, proc(["echo", "hi"]), 10);
    assert.equal(hi.stdout.toString(), "hi\n");
    assert.equal(hi.stderr.toString(), "");
    assert.equal(hi.exitCode, 0);
    assert.equal(hi.timedOut, false);

    const seven = await rt.execSync(id, proc(["sh", "-c", "echo oops >&2; exit 7"]), 10);
    assert.equal(seven.exitCode, 7);
    assert.equal(seven.stderr.toString(), "oops\n");

    const missing = rt.execSync(id, proc(["berth-missing-tool"]), 10);
    await assert.rejects(missing, (e: unknown) => isBerthError(e) && /berth-missing-tool/.test(e.message));
  });

  test("execSync timeout: a timed-out result and the process is gone", async () => {
    const t0 = Date.now();
    const r = await rt.execSync(id, { args: ["sleep", "4242"], env: ["PATH=/bin"], cwd: "/" }, 1);
    const took = Date.now() - t0;
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, -1);
    assert.match(r.stderr.toString(), /timed out/);
    assert.ok(took >= 900, `took ${took} ms`);
    // The kill is delivered asynchronously: give a loaded machine time to reap it.
    let left = await processesWithArgs(["sleep", "4242"]);
    for (let i = 0; i < 100 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await processesWithArgs(["sleep", "4242"]);
    }
    assert.deepEqual(left, []);
    assert.equal((await rt.state(id))?.status, "running", "the container itself is untouched");
  });

  test("stop: SIGTERM ignored by pid 1 → SIGKILL after 1 s → 137", async () => {
    const t0 = Date.now();
    const exit = await rt.stop(id, "SIGTERM", 1);
    const took = Date.now() - t0;
    assert.equal(exit?.exitCode, 137);
    assert.ok(took >= 1000, `took ${took} ms`);
    assert.equal((await rt.state(id))?.status, "stopped");
    assert.deepEqual(await rt.exitStatus(id), exit);
    // Stopping again is a no-op returning the same status.
    assert.deepEqual(await rt.stop(id, "SIGTERM", 1), exit);
  });

  test("delete twice is fine; afterwards the runtime does not know it", async () => {
    await rt.delete(id);
    await rt.delete(id);
    assert.equal(await rt.state(id), undefined);
    assert.equal(await rt.exitStatus(id), undefined);
    assert.equal(await rt.monitorAlive(id), false);
  });

  test("a container that exits by itself on SIGTERM stops before the timeout", async () => {
    const id2 = uniqueId("berth-rt2");
    ids.push(id2);
    // A shell with a TERM trap: exits 143-ish promptly instead of waiting for SIGKILL.
    const bundle = await makeBundle(join(dir, id2), id2, [
      "sh",
      "-c",
      "trap 'exit 42' TERM; while :; do sleep 0.1; done",
    ]);
    await rt.create({ id: id2, bundle, logPath: join(dir, "logs", `${id2}.log`) });
    await rt.start(id2);
    await new Promise((r) => setTimeout(r, 300)); // let the trap be installed
    const t0 = Date.now();
    const exit = await rt.stop(id2, "TERM", 10);
    assert.equal(exit?.exitCode, 42);
    assert.ok(Date.now() - t0 < 5000);
    await rt.delete(id2);
  });
});

describe("containers outlive a SIGKILLed berthd", { skip: skipReason(), timeout: SUITE_TIMEOUT_MS }, () => {
  let dir = "";
  const id = uniqueId("berth-crash");

  after(async () => {
    if (!dir) return;
    await cleanup({
      runtimeRoot: join(dir, "runc-root"),
      ids: [id],
      conmonPidFiles: [join(dir, "state", "containers", id, "conmon.pid")],
      dirs: [dir],
    });
  });

  test("a separate process creates+starts, is SIGKILLed; conmon and the container live on", async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-crash-"));
    const bundle = await makeBundle(join(dir, id), id, ["sleep", "1000"]);
    const opts = {
      handler: "runc",
      runtimePath: RUNC,
      runtimeRoot: join(dir, "runc-root"),
      stateDir: join(dir, "state"),
      conmonPath: CONMON,
    };
    const moduleUrl = new URL("./oci-runtime.js", import.meta.url).href;
    // The "berthd": creates and starts, reports, then waits to be killed.
    const script = `
      const { ConmonOciRuntime } = await import(${JSON.stringify(moduleUrl)});
      const rt = new ConmonOciRuntime(${JSON.stringify(opts)});
      const c = await rt.create({ id: ${JSON.stringify(id)}, bundle: ${JSON.stringify(bundle)}, logPath: ${JSON.stringify(join(dir, "ctr.log"))} });
      await rt.start(${JSON.stringify(id)});
      process.stdout.write(JSON.stringify(c) + "\\n");
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = "";
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        if (buf.includes("\n")) resolve(buf.trim());
      });
      child.on("exit", (code) => reject(new Error(`berthd stand-in exited early (${code})`)));
    });
    const created = JSON.parse(line) as { pid: number; conmonPid: number };
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGKILL");
    await exited;
    await new Promise((r) => setTimeout(r, 300));

    const rt = new ConmonOciRuntime(opts);
    assert.equal(await rt.monitorAlive(id), true, "conmon survived");
    assert.equal((await rt.state(id))?.status, "running");
    assert.equal((await procStat(created.pid)).ppid, created.conmonPid);
    // The surviving conmon still records the exit after berthd is gone.
    const exit = await rt.stop(id, "KILL", 0);
    assert.equal(exit?.exitCode, 137);
    await rt.delete(id);
  });
});
