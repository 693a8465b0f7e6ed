import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isBerthError } from "../common/errors.js";
import {
  formatName,
  formatRef,
  hasCredentials,
  type ImageRef,
  isDigest,
  isLoopbackHost,
  parseReference,
  redactReference,
  validateDigest,
} from "./reference.js";

const D = `sha256:${"a".repeat(64)}`;
const D2 = `sha256:${"0123456789abcdef".repeat(4)}`;

describe("parseReference: valid references", () => {
  const cases: [string, ImageRef, string][] = [
    [
      "busybox",
      { domain: "docker.io", path: "library/busybox", tag: "latest" },
      "docker.io/library/busybox:latest",
    ],
    [
      "busybox:1.36",
      { domain: "docker.io", path: "library/busybox", tag: "1.36" },
      "docker.io/library/busybox:1.36",
    ],
    ["user/img", { domain: "docker.io", path: "user/img", tag: "latest" }, "docker.io/user/img:latest"],
    [
      "docker.io/busybox",
      { domain: "docker.io", path: "library/busybox", tag: "latest" },
      "docker.io/library/busybox:latest",
    ],
    [
      "index.docker.io/busybox",
      { domain: "docker.io", path: "library/busybox", tag: "latest" },
      "docker.io/library/busybox:latest",
    ],
    ["index.docker.io/user/x:1", { domain: "docker.io", path: "user/x", tag: "1" }, "docker.io/user/x:1"],
    [
      "docker.io/library/busybox:latest",
      { domain: "docker.io", path: "library/busybox", tag: "latest" },
      "docker.io/library/busybox:latest",
    ],
    ["localhost/x", { domain: "localhost", path: "x", tag: "latest" }, "localhost/x:latest"],
    ["localhost:5000/x", { domain: "localhost:5000", path: "x", tag: "latest" }, "localhost:5000/x:latest"],
    [
      "127.0.0.1:5000/a/b:tag",
      { domain: "127.0.0.1:5000", path: "a/b", tag: "tag" },
      "127.0.0.1:5000/a/b:tag",
    ],
    ["[::1]:5000/x", { domain: "[::1]:5000", path: "x", tag: "latest" }, "[::1]:5000/x:latest"],
    ["[::1]/x:v1", { domain: "[::1]", path: "x", tag: "v1" }, "[::1]/x:v1"],
    [
      "registry.k8s.io/pause:3.9",
      { domain: "registry.k8s.io", path: "pause", tag: "3.9" },
      "registry.k8s.io/pause:3.9",
    ],
    [
      "gcr.io/a/b/c/d:v1.2-rc_3",
      { domain: "gcr.io", path: "a/b/c/d", tag: "v1.2-rc_3" },
      "gcr.io/a/b/c/d:v1.2-rc_3",
    ],
    [
      "quay.io/a_b/c__d/e--f.g",
      { domain: "quay.io", path: "a_b/c__d/e--f.g", tag: "latest" },
      "quay.io/a_b/c__d/e--f.g:latest",
    ],
    [
      `busybox@${D}`,
      { domain: "docker.io", path: "library/busybox", digest: D },
      `docker.io/library/busybox@${D}`,
    ],
    [
      `busybox:1.36@${D2}`,
      { domain: "docker.io", path: "library/busybox", tag: "1.36", digest: D2 },
      `docker.io/library/busybox:1.36@${D2}`,
    ],
    [`localhost:5000/x@${D}`, { domain: "localhost:5000", path: "x", digest: D }, `localhost:5000/x@${D}`],
    [
      `ghcr.io/o/r@sha512:${"b".repeat(128)}`,
      { domain: "ghcr.io", path: "o/r", digest: `sha512:${"b".repeat(128)}` },
      `ghcr.io/o/r@sha512:${"b".repeat(128)}`,
    ],
    ["Example.COM/x", { domain: "Example.COM", path: "x", tag: "latest" }, "Example.COM/x:latest"],
    [
      "  busybox  ",
      { domain: "docker.io", path: "library/busybox", tag: "latest" },
      "docker.io/library/busybox:latest",
    ],
    [
      "my-registry:443/ns/img:TAG_1",
      { domain: "my-registry:443", path: "ns/img", tag: "TAG_1" },
      "my-registry:443/ns/img:TAG_1",
    ],
  ];
  for (const [input, want, formatted] of cases) {
    test(input, () => {
      const got = parseReference(input);
      assert.deepEqual(got, want);
      assert.equal(formatRef(got), formatted);
      assert.equal(formatName(got), `${want.domain}/${want.path}`);
    });
  }
});

