import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { BerthError, isBerthError } from "../common/errors.js";
import { fuzzParams, mutatedString, typedOutcome } from "../common/fuzz-testutil.js";
import {
  formatRef,
  hostWithoutPort,
  type ImageRef,
  isDigest,
  isLoopbackHost,
  parseReference,
  validateDigest,
} from "./reference.js";

const lower = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789");
const alnum = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
const word = (chars: fc.Arbitrary<string>, max = 8) =>
  fc.string({ unit: chars, minLength: 1, maxLength: max });
const hex = (n: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: n, maxLength: n });

const pathComponent = fc
  .tuple(
    word(lower),
    fc.array(fc.tuple(fc.constantFrom(".", "_", "__", "-", "--"), word(lower)), { maxLength: 2 }),
  )
  .map(([head, rest]) => head + rest.map(([sep, w]) => sep + w).join(""));
const domain = fc.oneof(
  fc.constantFrom("docker.io", "index.docker.io", "localhost", "ghcr.io", "[::1]", "127.0.0.1"),
  fc.array(word(alnum, 6), { minLength: 2, maxLength: 3 }).map((parts) => parts.join(".")),
);
const port = fc.option(
  fc.integer({ min: 1, max: 65535 }).map((p) => `:${p}`),
  { nil: "" },
);
const tag = fc
  .tuple(fc.constantFrom(..."abcXYZ019_"), fc.string({ unit: fc.constantFrom(..."aZ9_.-"), maxLength: 20 }))
  .map(([a, b]) => a + b);
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);

/** Well-formed references: [domain[:port]/]path[:tag][@digest]. */
const validReference = fc
  .tuple(
    fc.option(fc.tuple(domain, port), { nil: undefined }),
    fc.array(pathComponent, { minLength: 1, maxLength: 3 }),
    fc.option(tag, { nil: undefined }),
    fc.option(digest, { nil: undefined }),
  )
  .map(([d, path, t, dg]) => {
    // Without a domain, a first component with a '.' would be taken for one.
    if (!d) path[0] = path[0]!.replaceAll(".", "-");
    let s = d ? `${d[0]}${d[1]}/${path.join("/")}` : path.join("/");
    if (t !== undefined) s += `:${t}`;
    if (dg !== undefined) s += `@${dg}`;
    return s;
  });

/** Characters references are made of, plus some they must not contain. */
const refChars = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."aZ09:/@._-[]"), minLength: 1, maxLength: 4 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 2 }),
);

/** A parsed reference: normalised, and formatting it parses back to the same. */
function checkAccepted(ref: ImageRef): void {
  assert.ok(ref.tag !== undefined || ref.digest !== undefined);
  if (ref.digest !== undefined) assert.ok(isDigest(ref.digest));
  assert.ok(!ref.path.startsWith("/") && ref.domain !== "index.docker.io");
  assert.ok(ref.domain.length + 1 + ref.path.length <= 255);
  assert.deepEqual(parseReference(formatRef(ref)), ref);
}

function parseTyped(s: string): ImageRef | undefined {
  const ref = typedOutcome(() => parseReference(s), BerthError);
  if (ref === undefined) {
    assert.throws(
      () => parseReference(s),
      (e: unknown) => isBerthError(e, "InvalidArgument"),
    );
  }
  return ref;
}

describe("parseReference (fuzz)", () => {
  it("accepts well-formed references, and formatting round-trips", () => {
    fc.assert(
      fc.property(validReference, (s) => {
        const ref = parseReference(s);
        checkAccepted(ref);
        assert.deepEqual(parseReference(formatRef(ref)), ref);
      }),
      fuzzParams(),
    );
  });

  it("arbitrary text: a normalised reference or InvalidArgument", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: "binary" }), fc.string({ unit: refChars, maxLength: 30 })),
        (s) => {
          const ref = parseTyped(s);
          if (ref) checkAccepted(ref);
        },
      ),
      fuzzParams(),
    );
  });

  it("mutated valid references: a normalised reference or InvalidArgument", () => {
    fc.assert(
      fc.property(mutatedString(validReference, refChars), (s) => {
        const ref = parseTyped(s);
        if (ref) checkAccepted(ref);
      }),
      fuzzParams(),
    );
  });

  it("long inputs are rejected in linear time", () => {
    for (const s of [
      "a".repeat(1_000_000),
      `${"a.".repeat(300_000)}!/x`,
      `${"a-".repeat(300_000)}/x`,
      `x/${"a_".repeat(300_000)}!`,
      `x:${"a".repeat(500_000)}`,
      `x@sha256:${"a".repeat(500_000)}`,
      `[${":".repeat(500_000)}/x`,
    ]) {
      const start = performance.now();
      assert.throws(
        () => parseReference(s),
        (e: unknown) => isBerthError(e, "InvalidArgument"),
      );
      assert.ok(performance.now() - start < 1000, `slow on ${s.slice(0, 20)}…`);
    }
  });
});

describe("digests and hosts (fuzz)", () => {
  it("validateDigest throws InvalidArgument exactly when isDigest is false", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary" }),
          mutatedString(
            digest,
            fc.string({ unit: fc.constantFrom(..."aAf0:gs"), minLength: 1, maxLength: 2 }),
          ),
        ),
        (s) => {
          const ok = typedOutcome(() => validateDigest(s), BerthError) !== undefined;
          assert.equal(ok, isDigest(s));
        },
      ),
      fuzzParams(),
    );
  });

  it("hostWithoutPort and isLoopbackHost never throw", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary" }),
          fc.tuple(domain, port).map(([d, p]) => d + p),
        ),
        (s) => {
          assert.equal(typeof hostWithoutPort(s), "string");
          assert.equal(typeof isLoopbackHost(s), "boolean");
        },
      ),
      fuzzParams(),
    );
  });
});
