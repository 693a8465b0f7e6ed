/**
 * Helpers shared by the *.fuzz.test.ts files (fast-check): the time budget of a property, the
 * "a value or a typed error" check, and mutations of valid inputs (bytes flipped, truncated,
 * extended; JSON fields replaced by random or hostile values).
 *
 * Each property runs for at most ~1 s (CI). BERTH_FUZZ_SECONDS=N runs each one for N seconds
 * instead; BERTH_FUZZ_SEED=S (with BERTH_FUZZ_PATH=P: just the failing run) replays a report.
 */
import fc from "fast-check";

const budgetSeconds = Number(process.env["BERTH_FUZZ_SECONDS"] ?? "");
const longRun = Number.isFinite(budgetSeconds) && budgetSeconds > 0;
const seed = process.env["BERTH_FUZZ_SEED"];
const replayPath = process.env["BERTH_FUZZ_PATH"];

/** A single run slower than this fails the property (a super-linear blow-up, or a near-hang). */
export const SLOW_RUN_MS = 2000;

/** fc.assert parameters: `runs` runs within ~1 s, or as many as BERTH_FUZZ_SECONDS allows. */
export function fuzzParams<T>(runs = 300): fc.Parameters<T> {
  return {
    numRuns: longRun ? Number.MAX_SAFE_INTEGER : runs,
    plugins: [fc.interruptAfterTimeLimit(longRun ? budgetSeconds * 1000 : 1000)],
    includeErrorInReport: true, // node's test runner does not print an error's cause
    ...(seed ? { seed: Number(seed) } : {}),
    ...(seed && replayPath ? { path: replayPath } : {}),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: any error class, whatever its constructor takes
export type ErrorClass = abstract new (...args: any[]) => Error;

function untyped(err: unknown, typed: readonly ErrorClass[]): Error {
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new Error(`untyped error (want ${typed.map((t) => t.name).join(" or ")}): ${what}`, { cause: err });
}

function checkSlow(start: number): void {
  const ms = performance.now() - start;
  if (ms > SLOW_RUN_MS) throw new Error(`one run took ${Math.round(ms)} ms`);
}

/**
 * Runs `fn`: its value, or undefined when it threw one of `typed`. Any other error, or a run
 * slower than SLOW_RUN_MS, fails the property.
 */
export function typedOutcome<T>(fn: () => T, ...typed: ErrorClass[]): T | undefined {
  const start = performance.now();
  try {
    return fn();
  } catch (err) {
    if (typed.some((t) => err instanceof t)) return undefined;
    throw untyped(err, typed);
  } finally {
    checkSlow(start);
  }
}

/** {@link typedOutcome} for async functions. */
export async function typedOutcomeAsync<T>(
  fn: () => Promise<T>,
  ...typed: ErrorClass[]
): Promise<T | undefined> {
  const start = performance.now();
  try {
    return await fn();
  } catch (err) {
    if (typed.some((t) => err instanceof t)) return undefined;
    throw untyped(err, typed);
  } finally {
    checkSlow(start);
  }
}

/** Rejects when `p` has not settled within `ms` (a hang), instead of stalling the test file. */
export function withinMs<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms (hang?)`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Bytes a parser treats specially: 0, sign bits, all-ones, ASCII digits and separators. */
const interestingByte = fc.constantFrom(
  0x00,
  0x01,
  0x7f,
  0x80,
  0xff,
  0x20,
  0x0a,
  0x30,
  0x37,
  0x3d,
  0x2f,
  0x3a,
);
const someBytes = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 16 }),
  fc.array(interestingByte, { minLength: 1, maxLength: 8 }).map((a) => Uint8Array.from(a)),
);

/** One edit of a byte string; positions are taken modulo the current length. */
export type ByteEdit =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; bytes: Uint8Array }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; n: number }
  | { op: "truncate"; at: number }
  | { op: "extend"; bytes: Uint8Array }
  | { op: "repeat"; at: number; n: number; times: number };

export const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), bytes: someBytes }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), bytes: someBytes }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("extend" as const), bytes: someBytes }),
  fc.record({
    op: fc.constant("repeat" as const),
    at: fc.nat(),
    n: fc.integer({ min: 1, max: 32 }),
    times: fc.integer({ min: 1, max: 64 }),
  }),
);

export function applyByteEdits(input: Uint8Array, edits: readonly ByteEdit[]): Buffer {
  let b = Buffer.from(input);
  for (const e of edits) {
    const at = "at" in e ? e.at % (b.length + 1) : 0;
    switch (e.op) {
      case "flip":
        if (at < b.length) b[at]! ^= 1 << e.bit;
        break;
      case "set":
        b = Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(Math.min(b.length, at + e.bytes.length))]);
        break;
      case "insert":
        b = Buffer.concat([b.subarray(0, at), e.bytes, b.subarray(at)]);
        break;
      case "delete":
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.n)]);
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
      case "extend":
        b = Buffer.concat([b, e.bytes]);
        break;
      case "repeat": {
        const part = b.subarray(at, at + e.n);
        b = Buffer.concat([b.subarray(0, at), ...Array<Buffer>(e.times).fill(part), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

/** Copies of valid inputs with 1 to 4 byte edits. */
export function mutatedBytes(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.array(byteEdit, { minLength: 1, maxLength: 4 }))
    .map(([v, edits]) => applyByteEdits(v, edits));
}

/** Copies of valid strings with 1 to 4 edits, inserting text from `alphabet`. */
export function mutatedString(
  valid: fc.Arbitrary<string>,
  alphabet: fc.Arbitrary<string> = fc.string({ unit: "binary", minLength: 1, maxLength: 4 }),
): fc.Arbitrary<string> {
  const edit = fc.oneof(
    fc.record({ op: fc.constant("insert" as const), at: fc.nat(), text: alphabet }),
    fc.record({ op: fc.constant("replace" as const), at: fc.nat(), text: alphabet }),
    fc.record({ op: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({
      op: fc.constant("repeat" as const),
      at: fc.nat(),
      n: fc.integer({ min: 1, max: 8 }),
      times: fc.integer({ min: 1, max: 40 }),
    }),
  );
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([v, edits]) => {
    let s = v;
    for (const e of edits) {
      const at = e.at % (s.length + 1);
      switch (e.op) {
        case "insert":
          s = s.slice(0, at) + e.text + s.slice(at);
          break;
        case "replace":
          s = s.slice(0, at) + e.text + s.slice(at + e.text.length);
          break;
        case "delete":
          s = s.slice(0, at) + s.slice(at + e.n);
          break;
        case "truncate":
          s = s.slice(0, at);
          break;
        case "repeat":
          s = s.slice(0, at) + s.slice(at, at + e.n).repeat(e.times) + s.slice(at);
          break;
      }
    }
    return s;
  });
}

/** Object keys that trip up code using plain objects as maps. */
export const hostileKey = fc.constantFrom(
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "",
);

/**
 * JSON text of values parsers mishandle: nesting deeper than any recursion can follow, numbers
 * beyond the safe range (or beyond double), lone surrogates, huge strings.
 */
export const hostileJsonText: fc.Arbitrary<string> = fc.constantFrom(
  `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
  `${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}`,
  "1e999",
  "-1e999",
  "-0",
  "9007199254740993",
  "1.5",
  "-1",
  '"\\ud800"',
  '"\\u0000"',
  `"${"x".repeat(1_000_000)}"`,
  '{"__proto__":{"polluted":1}}',
  "null",
  "[]",
  "{}",
  '""',
);

/** Any JSON text for a value: random JSON, or a hostile one. */
export const anyJsonText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: hostileJsonText },
);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** One edit of a JSON document; `node` picks a container (modulo their number). */
type JsonEdit =
  | { op: "replace"; node: number; slot: number; text: string }
  | { op: "delete"; node: number; slot: number }
  | { op: "add"; node: number; key: string; text: string };

