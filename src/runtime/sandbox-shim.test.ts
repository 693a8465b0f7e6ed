/**
 * The sandbox wrapper conmon runs, against a fake runsc (a shell script logging its arguments):
 * commands other than create pass through without Berth's flag; create leaves a waiter in the pid
 * file, the sandbox's pid beside it; the waiter runs start with the global flags when released,
 * records its status, and exits with the exit status `runsc wait` printed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  installShim,
  SANDBOX_PID_FILE,
  SHIM_RUNTIME_FLAG,
  START_FIFO,
  START_STATUS,
} from "./sandbox-shim.js";

const FAKE_RUNSC = `#!/bin/sh
echo "$*" >>"$FAKE_LOG"
for a; do [ "$prev" = --pid-file ] && echo 4242 >"$a"; prev=$a; done
case " $* " in *" wait "*) echo '{"id":"c1","exitStatus":42}' ;; esac
exit 0
`;

function runShim(shim: string, args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(shim, args, { env: { ...process.env, ...env }, stdio: "ignore" });
    child.on("exit", (code) => resolve(code));
  });
}

describe("sandbox shim", () => {
  let dir: string;
  let shim: string;
  let fake: string;
  let log: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-shim-"));
    shim = await installShim(join(dir, "state"));
    fake = join(dir, "runsc");
    log = join(dir, "calls.log");
    await writeFile(fake, FAKE_RUNSC, { mode: 0o755 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("passes other commands through, without Berth's flag", async () => {
    const code = await runShim(shim, ["--root=/r", `${SHIM_RUNTIME_FLAG}${fake}`, "--x", "delete", "c0"], {
      FAKE_LOG: log,
    });
    assert.equal(code, 0);
    assert.equal((await readFile(log, "utf8")).trim(), "--root=/r --x delete c0");
  });

  it("create: a waiter that runs start when released and exits with the container's status", async () => {
    await writeFile(log, "");
    const ctr = join(dir, "ctr");
    const bundle = join(dir, "bundle");
    await mkdir(ctr);
    await mkdir(bundle);
    await writeFile(join(bundle, "config.json"), JSON.stringify({ annotations: {} }));
    const pidFile = join(ctr, "pidfile");
    const args = ["--root=/r", `${SHIM_RUNTIME_FLAG}${fake}`, "--x", "create", "--bundle", bundle];
    assert.equal(await runShim(shim, [...args, "--pid-file", pidFile, "c1"], { FAKE_LOG: log }), 0);
    assert.equal((await readFile(join(ctr, SANDBOX_PID_FILE), "utf8")).trim(), "4242");
    const waiter = Number((await readFile(pidFile, "utf8")).trim());
    assert.ok(waiter > 0 && waiter !== 4242, "the pid file names the waiter");
    const exited = new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        try {
          process.kill(waiter, 0);
        } catch {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    const fifo = await open(join(ctr, START_FIFO), constants.O_WRONLY | constants.O_NONBLOCK);
    await fifo.write("start\n");
    await fifo.close();
    await exited;
    assert.equal((await readFile(join(ctr, START_STATUS), "utf8")).trim(), "0");
    const calls = (await readFile(log, "utf8")).trim().split("\n");
    assert.equal(calls[0], `--root=/r --x create --bundle ${bundle} --pid-file ${pidFile} c1`);
    assert.match(calls[1] ?? "", /^--root=\/r --x --log=\S+start\.log --log-format=json start c1$/);
    assert.equal(calls[2], "--root=/r --x wait c1");
  });
});
