import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isBerthError } from "../common/errors.js";
import { TokenCache } from "./tokens.js";

describe("TokenCache", () => {
  it("hands out 32-byte base64url tokens that are single-use", () => {
    const c = new TokenCache<string>();
    const a = c.put("a");
    const b = c.put("b");
    assert.match(a, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(a, "base64url").length, 32);
    assert.notEqual(a, b);
    assert.equal(c.take(a), "a");
    assert.equal(c.take(a), undefined, "replay");
    assert.equal(c.take(b), "b");
    assert.equal(c.take("nope"), undefined);
    assert.equal(c.take(`${b.slice(0, -1)}${b.endsWith("A") ? "B" : "A"}`), undefined);
  });

  it("expires tokens after the TTL (injected clock)", () => {
    let now = 1000;
    const c = new TokenCache<number>({ ttlMs: 60_000, now: () => now });
    const t1 = c.put(1);
    now += 59_999;
    const t2 = c.put(2);
    assert.equal(c.take(t1), 1);
    now += 1;
    const t3 = c.put(3);
    now += 60_000 - 1;
    assert.equal(c.take(t2), undefined, "expired exactly at TTL");
    assert.equal(c.size, 1);
    assert.equal(c.take(t3), 3);
  });

  it("is bounded; expired entries make room", () => {
    let now = 0;
    const c = new TokenCache<number>({ ttlMs: 100, maxSize: 2, now: () => now });
    c.put(1);
    c.put(2);
    assert.throws(
      () => c.put(3),
      (e: unknown) => isBerthError(e, "ResourceExhausted"),
    );
    now = 100;
    const t = c.put(4);
    assert.equal(c.size, 1);
    assert.equal(c.take(t), 4);
  });
});
