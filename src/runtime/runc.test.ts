import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { isBerthError } from "../common/errors.js";
import { type Runner, type RunOptions, type RunResult, run } from "../common/process.js";
import { SUITE_TIMEOUT_MS } from "../test/harness/timeouts.js";
import { classifyRuntimeMessage, OciRuntimeError, parseRuntimeMessage, RuncCli } from "./runc.js";
import { RUNC, skipReason } from "./testutil.js";

interface Call {
  cmd: string;
  args: readonly string[];
  opts: RunOptions | undefined;
}

function fakeRunner(respond: (args: readonly string[]) => Partial<RunResult>): {
  runner: Runner;
  calls: Call[];
} {
  const calls: Call[] = [];
  const runner: Runner = async (cmd, args, opts) => {
    calls.push({ cmd, args, opts });
    return { exitCode: 0, signal: null, stdout: "", stderr: "", timedOut: false, ...respond(args) };
  };
  return { runner, calls };
}

const fail = (msg: string): Partial<RunResult> => ({
  exitCode: 1,
  stderr: `${JSON.stringify({ level: "error", msg, time: "2024-01-01T00:00:00Z" })}\n`,
});

describe("parseRuntimeMessage", () => {
  test("JSON log lines: last error wins, warnings skipped", () => {
    const text = [
      '{"level":"warning","msg":"something minor","time":"x"}',
      '{"level":"error","msg":"container does not exist","time":"x"}',
    ].join("\n");
    assert.equal(parseRuntimeMessage(text), "container does not exist");
  });

  test("logfmt line as conmon forwards it, with Go escapes", () => {
    const text =
      'time="2024-01-01T00:00:00Z" level=error msg="runc create failed: unable to start container process: exec: \\"nope\\": executable file not found in $PATH"\n';
    assert.equal(
      parseRuntimeMessage(text),
      'runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH',
    );
  });

  test("plain text falls through", () => {
    assert.equal(parseRuntimeMessage("  something odd\n"), "something odd");
  });
});

describe("classifyRuntimeMessage", () => {
  const cases: [string, string][] = [
    ["container does not exist", "NotFound"],
    ["container with id exists: x", "Internal"],
    ["container with given ID already exists", "AlreadyExists"],
    ['exec: "nope": executable file not found in $PATH', "InvalidArgument"],
    ["exec: /bin/x: permission denied", "InvalidArgument"],
    ["container not running", "FailedPrecondition"],
    ["cannot start a container that has stopped", "FailedPrecondition"],
    ["cannot exec in a stopped container", "FailedPrecondition"],
    ["some cgroup failure", "Internal"],
  ];
  for (const [msg, code] of cases) {
    test(`${msg} → ${code}`, () => assert.equal(classifyRuntimeMessage(msg), code));
  }
});

describe("RuncCli with a fake runner", () => {
  const binary = { path: "/opt/crun", root: "/run/other-root" };

  test("every call carries the handler's binary and --root", async () => {
    const { runner, calls } = fakeRunner(() => ({}));
    const cli = new RuncCli(binary, { runner });
    await cli.start("c1");
    await cli.kill("c1", "TERM", true);
    await cli.kill("c1", 9);
    await cli.pause("c1");
    await cli.resume("c1");
    assert.ok(calls.every((c) => c.cmd === "/opt/crun" && c.args[0] === "--root=/run/other-root"));
    const tails = calls.map((c) => c.args.slice(2).join(" "));
    assert.deepEqual(tails, ["start c1", "kill --all c1 TERM", "kill c1 9", "pause c1", "resume c1"]);
  });

  test("state parses status and pid; unknown id → undefined", async () => {
    const { runner } = fakeRunner((args) =>
      args.includes("known")
        ? { stdout: JSON.stringify({ id: "known", pid: 42, status: "running", bundle: "/b" }) }
        : fail("container does not exist"),
    );
    const cli = new RuncCli(binary, { runner });
    assert.deepEqual(await cli.state("known"), { status: "running", pid: 42, bundle: "/b" });
    assert.equal(await cli.state("unknown"), undefined);
  });

  test("delete is idempotent; other errors are typed", async () => {
    const { runner } = fakeRunner((args) =>
      args.includes("gone") ? fail("container does not exist") : fail("container not running"),
    );
    const cli = new RuncCli(binary, { runner });
    await cli.delete("gone", { force: true });
    await assert.rejects(cli.kill("x", "KILL"), (e: unknown) => {
      assert.ok(e instanceof OciRuntimeError);
      assert.equal(e.code, "FailedPrecondition");
      assert.equal(e.runtimeMessage, "container not running");
      assert.match(e.message, /kill container x: container not running/);
      return true;
    });
  });

  test("update sends resources on stdin via --resources -", async () => {
    const { runner, calls } = fakeRunner(() => ({}));
    await new RuncCli(binary, { runner }).update("c1", { cpu: { shares: 512 } });
    assert.deepEqual(calls[0]?.args.slice(2), ["update", "--resources", "-", "c1"]);
    assert.equal(calls[0]?.opts?.input, '{"cpu":{"shares":512}}');
  });
});

describe("process runner", () => {
  test("missing binary → FailedPrecondition", async () => {
    await assert.rejects(run("/nonexistent/berth-runc", ["state", "x"]), (e: unknown) => {
      assert.ok(isBerthError(e, "FailedPrecondition"));
      assert.match(e.message, /berth-runc/);
      return true;
    });
  });

  test("captures output and exit code; input reaches stdin", async () => {
    const r = await run("/bin/sh", ["-c", "cat; echo e >&2; exit 4"], { input: "in" });
    assert.deepEqual([r.exitCode, r.stdout, r.stderr], [4, "in", "e\n"]);
  });

  test("timeout kills", async () => {
    const r = await run("/bin/sleep", ["5"], { timeoutMs: 100 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, "SIGKILL");
  });
});

describe("RuncCli against the real runc", { skip: skipReason(), timeout: SUITE_TIMEOUT_MS }, () => {
  test("unknown container: state undefined, delete (twice) fine, kill NotFound", async () => {
    const root = await mkdtemp(join(tmpdir(), "berth-runc-"));
    try {
      const cli = new RuncCli({ path: RUNC, root });
      assert.equal(await cli.state("nope"), undefined);
      await cli.delete("nope");
      await cli.delete("nope", { force: true });
      await assert.rejects(cli.kill("nope", "KILL"), (e: unknown) => isBerthError(e, "NotFound"));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
