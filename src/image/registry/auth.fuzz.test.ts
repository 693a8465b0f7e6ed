import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { fuzzParams, mutatedString } from "../../common/fuzz-testutil.js";
import { parseWwwAuthenticate } from "./auth.js";

const token = fc.string({ unit: fc.constantFrom(..."abcXYZ09!#$%&'*+.^_`|~-"), minLength: 1, maxLength: 8 });
const quotable = fc.string({ unit: fc.constantFrom(...'ab ,="\\:/._-'), maxLength: 12 });
const param = fc.tuple(token, quotable);
const challenge = fc.tuple(token, fc.array(param, { minLength: 1, maxLength: 3 }));

/** `scheme name="value", ...` with quotes and backslashes escaped. */
function header(challenges: [string, [string, string][]][]): string {
  return challenges
    .map(
      ([scheme, params]) =>
        `${scheme} ${params.map(([k, v]) => `${k}="${v.replace(/["\\]/g, "\\$&")}"`).join(", ")}`,
    )
    .join(", ");
}

describe("parseWwwAuthenticate (fuzz)", () => {
  it("reads back well-formed challenges", () => {
    fc.assert(
      fc.property(fc.array(challenge, { minLength: 1, maxLength: 3 }), (challenges) => {
        const got = parseWwwAuthenticate(header(challenges));
        assert.deepEqual(
          got.map((c) => c.scheme),
          challenges.map(([s]) => s.toLowerCase()),
        );
        for (const [i, [, params]] of challenges.entries()) {
          const want = new Map(params.map(([k, v]) => [k.toLowerCase(), v]));
          assert.deepEqual(new Map(Object.entries(got[i]!.params)), want);
        }
      }),
      fuzzParams(),
    );
  });

  it("arbitrary and mutated headers: challenges, never a throw, in linear time", () => {
    const valid = fc.array(challenge, { minLength: 1, maxLength: 3 }).map(header);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary" }),
          mutatedString(valid, fc.constantFrom(",", " ", "=", '"', "\\", "a")),
        ),
        (h) => {
          for (const c of parseWwwAuthenticate(h)) {
            assert.ok(c.scheme !== "" && c.scheme === c.scheme.toLowerCase());
            for (const v of Object.values(c.params)) assert.equal(typeof v, "string");
          }
        },
      ),
      fuzzParams(),
    );
  });

  it("long hostile headers parse in linear time", () => {
    for (const h of [
      "a ".repeat(50_000),
      "a=".repeat(50_000),
      `Bearer realm="${"\\".repeat(100_000)}`,
      "a, ".repeat(50_000),
      `x ${"b".repeat(100_000)}!`,
    ]) {
      const start = performance.now();
      parseWwwAuthenticate(h);
      assert.ok(
        performance.now() - start < 1000,
        `${h.slice(0, 10)}…: ${Math.round(performance.now() - start)} ms`,
      );
    }
  });
});
