import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { fuzzParams, mutatedJson, typedOutcome } from "../common/fuzz-testutil.js";
import { ExecError, exitCodeFromStatus } from "./client.js";
import { errorStatus, exitStatus } from "./remotecommand.js";

const status = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((code) => exitStatus(code, ["sh", "-c", "x"])),
  fc.string().map((m) => errorStatus(new Error(m))),
);

describe("exitCodeFromStatus (fuzz)", () => {
  it("the statuses the server writes give their exit code back", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), (code) => {
        assert.equal(exitCodeFromStatus(JSON.stringify(exitStatus(code, ["x"]))), code);
      }),
      fuzzParams(),
    );
  });

  it("arbitrary text and mutated statuses: an exit code or ExecError", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          mutatedJson(status).map((b) => b.toString()),
        ),
        (text) => {
          const code = typedOutcome(() => exitCodeFromStatus(text), ExecError);
          if (code !== undefined) assert.ok(Number.isInteger(code));
        },
      ),
      fuzzParams(),
    );
  });

  it("JSON that is not a Status object is an ExecError", () => {
    for (const text of [
      "null",
      "5",
      '"x"',
      "[]",
      '{"reason":"NonZeroExitCode","details":{"causes":5}}',
      '{"reason":"NonZeroExitCode","details":{"causes":[null]}}',
      '{"reason":"NonZeroExitCode","details":null}',
      '{"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":""}]}}',
      '{"message":7}',
    ]) {
      assert.throws(() => exitCodeFromStatus(text), ExecError, text);
    }
  });
});
