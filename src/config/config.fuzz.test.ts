import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { stringify } from "smol-toml";
import { BerthError } from "../common/errors.js";
import { fuzzParams, hostileKey, mutatedString, typedOutcome } from "../common/fuzz-testutil.js";
import { type BerthConfig, configFromToml, parseConfig } from "./config.js";

type Table = Record<string, unknown>;

const scalar = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.date({ noInvalidDate: true }),
);
const key = fc.oneof(fc.string({ maxLength: 8 }), hostileKey);
const { anyValue } = fc.letrec<{ anyValue: unknown }>((tie) => ({
  anyValue: fc.oneof(
    { depthSize: "small", maxDepth: 3 },
    scalar,
    fc.array(tie("anyValue"), { maxLength: 3 }),
    fc.dictionary(key, tie("anyValue"), { maxKeys: 3 }),
  ),
}));

/** Mostly a plausible value for the key, sometimes anything at all. */
const maybe = (plausible: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 30, arbitrary: plausible }, { weight: 1, arbitrary: anyValue });

/** A table with some of `entries`, now and then an unknown key too. */
function table(entries: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Table> {
  return fc
    .tuple(
      fc.record(entries, { requiredKeys: [] }),
      fc.oneof(
        { weight: 40, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.tuple(key, anyValue) },
      ),
    )
    .map(([t, extra]) => {
      if (extra) Object.defineProperty(t, extra[0], { value: extra[1], enumerable: true, writable: true });
      return t;
    });
}

/** Object.defineProperty for every key, so "__proto__" ends up a key like TOML's own tables. */
function dict(k: fc.Arbitrary<string>, v: fc.Arbitrary<unknown>): fc.Arbitrary<Table> {
  return fc.array(fc.tuple(k, v), { maxLength: 3 }).map((pairs) => {
    const t: Table = {};
    for (const [name, value] of pairs) {
      Object.defineProperty(t, name, { value, enumerable: true, writable: true, configurable: true });
    }
    return t;
  });
}

/** Valid values mostly, invalid ones now and then. */
const mostly = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 20, arbitrary: valid }, { weight: 1, arbitrary: invalid });
const path = mostly(
  fc.oneof(
    fc.constantFrom("/var/lib/x", "/run/y", "/"),
    fc.string({ maxLength: 10 }).map((s) => `/${s}`),
  ),
  fc.constantFrom("relative", "", "./x"),
);
const address = mostly(
  fc.oneof(
    fc.constantFrom("127.0.0.1:0", "[::1]:10010", "localhost:99999"),
    fc
      .tuple(fc.string({ unit: fc.constantFrom(..."aZ0.-"), minLength: 1, maxLength: 6 }), fc.nat(99999))
      .map(([h, p]) => `${h}:${p}`),
  ),
  fc.constantFrom("host", ":1", "", "a b:1"),
);
const url = mostly(
  fc.oneof(fc.constantFrom("http://a", "https://b:5000/"), fc.webUrl()),
  fc.constantFrom("ftp://c", "not a url", "http://"),
);
const handlerName = fc.oneof(
  fc.constantFrom("runc", "crun", "kata"),
  hostileKey,
  fc.string({ maxLength: 6 }),
);
const hostName = fc.oneof(fc.constantFrom("docker.io", "registry.k8s.io", "localhost:5000"), hostileKey);

