/** Small concurrency helpers shared by the image, container and runtime code. */

interface Flight<T> {
  promise: Promise<T>;
  /** Aborts the shared work; fired only when every caller waiting for it has given up. */
  controller: AbortController;
  /** Callers still waiting; one without a signal never gives up. */
  waiters: number;
}

/**
 * Runs one promise per key at a time; concurrent callers with the same key share it.
 *
 * The task gets an AbortSignal of its own. A caller may pass its signal: when it aborts, that
 * caller stops waiting at once (rejecting with its signal's reason) while the work goes on for
 * the others; only when the last waiter has given up is the shared work aborted, and that last
 * caller then waits for the work to wind down (so it has cleaned up when the caller answers).
 * A caller arriving after the work was aborted starts a new run.
 */
export class SingleFlight<T> {
  private readonly running = new Map<string, Flight<T>>();

  run(key: string, task: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let flight = this.running.get(key);
    if (flight === undefined || flight.controller.signal.aborted) {
      const controller = new AbortController();
      const f: Flight<T> = { controller, waiters: 0, promise: Promise.resolve() as Promise<T> };
      f.promise = task(controller.signal).finally(() => {
        if (this.running.get(key) === f) this.running.delete(key);
      });
      this.running.set(key, f);
      flight = f;
    }
    flight.waiters++;
    if (signal === undefined) return flight.promise;
    const shared = flight;
    return new Promise<T>((resolve, reject) => {
      let gaveUp = false;
      const onAbort = () => {
        gaveUp = true;
        shared.waiters--;
        if (shared.waiters > 0) {
          reject(signal.reason);
          return;
        }
        shared.controller.abort(signal.reason);
        if (this.running.get(key) === shared) this.running.delete(key);
        // Finished anyway before it noticed: the result stands; else the caller's reason.
        shared.promise.then(resolve, () => reject(signal.reason));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      shared.promise.then(
        (v) => {
          if (gaveUp) return;
          signal.removeEventListener("abort", onAbort);
          resolve(v);
        },
        (err: unknown) => {
          if (gaveUp) return;
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }
}

/** Maps items with at most `limit` in flight; rejects with the first error. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Runs tasks one at a time per key (in call order); keys with nothing queued are forgotten. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(task, task);
    const tail = result.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
