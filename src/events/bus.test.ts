import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventBus } from "./bus.js";

describe("EventBus", () => {
  it("delivers events in order to every subscriber", async () => {
    const bus = new EventBus<string>();
    const a = bus.subscribe();
    const b = bus.subscribe();
    bus.publish("created", "c1", "p1", "r1");
    bus.publish("started", "c1", "p1", "r2");
    for (const s of [a, b]) {
      assert.equal((await s.next())?.kind, "created");
      assert.equal((await s.next())?.record, "r2");
    }
  });

  it("wakes a waiting subscriber", async () => {
    const bus = new EventBus<number>();
    const s = bus.subscribe();
    const pending = s.next();
    bus.publish("stopped", "c", "p", 7);
    assert.equal((await pending)?.record, 7);
  });

  it("drops a subscriber that falls behind instead of blocking the publisher", async () => {
    const bus = new EventBus<number>(3);
    const slow = bus.subscribe();
    for (let i = 0; i < 10; i++) bus.publish("created", `c${i}`, "p", i);
    assert.match(slow.closedReason ?? "", /behind/);
    assert.equal(bus.subscribers, 0);
    assert.equal(await slow.next(), undefined);
  });

  it("ends a waiting next() when closed", async () => {
    const bus = new EventBus<number>();
    const s = bus.subscribe();
    const pending = s.next();
    s.close("client went away");
    assert.equal(await pending, undefined);
    assert.equal(bus.subscribers, 0);
  });
});