describe("parseReference: invalid references", () => {
  const cases: [string, RegExp][] = [
    ["", /empty reference/],
    ["Busybox", /must be lowercase/],
    ["user/Img", /must be lowercase/],
    ["docker.io/Library/x", /must be lowercase/],
    ["busybox:", /invalid tag/],
    ["busybox:-bad", /invalid tag/],
    [`busybox:${"a".repeat(129)}`, /invalid tag/],
    ["busybox:a/b", /invalid|lowercase/],
    ["bus box", /invalid repository name/],
    ["busybox/", /invalid repository name|missing repository name/],
    ["/busybox", /invalid registry host|invalid repository name/],
    ["a//b", /invalid repository name/],
    ["-a/b", /invalid repository name/],
    ["a_/b", /invalid repository name/],
    ["localhost:5000/", /missing repository name|invalid repository name/],
    ["localhost:abc/x", /invalid registry host/],
    ["reg_istry.io/x", /invalid registry host/],
    ["busybox@", /invalid digest/],
    ["busybox@sha256:abc", /sha256: followed by 64 lowercase hex/],
    [`busybox@sha256:${"A".repeat(64)}`, /64 lowercase hex/],
    [`busybox@sha256:${"a".repeat(65)}`, /64 lowercase hex/],
    [`busybox@md5:${"a".repeat(32)}`, /unsupported digest algorithm "md5"/],
    [`busybox@${D}@${D}`, /more than one '@'/],
    ["a".repeat(64), /64-byte hexadecimal/],
    [`${"a".repeat(250)}.io/${"b".repeat(10)}`, /longer than 255/],
  ];
  for (const [input, msg] of cases) {
    test(JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input), () => {
      assert.throws(
        () => parseReference(input),
        (e: unknown) =>
          isBerthError(e, "InvalidArgument") &&
          msg.test((e as Error).message) &&
          /invalid image reference/.test((e as Error).message),
      );
    });
  }
});

test("isDigest / validateDigest", () => {
  assert.equal(isDigest(D), true);
  assert.equal(isDigest(`sha512:${"c".repeat(128)}`), true);
  assert.equal(isDigest("sha256:abc"), false);
  assert.equal(isDigest(`SHA256:${"a".repeat(64)}`), false);
  assert.equal(isDigest(`sha256:${"g".repeat(64)}`), false);
  assert.equal(isDigest("a".repeat(64)), false);
  assert.equal(validateDigest(D), D);
  assert.throws(
    () => validateDigest("nope"),
    (e: unknown) => isBerthError(e, "InvalidArgument"),
  );
});

test("isLoopbackHost", () => {
  for (const h of [
    "localhost",
    "LOCALHOST:5000",
    "127.0.0.1",
    "127.0.0.1:5000",
    "127.255.1.2:1",
    "[::1]",
    "[::1]:5000",
    "::1",
    "foo.localhost",
  ]) {
    assert.equal(isLoopbackHost(h), true, h);
  }
  for (const h of [
    "docker.io",
    "10.0.0.1:5000",
    "128.0.0.1",
    "127.0.0.256",
    "[::2]:5000",
    "localhost.example.com",
    "127.0.0.1.nip.io",
  ]) {
    assert.equal(isLoopbackHost(h), false, h);
  }
});

describe("credentials in a reference", () => {
  const withCredentials = [
    "user:s3cr3t@127.0.0.1:5000/x:y",
    "user@registry.example/app",
    "user:s3cr3t@registry.example",
    "user:s3cr3t@localhost:5000",
    "user:a/b@c@registry.example/app:v1",
  ];
  for (const input of withCredentials) {
    test(`refuses ${JSON.stringify(input)} without echoing the secret`, () => {
      assert.equal(hasCredentials(input), true);
      assert.throws(
        () => parseReference(input),
        (e: unknown) => {
          assert.ok(isBerthError(e, "InvalidArgument"));
          assert.match(e.message, /credentials are not allowed in an image reference/);
          assert.doesNotMatch(e.message, /s3cr3t|user|a\/b@c/);
          return true;
        },
      );
      assert.doesNotMatch(redactReference(input), /s3cr3t|user|a\/b/);
    });
  }

  test("digests are not credentials; redactReference leaves plain references alone", () => {
    for (const input of [
      `busybox@${D}`,
      `busybox:1.36@${D}`,
      `localhost:5000/x@${D}`,
      "busybox@sha256:abc",
    ]) {
      assert.equal(hasCredentials(input), false, input);
      assert.equal(redactReference(input), input);
    }
    assert.equal(redactReference("u:p@127.0.0.1:5000/x:y"), "<credentials>@127.0.0.1:5000/x:y");
    assert.equal(redactReference(`u:p@h.io/x@${D}`), `<credentials>@h.io/x@${D}`);
    assert.equal(redactReference("u:p@h.io"), "<reference with credentials>");
  });
});

test("a rejected huge reference or digest is cut short in the message", () => {
  const huge = "a".repeat(1_000_000);
  for (const f of [() => parseReference(`x:${huge}!`), () => validateDigest(`sha256:${huge}`)]) {
    assert.throws(f, (e: unknown) => isBerthError(e, "InvalidArgument") && e.message.length < 1000);
  }
});

test("a registry port outside 1–65535 is refused", () => {
  for (const r of ["localhost:99999/x", "localhost:0/x", "h.io:70000/a/b:c"]) {
    assert.throws(
      () => parseReference(r),
      (e: unknown) => isBerthError(e, "InvalidArgument"),
      r,
    );
  }
  assert.equal(parseReference("h.io:65535/x").domain, "h.io:65535");
});