const jsonEdit: fc.Arbitrary<JsonEdit> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("replace" as const),
      node: fc.nat(),
      slot: fc.nat(),
      text: anyJsonText,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), node: fc.nat(), slot: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("add" as const),
      node: fc.nat(),
      key: fc.oneof(hostileKey, fc.string({ maxLength: 8 })),
      text: anyJsonText,
    }),
  },
);

function containers(
  v: Json,
  out: (Json[] | { [k: string]: Json })[] = [],
): (Json[] | { [k: string]: Json })[] {
  if (v !== null && typeof v === "object") {
    out.push(v);
    for (const c of Object.values(v)) containers(c, out);
  }
  return out;
}

/**
 * The JSON text of `doc` after `edits`. Replacement values are spliced in as raw text (through
 * placeholders), so even values JSON.stringify cannot produce (deep nesting, 1e999) get in.
 */
export function applyJsonEdits(doc: unknown, edits: readonly JsonEdit[]): string {
  const root = structuredClone(doc) as Json;
  const raw: string[] = [];
  const placeholder = (text: string) => {
    raw.push(text);
    return `\u0000raw${raw.length - 1}\u0000`;
  };
  let top: Json = root;
  for (const e of edits) {
    const nodes = containers(top);
    if (nodes.length === 0) {
      if (e.op !== "delete") top = placeholder(e.text);
      continue;
    }
    const node = nodes[e.node % nodes.length]!;
    if (Array.isArray(node)) {
      if (node.length === 0 && e.op !== "add") continue;
      const i = e.op === "add" ? node.length : e.slot % node.length;
      if (e.op === "delete") node.splice(i, 1);
      else node[i] = placeholder(e.text);
    } else {
      const keys = Object.keys(node);
      if (e.op === "add") {
        Object.defineProperty(node, e.key, {
          value: placeholder(e.text),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        continue;
      }
      if (keys.length === 0) continue;
      const k = keys[e.slot % keys.length]!;
      if (e.op === "delete") delete node[k];
      else node[k] = placeholder(e.text);
    }
  }
  return JSON.stringify(top).replace(/"\\u0000raw(\d+)\\u0000"/g, (_, i: string) => raw[Number(i)]!);
}

/** JSON texts of valid documents with 1 to 3 field edits, sometimes plus byte edits of the text. */
export function mutatedJson(valid: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.array(jsonEdit, { minLength: 1, maxLength: 3 }), fc.array(byteEdit, { maxLength: 2 }))
    .map(([doc, edits, bytes]) => applyByteEdits(Buffer.from(applyJsonEdits(doc, edits)), bytes));
}

/** Splits `b` into chunks at the given cut points (taken modulo the length), for incremental parsers. */
export function chunksOf(b: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, b.length]) {
    if (p > prev) out.push(b.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  return out;
}
