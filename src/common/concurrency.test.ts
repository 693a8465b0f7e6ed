import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SingleFlight } from "./concurrency.js";
import { cancelled, isBerthError } from "./errors.js";

/** A task that runs until released or aborted, and tells how it ended. */
function controllable() {
  let release!: (v: string) => void;
  const runs: { signal: AbortSignal; settled: boolean }[] = [];
  const task = (signal: AbortSignal) => {
    const run = { signal, settled: false };
    runs.push(run);
    return new Promise<string>((resolve, reject) => {
      release = (v) => {
        run.settled = true;
        resolve(v);
      };
      signal.addEventListener("abort", () => {
        // Winds down a little later, as real work (cleanup) does.
        setTimeout(() => {
          run.settled = true;
          reject(signal.reason);
        }, 20);
      });
    });
  };
  return { task, runs, release: (v: string) => release(v) };
}

describe("SingleFlight", () => {
  it("shares one run between concurrent callers", async () => {
    const sf = new SingleFlight<string>();
    const c = controllable();
    const a = sf.run("k", c.task);
    const b = sf.run("k", c.task, new AbortController().signal);
    c.release("done");
    assert.deepEqual(await Promise.all([a, b]), ["done", "done"]);
    assert.equal(c.runs.length, 1);
  });

  it("one caller giving up leaves the shared work running for the others", async () => {
    const sf = new SingleFlight<string>();
    const c = controllable();
    const first = new AbortController();
    const a = sf.run("k", c.task, first.signal);
    const b = sf.run("k", c.task, new AbortController().signal);
    first.abort(cancelled("gave up"));
    await assert.rejects(a, (e: unknown) => isBerthError(e, "Cancelled"));
    assert.equal(c.runs[0]?.signal.aborted, false);
    c.release("done");
    assert.equal(await b, "done");
  });

  it("aborts the work when the last caller gives up, and that caller waits for it to wind down", async () => {
    const sf = new SingleFlight<string>();
    const c = controllable();
    const one = new AbortController();
    const two = new AbortController();
    const a = sf.run("k", c.task, one.signal);
    const b = sf.run("k", c.task, two.signal);
    one.abort(cancelled("one"));
    await assert.rejects(a);
    two.abort(cancelled("two"));
    await assert.rejects(b, (e: unknown) => isBerthError(e) && e.message === "two");
    assert.equal(c.runs[0]?.signal.aborted, true);
    assert.equal(c.runs[0]?.settled, true, "answered only after the work wound down");
  });

  it("a caller without a signal keeps the work alive; a caller after an abort starts a new run", async () => {
    const sf = new SingleFlight<string>();
    const c = controllable();
    const ac = new AbortController();
    const a = sf.run("k", c.task);
    const b = sf.run("k", c.task, ac.signal);
    ac.abort(cancelled("b"));
    await assert.rejects(b);
    assert.equal(c.runs[0]?.signal.aborted, false);
    c.release("first");
    assert.equal(await a, "first");

    const gone = new AbortController();
    const d = sf.run("k", c.task, gone.signal);
    gone.abort(cancelled("d"));
    const e = sf.run("k", c.task); // the aborted run is winding down: not joined
    assert.equal(c.runs.length, 3);
    await assert.rejects(d);
    c.release("second");
    assert.equal(await e, "second");
  });

  it("rejects at once for a signal already aborted", async () => {
    const sf = new SingleFlight<string>();
    const c = controllable();
    await assert.rejects(sf.run("k", c.task, AbortSignal.abort(cancelled("early"))), /early/);
    assert.equal(c.runs.length, 0);
  });
});
