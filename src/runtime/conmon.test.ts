import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { mkdtemp, open, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { promisify } from "node:util";
import { errnoCode, isBerthError } from "../common/errors.js";
import { parseCriLog } from "../test/harness/cri.js";
import { SUITE_TIMEOUT_MS } from "../test/harness/timeouts.js";
import {
  type CreateContainerOptions,
  conmonAlive,
  createArgs,
  createContainer,
  parseSyncMessage,
  readExitFile,
  writeControl,
} from "./conmon.js";
import { OciRuntimeError, RuncCli } from "./runc.js";
import { cleanup, makeBundle, RUNC, skipReason, uniqueId, waitFor } from "./testutil.js";

describe("conmon protocol helpers", () => {
  test("sync messages: pid, exit_code, data, message", () => {
    assert.deepEqual(parseSyncMessage('{"pid": 123}'), { value: 123 });
    assert.deepEqual(parseSyncMessage('{"exit_code": 7}'), { value: 7 });
    assert.deepEqual(parseSyncMessage('{"data": -1, "message": "boom"}'), { value: -1, message: "boom" });
    assert.equal(parseSyncMessage("garbage"), undefined);
  });

  test("CRI log: full and partial lines per stream", () => {
    const log = [
      "2024-01-01T00:00:00.000000001+00:00 stdout P ab",
      "2024-01-01T00:00:00.000000002+00:00 stdout F c",
      "2024-01-01T00:00:00.000000003+00:00 stderr F err",
      "2024-01-01T00:00:00.000000004+00:00 stdout F ",
      "",
    ].join("\n");
    const { stdout, stderr } = parseCriLog(log);
    assert.equal(stdout.toString(), "abc\n\n");
    assert.equal(stderr.toString(), "err\n");
  });

  const baseOptions = (): CreateContainerOptions => ({
    id: "c1",
    name: "n1",
    bundle: "/b",
    runtime: { path: "/usr/sbin/runc", root: "/run/r" },
    logPath: "/l/c1.log",
    exitDir: "/x",
    persistDir: "/p",
    socketDir: "/s",
    pidFile: "/p/pidfile",
    conmonPidFile: "/p/conmon.pid",
  });

  test("create args", () => {
    const o: CreateContainerOptions = {
      ...baseOptions(),
      stdin: true,
      stdinOnce: false,
      logSizeMax: 1024,
    };
    const a = createArgs(o).join(" ");
    for (const want of [
      "-b /b",
      "-c c1",
      "-u c1",
      "-n n1",
      "-r /usr/sbin/runc",
      "--runtime-arg --root=/run/r",
      "-p /p/pidfile",
      "-P /p/conmon.pid",
      "-l k8s-file:/l/c1.log",
      "--exit-dir /x",
      "--persist-dir /p",
      "--socket-dir-path /s",
      "--log-size-max 1024",
      "-i --leave-stdin-open",
    ]) {
      assert.ok(a.includes(want), `${want} in ${a}`);
    }
    assert.ok(!a.includes(" -t"));
  });

  test("restore args: conmon --restore with the runtime's --criu", () => {
    const base = baseOptions();
    assert.ok(!createArgs(base).includes("--restore"));
    const a = createArgs({ ...base, restorePath: "/b/checkpoint", criuPath: "/opt/criu" }).join(" ");
    assert.ok(a.includes("--restore /b/checkpoint"), a);
    assert.ok(a.includes("--runtime-arg --criu=/opt/criu"), a);
  });

  test("readExitFile: absent → undefined", async () => {
    assert.equal(await readExitFile(tmpdir(), uniqueId("no-such-exit")), undefined);
  });
});

describe("writeControl", () => {
  test("one message per read of conmon's FIFO: the next waits until the one before was read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-ctl-"));
    const fifo = join(dir, "ctl");
    await promisify(execFile)("mkfifo", ["-m", "600", fifo]);
    // conmon's side: a non-blocking reader that reads whatever is there
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const readOnce = async (): Promise<string> => {
      for (;;) {
        const { bytesRead, buffer } = await reader
          .read(Buffer.alloc(200), 0, 200, null)
          .catch((e: unknown) => {
            if (errnoCode(e) !== "EAGAIN") throw e;
            return { bytesRead: 0, buffer: Buffer.alloc(0) };
          });
        if (bytesRead > 0) return buffer.subarray(0, bytesRead).toString();
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    try {
      const writes = Promise.all([writeControl(fifo, "1 34 102\n"), writeControl(fifo, "1 33 101\n")]);
      await new Promise((r) => setTimeout(r, 50)); // time enough for both, if nothing held one back
      assert.equal(await readOnce(), "1 34 102\n");
      assert.equal(await readOnce(), "1 33 101\n");
      await writes;
    } finally {
      await reader.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("createContainer with real conmon + runc", { skip: skipReason(), timeout: SUITE_TIMEOUT_MS }, () => {
  const ids: string[] = [];
  const dirs: string[] = [];
  const pidFiles: string[] = [];
  let runtimeRoot = "";

  const setup = async (args: string[]) => {
    const id = uniqueId("berth-cm");
    const dir = await mkdtemp(join(tmpdir(), `${id}-`));
    if (!runtimeRoot) {
      runtimeRoot = join(dir, "runc-root");
    }
    ids.push(id);
    dirs.push(dir);
    const bundle = await makeBundle(dir, id, args);
    const o: CreateContainerOptions = {
      id,
      name: id,
      bundle,
      runtime: { path: RUNC, root: runtimeRoot },
      logPath: join(dir, "logs", "ctr.log"),
      exitDir: join(dir, "exits"),
      persistDir: join(dir, "persist"),
      socketDir: join(dir, "attach"),
      pidFile: join(dir, "persist", "pidfile"),
      conmonPidFile: join(dir, "persist", "conmon.pid"),
    };
    pidFiles.push(o.conmonPidFile);
    return { id, dir, o, runc: new RuncCli(o.runtime) };
  };

  after(async () => {
    await cleanup({ runtimeRoot, ids, conmonPidFiles: pidFiles, dirs });
  });

  test("stdout/stderr land in the CRI log; exit code in the exit file", async () => {
    const { id, o, runc } = await setup(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    const { pid, conmonPid } = await createContainer(o);
    assert.ok(pid > 0 && conmonPid > 0);
    assert.equal((await runc.state(id))?.status, "created");
    await runc.start(id);
    const exit = await waitFor(() => readExitFile(o.exitDir, id), 10_000);
    assert.ok(exit, "exit file written");
    assert.equal(exit.exitCode, 3);
    assert.ok(Math.abs(exit.finishedAt.getTime() - Date.now()) < 60_000);
    const log = await readFile(o.logPath, "utf8");
    const ts = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d)`;
    assert.match(log, new RegExp(`^${ts} stdout F out$`, "m"));
    assert.match(log, new RegExp(`^${ts} stderr F err$`, "m"));
    assert.equal(
      await waitFor(async () => ((await conmonAlive(o.conmonPidFile)) ? undefined : true), 10_000),
      true,
    );
    await runc.delete(id, { force: true });
  });

  test("a partial line is logged with the P tag", async () => {
    const { id, o, runc } = await setup(["printf", "abc"]);
    await createContainer(o);
    await runc.start(id);
    const exit = await waitFor(() => readExitFile(o.exitDir, id), 10_000);
    assert.equal(exit?.exitCode, 0);
    const log = await readFile(o.logPath, "utf8");
    assert.match(log, /^\S+ stdout P abc$/m);
    assert.equal(parseCriLog(log).stdout.toString(), "abc");
    await runc.delete(id, { force: true });
  });

  test("a missing executable rejects at create, naming it; nothing is left running", async () => {
    const { id, o, runc } = await setup(["berth-no-such-binary", "arg"]);
    await assert.rejects(createContainer(o), (e: unknown) => {
      assert.ok(e instanceof OciRuntimeError, String(e));
      assert.equal(e.code, "InvalidArgument");
      assert.match(e.message, /berth-no-such-binary/);
      assert.match(e.message, /executable file not found/);
      return true;
    });
    assert.equal(await runc.state(id), undefined);
    assert.equal(await conmonAlive(o.conmonPidFile), false);
    // No process of ours is left with the container id on its command line.
    const leftovers: string[] = [];
    for (const p of await readdir("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      const cmd = await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "");
      if (cmd.includes(id)) leftovers.push(`${p}: ${cmd.replaceAll("\0", " ")}`);
    }
    assert.deepEqual(leftovers, []);
  });

  test("conmon that cannot start is an error, not a hang", async () => {
    const { o } = await setup(["true"]);
    await assert.rejects(createContainer({ ...o, conmonPath: "/nonexistent/conmon" }), (e: unknown) =>
      isBerthError(e, "FailedPrecondition"),
    );
  });
});
