import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isBerthError } from "../../common/errors.js";
import { type Challenge, decodeBasicAuth, parseWwwAuthenticate, toCredentials } from "./auth.js";

describe("parseWwwAuthenticate", () => {
  const cases: [string, string | string[] | undefined, Challenge[]][] = [
    [
      "docker hub bearer",
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      [
        {
          scheme: "bearer",
          params: {
            realm: "https://auth.docker.io/token",
            service: "registry.docker.io",
            scope: "repository:library/busybox:pull",
          },
        },
      ],
    ],
    [
      "scope with comma inside quotes, spaces, error param",
      'Bearer realm="https://r/token", service="svc", scope="repository:a/b:pull,push", error="insufficient_scope"',
      [
        {
          scheme: "bearer",
          params: {
            realm: "https://r/token",
            service: "svc",
            scope: "repository:a/b:pull,push",
            error: "insufficient_scope",
          },
        },
      ],
    ],
    ["basic", 'Basic realm="Registry Realm"', [{ scheme: "basic", params: { realm: "Registry Realm" } }]],
    [
      "scheme case and unquoted token values",
      "BASIC Realm=simple",
      [{ scheme: "basic", params: { realm: "simple" } }],
    ],
    [
      "two challenges in one header",
      'Basic realm="x", Bearer realm="https://t/token",service="s"',
      [
        { scheme: "basic", params: { realm: "x" } },
        { scheme: "bearer", params: { realm: "https://t/token", service: "s" } },
      ],
    ],
    [
      "two header values",
      ['Basic realm="x"', 'Bearer realm="y"'],
      [
        { scheme: "basic", params: { realm: "x" } },
        { scheme: "bearer", params: { realm: "y" } },
      ],
    ],
    ["escaped quote", 'Basic realm="a \\"b\\" c"', [{ scheme: "basic", params: { realm: 'a "b" c' } }]],
    ["token68", "Negotiate abc123==", [{ scheme: "negotiate", params: { token68: "abc123==" } }]],
    ["scheme only", "Bearer", [{ scheme: "bearer", params: {} }]],
    ["empty", "", []],
    ["missing", undefined, []],
  ];
  for (const [name, input, want] of cases) {
    test(name, () => assert.deepEqual(parseWwwAuthenticate(input), want));
  }
});

test("toCredentials decodes auth and maps CRI / hosts-config field names", () => {
  const auth = Buffer.from("alice:pa:ss").toString("base64");
  assert.deepEqual(toCredentials({ auth }), { username: "alice", password: "pa:ss" });
  assert.deepEqual(toCredentials({ username: "u", password: "p", auth }), { username: "u", password: "p" });
  assert.deepEqual(toCredentials({ identitytoken: "rt" }), { identityToken: "rt" });
  assert.deepEqual(toCredentials({ identityToken: "rt2", registryToken: "bt" }), {
    identityToken: "rt2",
    registryToken: "bt",
  });
  assert.deepEqual(toCredentials({ registry_token: "bt", identity_token: "it" }), {
    identityToken: "it",
    registryToken: "bt",
  });
  assert.equal(toCredentials({}), undefined);
  assert.equal(toCredentials({ serverAddress: "docker.io" }), undefined);
  assert.equal(toCredentials(undefined), undefined);
  assert.deepEqual(decodeBasicAuth(Buffer.from("a:").toString("base64")), { username: "a", password: "" });
  assert.throws(
    () => decodeBasicAuth(Buffer.from("nocolon").toString("base64")),
    (e: unknown) => isBerthError(e, "InvalidArgument"),
  );
});
