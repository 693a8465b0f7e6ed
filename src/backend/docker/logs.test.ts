import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { dockerTimeNs } from "./labels.js";
import { criLine, resumePoint } from "./logs.js";

describe("docker backend logs", () => {
  it("a Docker log message becomes one CRI line; a message without newline is partial", () => {
    assert.deepEqual(
      criLine("stdout", "2026-12-06T05:00:00.5Z hello\n")?.line,
      "2026-12-06T05:00:00.5Z stdout F hello\n",
    );
    assert.equal(
      criLine("stderr", "2026-12-06T05:00:00.5Z part")?.line,
      "2026-12-06T05:00:00.5Z stderr P part\n",
    );
    assert.equal(criLine("stdout", "garbage"), undefined);
  });

  it("times keep their nanoseconds", () => {
    assert.equal(dockerTimeNs("1970-01-01T00:00:01.000000002Z"), 1_000_000_002n);
    assert.equal(dockerTimeNs("1970-01-01T00:00:01.5Z"), 1_500_000_000n);
    assert.equal(dockerTimeNs("0001-01-01T00:00:00Z"), 0n);
  });

  it("the resume point is the last line's time and how many lines end with it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-dlogs-"));
    try {
      const path = join(dir, "0.log");
      assert.equal(await resumePoint(path), undefined);
      await writeFile(
        path,
        "1970-01-01T00:00:01Z stdout F a\n1970-01-01T00:00:02.5Z stdout F b\n1970-01-01T00:00:02.5Z stderr F c\n",
      );
      const r = await resumePoint(path);
      assert.equal(r?.ns, 2_500_000_000n);
      assert.equal(r?.count, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
