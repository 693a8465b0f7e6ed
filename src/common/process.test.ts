import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { run } from "./process.js";

describe("run (the vfork runner)", () => {
  it("captures stdout and stderr and the exit code", async () => {
    const r = await run("sh", ["-c", "echo out; echo err >&2; exit 3"]);
    assert.deepEqual(r, { exitCode: 3, signal: null, stdout: "out\n", stderr: "err\n", timedOut: false });
  });

  it("feeds input to stdin, which is /dev/null without it", async () => {
    assert.equal((await run("cat", [], { input: "from stdin" })).stdout, "from stdin");
    assert.equal((await run("readlink", ["/proc/self/fd/0"])).stdout, "/dev/null\n");
  });

  it("passes env and cwd, and starts a new session when detached", async () => {
    const r = await run("sh", ["-c", 'echo "$FOO $(pwd)"; ps -o sid= -p $$; echo $$'], {
      env: { FOO: "bar", PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
      cwd: "/tmp",
      detached: true,
    });
    const [line, sid, pid] = r.stdout.trim().split("\n");
    assert.equal(line, "bar /tmp");
    assert.equal(sid?.trim(), pid?.trim());
  });

  it("gives the child no ignored, blocked or caught signals and no fds of ours beyond its stdio", async () => {
    const r = await run("sh", ["-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; ls /proc/self/fd"], {
      extraPipes: 1,
      onSpawn: (c) => c.pipes[0]?.end(),
    });
    assert.match(r.stdout, /^SigBlk:\s+0+$/m);
    assert.match(r.stdout, /^SigIgn:\s+0+$/m);
    const fds = r.stdout
      .split("\n")
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
    // 0-2, the extra pipe at 3, ls's own directory fd; anything else was inherited from outside.
    for (const fd of [0, 1, 2, 3]) assert.ok(fds.includes(fd), `fd ${fd} in ${fds.join(",")}`);
  });

  it("hands extra socket pairs to the child as fds 3 and up", async () => {
    let got = "";
    const r = await run("sh", ["-c", 'echo ping >&3; read line <&4; echo "$line"'], {
      extraPipes: 2,
      onSpawn: (c) => {
        c.pipes[0]?.on("data", (d: Buffer) => {
          got += d.toString();
          c.pipes[1]?.end("pong\n");
        });
      },
    });
    assert.equal(got, "ping\n");
    assert.equal(r.stdout, "pong\n");
  });

  it("kills the child at the timeout, and reports a signal", async () => {
    const r = await run("sleep", ["30"], { timeoutMs: 50 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, "SIGKILL");
    assert.equal(r.exitCode, null);
    const k = await run("sh", ["-c", "kill -TERM $$"]);
    assert.equal(k.signal, "SIGTERM");
  });

  it("rejects a missing binary with FailedPrecondition and a non-executable one as internal", async () => {
    await assert.rejects(run("/nonexistent/binary", []), /executable not found/);
    const dir = await mkdtemp(join(tmpdir(), "berth-run-"));
    try {
      await writeFile(join(dir, "not-executable"), "#!/bin/sh\n", { mode: 0o644 });
      await assert.rejects(run(join(dir, "not-executable"), []), /EACCES/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("keeps at most maxOutput bytes of a stream", async () => {
    const r = await run("head", ["-c", "100000", "/dev/zero"], { maxOutput: 1000 });
    assert.equal(r.stdout.length, 1000);
  });

  it("runs many children at once", async () => {
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => run("echo", [String(i)])));
    assert.deepEqual(
      rs.map((r) => r.stdout),
      rs.map((_, i) => `${i}\n`),
    );
  });
});