const configDoc: fc.Arbitrary<Table> = table({
  root: maybe(path),
  state: maybe(path),
  listen: maybe(path),
  log_level: maybe(
    mostly(
      fc.constantFrom("trace", "debug", "info", "warn", "error", "fatal", "silent"),
      fc.constant("loud"),
    ),
  ),
  image: maybe(
    table({
      max_concurrent_downloads: maybe(
        mostly(fc.integer({ min: 1, max: 64 }), fc.integer({ min: -1, max: 70 })),
      ),
      discard_unpacked_layers: maybe(fc.boolean()),
      platform: maybe(
        mostly(fc.constantFrom("", "linux/amd64", "linux/arm/v7"), fc.constantFrom("amd64", "Linux/x")),
      ),
      max_manifest_bytes: maybe(
        mostly(
          fc.integer({ min: 1024, max: 64 * 1024 * 1024 }),
          fc.integer({ min: 0, max: 70 * 1024 * 1024 }),
        ),
      ),
    }),
  ),
  registry: maybe(
    table({
      mirrors: maybe(dict(hostName, maybe(table({ endpoints: maybe(fc.array(url, { maxLength: 3 })) })))),
      configs: maybe(
        dict(
          hostName,
          maybe(
            table({
              insecure: maybe(fc.boolean()),
              auth: maybe(
                table({
                  username: maybe(fc.string()),
                  password: maybe(fc.string()),
                  auth: maybe(fc.base64String()),
                  identitytoken: maybe(fc.string()),
                }),
              ),
            }),
          ),
        ),
      ),
    }),
  ),
  runtime: maybe(
    table({
      default_handler: maybe(fc.oneof(fc.constant("runc"), handlerName)),
      conmon: maybe(path),
      handlers: maybe(
        dict(handlerName, maybe(table({ runtime_path: maybe(path), runtime_root: maybe(path) }))),
      ),
      seccomp_use_default_when_empty: maybe(fc.boolean()),
    }),
  ),
  cni: maybe(
    table({
      conf_dirs: maybe(fc.array(path, { maxLength: 2 })),
      bin_dirs: maybe(fc.array(path, { maxLength: 2 })),
    }),
  ),
  metrics: maybe(table({ address: maybe(address) })),
  streaming: maybe(
    table({
      address: maybe(address),
      idle_timeout_seconds: maybe(
        mostly(fc.integer({ min: 1, max: 604_800 }), fc.integer({ min: -1, max: 700_000 })),
      ),
    }),
  ),
});

const isPlainTable = (v: unknown): v is Table =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
const sub = (t: unknown, k: string): Table | undefined => {
  const v = isPlainTable(t) ? t[k] : undefined;
  return isPlainTable(v) ? v : undefined;
};

/** What the schema promises about an accepted configuration built from `doc`. */
function checkAccepted(c: BerthConfig, doc: Table): void {
  for (const p of [c.root, c.state, c.listen, c.runtime.conmonPath, ...c.cni.confDirs, ...c.cni.binDirs]) {
    assert.ok(p.startsWith("/"), p);
  }
  assert.ok(Object.hasOwn(c.runtime.handlers, c.runtime.defaultHandler), c.runtime.defaultHandler);
  for (const h of Object.values(c.runtime.handlers)) {
    assert.ok(h.runtimePath.startsWith("/") && h.runtimeRoot.startsWith("/"));
  }
  // Every table the document names is one (a date or an array in its place is an error)...
  for (const k of ["image", "registry", "runtime", "cni", "metrics", "streaming"]) {
    if (doc[k] !== undefined) assert.ok(isPlainTable(doc[k]), `${k} accepted as a table`);
  }
  // ...and nothing the document lists is lost.
  const registry = sub(doc, "registry");
  for (const [k, got] of [
    ["mirrors", c.registry.mirrors],
    ["configs", c.registry.configs],
  ] as const) {
    assert.deepEqual(Object.keys(got).sort(), Object.keys(sub(registry, k) ?? {}).sort(), `registry.${k}`);
  }
  for (const name of Object.keys(sub(sub(doc, "runtime"), "handlers") ?? {})) {
    assert.ok(Object.hasOwn(c.runtime.handlers, name), `handler ${name}`);
  }
}

describe("config (fuzz)", () => {
  it("random documents: a complete configuration or InvalidArgument", () => {
    fc.assert(
      fc.property(configDoc, (doc) => {
        const c = typedOutcome(() => configFromToml(doc), BerthError);
        if (c) checkAccepted(c, doc);
      }),
      fuzzParams(),
    );
  });

  it("the same documents as TOML text: the same outcome", () => {
    fc.assert(
      fc.property(configDoc, (doc) => {
        let text: string;
        try {
          text = stringify(doc);
        } catch {
          return; // not representable in TOML (e.g. NaN keys); the direct property covers it
        }
        const fromText = typedOutcome(() => parseConfig(text, "fuzz.toml"), BerthError);
        if (fromText) checkAccepted(fromText, doc);
      }),
      fuzzParams(),
    );
  });

  it("arbitrary and mutated TOML text: a configuration or InvalidArgument", () => {
    const valid = configDoc.map((d) => {
      try {
        return stringify(d);
      } catch {
        return "";
      }
    });
    const tomlChars = fc.string({
      unit: fc.constantFrom(..."[]{}=\"'.,#\n -_0a/:"),
      minLength: 1,
      maxLength: 4,
    });
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary" }), mutatedString(valid, tomlChars)), (text) => {
        typedOutcome(() => parseConfig(text, "fuzz.toml"), BerthError);
      }),
      fuzzParams(),
    );
  });
});
