import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { fuzzParams } from "../common/fuzz-testutil.js";
import { decodeCriLog } from "./logs.js";

/** `output` as conmon logs it: a F record per line, long lines split into P records first. */
function criLog(output: string, split: number): string {
  const lines = output.split("\n");
  const last = lines.pop()!; // "" when the output ends with a newline
  const records: string[] = [];
  const stamp = "2024-01-02T03:04:05.123456789Z stdout";
  for (const line of lines) {
    let rest = line;
    while (rest.length > split) {
      records.push(`${stamp} P ${rest.slice(0, split)}`);
      rest = rest.slice(split);
    }
    records.push(`${stamp} F ${rest}`);
  }
  if (last !== "") records.push(`${stamp} P ${last}`);
  return records.map((r) => `${r}\n`).join("");
}

describe("decodeCriLog (fuzz)", () => {
  it("gives back the output that was logged, \\r and all", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.integer({ min: 1, max: 20 }), (output, split) => {
        assert.equal(decodeCriLog(criLog(output, split)), output);
      }),
      fuzzParams(),
    );
  });

  it("never throws on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => {
        assert.equal(typeof decodeCriLog(text), "string");
      }),
      fuzzParams(),
    );
  });

  it("keeps tty lines ending in \\r", () => {
    assert.equal(decodeCriLog("2024-01-02T03:04:05Z stdout F hello\r\n"), "hello\r\n");
  });
});
