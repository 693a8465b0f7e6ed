import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Runner } from "../common/process.js";
import { criuProblem, errorLines } from "./criu.js";

/** A runner answering `criu --version` and `criu check` as CRIU 3.17 does on Linux 6.13+. */
const oldCriu: Runner = async (_cmd, args) => {
  const ok = { exitCode: 0, signal: null, stderr: "", timedOut: false };
  if (args[0] === "--version") return { ...ok, stdout: "Version: 3.17.1\n" };
  return {
    ...ok,
    exitCode: 1,
    stdout: "",
    stderr:
      "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n" +
      "Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n",
  };
};

describe("criu", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-criu-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("a missing binary is named", async () => {
    assert.match(
      (await criuProblem(join(dir, "none"))) ?? "",
      /CRIU is not installed \(.*none is not an executable/,
    );
  });

  test("CRIU before 4.0 on a kernel with [vvar_vclock]: says so, with CRIU's own words", async () => {
    const bin = join(dir, "criu-3.17");
    await writeFile(bin, "#!/bin/sh\n");
    await chmod(bin, 0o755);
    const problem = (await criuProblem(bin, oldCriu)) ?? "";
    assert.match(problem, /CRIU 3\.17\.1 \(.*criu-3\.17\) cannot run on this machine/);
    assert.match(problem, /\[vvar_vclock\] area that CRIU before 4\.0 does not know/);
    assert.match(problem, /Unexpected rt vDSO area bounds/);
  });

  test("a working CRIU has no problem", async () => {
    const bin = join(dir, "criu-ok");
    await writeFile(bin, "#!/bin/sh\n");
    await chmod(bin, 0o755);
    const works: Runner = async () => ({
      exitCode: 0,
      signal: null,
      stdout: "Looks good.\n",
      stderr: "",
      timedOut: false,
    });
    assert.equal(await criuProblem(bin, works), undefined);
  });

  test("errorLines keeps CRIU's error lines without timestamps", () => {
    const log = "(00.1) Unfreezing\n(00.304324) Error (criu/cr-dump.c:2111): Dumping FAILED.\nWarn (x): y\n";
    assert.deepEqual(errorLines(log), ["Error (criu/cr-dump.c:2111): Dumping FAILED."]);
  });
});
