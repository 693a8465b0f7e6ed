import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mapLimit } from "../common/concurrency.js";
import { chainIds, sha256 } from "./digest.js";

describe("chain ids", () => {
  it("follow the OCI definition", () => {
    const d1 = sha256("one");
    const d2 = sha256("two");
    const d3 = sha256("three");
    const c2 = sha256(`${d1} ${d2}`);
    assert.deepEqual(chainIds([d1, d2, d3]), [d1, c2, sha256(`${c2} ${d3}`)]);
    assert.deepEqual(chainIds([]), []);
  });
});

describe("mapLimit", () => {
  it("keeps order, bounds concurrency and stops on the first error", async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return n * 2;
    });
    assert.deepEqual(out, [2, 4, 6, 8, 10, 12]);
    assert.equal(peak, 2);
    const seen: number[] = [];
    await assert.rejects(
      mapLimit([1, 2, 3, 4], 1, async (n) => {
        seen.push(n);
        if (n === 2) throw new Error("stop");
        return n;
      }),
      /stop/,
    );
    assert.deepEqual(seen, [1, 2]);
  });
});
