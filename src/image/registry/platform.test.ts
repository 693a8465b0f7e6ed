import assert from "node:assert/strict";
import { test } from "node:test";
import { isBerthError } from "../../common/errors.js";
import type { Descriptor } from "./oci.js";
import {
  defaultPlatform,
  formatPlatform,
  normalizePlatform,
  type Platform,
  parsePlatform,
  selectPlatform,
} from "./platform.js";

const entry = (n: number, platform?: Platform): Descriptor => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 100 + n,
  ...(platform ? { platform } : {}),
});

const index = [
  entry(1, { os: "linux", architecture: "amd64" }),
  entry(2, { os: "linux", architecture: "arm", variant: "v6" }),
  entry(3, { os: "linux", architecture: "arm", variant: "v7" }),
  entry(4, { os: "linux", architecture: "arm64", variant: "v8" }),
  entry(5, { os: "windows", architecture: "amd64", "os.version": "10.0.17763.1" }),
  entry(6, { os: "unknown", architecture: "unknown" }),
  entry(7, { os: "linux", architecture: "amd64" }),
];

test("defaultPlatform follows process.arch", () => {
  const p = defaultPlatform();
  assert.equal(p.os, "linux");
  const want =
    { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386" }[process.arch as string] ?? process.arch;
  assert.equal(p.architecture, want);
  if (process.arch === "arm64") assert.equal(p.variant, "v8");
});

test("normalizePlatform", () => {
  assert.deepEqual(normalizePlatform({ os: "Linux", architecture: "x86_64" }), {
    os: "linux",
    architecture: "amd64",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "aarch64" }), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm64", variant: "8" }), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "armhf" }), {
    os: "linux",
    architecture: "arm",
    variant: "v7",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm" }), {
    os: "linux",
    architecture: "arm",
    variant: "v7",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm", variant: "6" }), {
    os: "linux",
    architecture: "arm",
    variant: "v6",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "i386" }), {
    os: "linux",
    architecture: "386",
  });
  assert.equal(formatPlatform(parsePlatform("linux/arm/v7")), "linux/arm/v7");
  assert.equal(formatPlatform(parsePlatform("amd64")), "linux/amd64");
});

test("selectPlatform: first exact match", () => {
  assert.equal(selectPlatform(index, { os: "linux", architecture: "amd64" }).digest, index[0]!.digest);
  assert.equal(selectPlatform(index, { os: "linux", architecture: "arm64" }).digest, index[3]!.digest);
  assert.equal(
    selectPlatform(index, { os: "linux", architecture: "arm", variant: "v7" }).digest,
    index[2]!.digest,
  );
  assert.equal(
    selectPlatform(index, { os: "linux", architecture: "arm", variant: "v6" }).digest,
    index[1]!.digest,
  );
});

test("selectPlatform: arm64 entries without variant match v8", () => {
  const idx = [
    entry(1, { os: "linux", architecture: "amd64" }),
    entry(2, { os: "linux", architecture: "arm64" }),
  ];
  assert.equal(
    selectPlatform(idx, { os: "linux", architecture: "arm64", variant: "v8" }).digest,
    idx[1]!.digest,
  );
});

test("selectPlatform: arm v7 falls back to v6 but prefers v7 wherever it is listed", () => {
  const idx = [
    entry(1, { os: "linux", architecture: "arm", variant: "v6" }),
    entry(2, { os: "linux", architecture: "arm", variant: "v7" }),
  ];
  assert.equal(
    selectPlatform(idx, { os: "linux", architecture: "arm", variant: "v7" }).digest,
    idx[1]!.digest,
  );
  assert.equal(
    selectPlatform([idx[0]!], { os: "linux", architecture: "arm", variant: "v7" }).digest,
    idx[0]!.digest,
  );
  assert.throws(
    () => selectPlatform([idx[1]!], { os: "linux", architecture: "arm", variant: "v6" }),
    /no manifest/,
  );
});

test("selectPlatform: no match → notFound naming the platform", () => {
  assert.throws(
    () => selectPlatform(index, { os: "linux", architecture: "s390x" }),
    (e: unknown) =>
      isBerthError(e, "NotFound") &&
      /^no manifest for platform linux\/s390x in index/.test((e as Error).message),
  );
  assert.throws(
    () =>
      selectPlatform([entry(1), entry(2, { os: "linux", architecture: "arm64" })], {
        os: "linux",
        architecture: "amd64",
      }),
    /no manifest for platform linux\/amd64 in index \(available: linux\/arm64\/v8\)/,
  );
});

test("selectPlatform defaults to this host", () => {
  const mine = defaultPlatform();
  const idx = [entry(1, { os: "linux", architecture: "s390x" }), entry(2, mine)];
  assert.equal(selectPlatform(idx).digest, idx[1]!.digest);
});
