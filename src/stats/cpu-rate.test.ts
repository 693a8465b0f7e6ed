import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CpuRateCache, nanoCores, podRateKey } from "./cpu-rate.js";

const S = 1_000_000_000n;

describe("usage_nano_cores", () => {
  it("is Δusage / Δt × 1e9", () => {
    assert.equal(nanoCores({ usageNs: 0n, timestampNs: 0n }, { usageNs: S, timestampNs: 2n * S }), S / 2n);
    assert.equal(nanoCores({ usageNs: 5n, timestampNs: 10n }, { usageNs: 5n, timestampNs: 20n }), 0n);
    assert.equal(nanoCores({ usageNs: 0n, timestampNs: 10n }, { usageNs: 5n, timestampNs: 10n }), undefined);
    assert.equal(nanoCores({ usageNs: 9n, timestampNs: 0n }, { usageNs: 5n, timestampNs: 10n }), undefined);
  });

  it("returns undefined on the first sample, then the rate since the previous one", () => {
    const c = new CpuRateCache();
    assert.equal(c.update("a", 1n * S, 100n * S), undefined);
    assert.equal(c.update("a", 3n * S, 101n * S), 2n * S); // two cores busy
    assert.equal(c.update("a", 3n * S + S / 4n, 102n * S), S / 4n);
    assert.equal(c.update("b", 0n, 102n * S), undefined, "keys are independent");
    assert.equal(c.size, 2);
  });

  it("keeps the baseline when time does not advance, resets it when the counter drops", () => {
    const c = new CpuRateCache();
    c.update("a", 10n * S, 100n * S);
    assert.equal(c.update("a", 11n * S, 100n * S), undefined);
    assert.equal(c.update("a", 11n * S, 99n * S), undefined);
    assert.equal(c.update("a", 12n * S, 102n * S), S, "still measured from the first sample");
    assert.equal(c.update("a", 1n * S, 103n * S), undefined, "counter reset");
    assert.equal(c.update("a", 2n * S, 104n * S), S);
  });

  it("inside minWindow returns the last rate without moving the baseline", () => {
    const c = new CpuRateCache({ minWindowNs: S });
    c.update("a", 0n, 0n);
    assert.equal(c.update("a", S / 10n, S / 10n), undefined, "no rate yet");
    assert.equal(c.update("a", S, 2n * S), S / 2n);
    assert.equal(c.update("a", 2n * S, 2n * S + S / 2n), S / 2n, "previous rate reused");
    assert.equal(c.update("a", 3n * S, 4n * S), S, "measured from the 2 s baseline");
  });

  it("forgets and prunes entries", () => {
    const c = new CpuRateCache({ maxAgeNs: 10n * S });
    c.update("old", 0n, 0n);
    c.update("new", 0n, 15n * S);
    c.update(podRateKey("p"), 0n, 15n * S);
    c.prune(20n * S);
    assert.equal(c.size, 2);
    c.forget("new");
    assert.equal(c.size, 1);
    assert.equal(c.update("old", S, 21n * S), undefined, "pruned: starts over");
    assert.notEqual(podRateKey("p"), "p");
  });
});
