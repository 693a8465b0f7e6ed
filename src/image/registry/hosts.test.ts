import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeServerAddress, type RegistryEndpoint, resolveEndpoints } from "./hosts.js";

const short = (eps: RegistryEndpoint[]) =>
  eps.map(
    (e) =>
      `${e.url}${e.skipVerify ? " [skip-verify]" : ""}${e.mirror ? " [mirror]" : ""}${e.fallback ? " [fallback]" : ""}`,
  );

test("docker.io goes to registry-1.docker.io over https", () => {
  assert.deepEqual(short(resolveEndpoints("docker.io")), ["https://registry-1.docker.io/v2"]);
});

test("mirrors come first, in order, then the registry itself", () => {
  const eps = resolveEndpoints("docker.io", {
    mirrors: {
      "docker.io": {
        endpoints: ["https://mirror.gcr.io", "http://10.0.0.5:5000/", "https://registry-1.docker.io"],
      },
    },
  });
  assert.deepEqual(short(eps), [
    "https://mirror.gcr.io/v2 [mirror]",
    "http://10.0.0.5:5000/v2 [mirror]",
    "https://registry-1.docker.io/v2",
  ]);
});

test("mirror endpoint paths are kept (and /v2 not doubled)", () => {
  const eps = resolveEndpoints("registry.k8s.io", {
    mirrors: { "registry.k8s.io": { endpoints: ["https://harbor.local/proxy/k8s", "https://m.local/v2/"] } },
  });
  assert.deepEqual(short(eps), [
    "https://harbor.local/proxy/k8s/v2 [mirror]",
    "https://m.local/v2 [mirror]",
    "https://registry.k8s.io/v2",
  ]);
});

test('"*" mirror applies to registries without their own entry', () => {
  const config = {
    mirrors: { "*": { endpoints: ["https://all.local"] }, "quay.io": { endpoints: ["https://q.local"] } },
  };
  assert.deepEqual(short(resolveEndpoints("ghcr.io", config)), [
    "https://all.local/v2 [mirror]",
    "https://ghcr.io/v2",
  ]);
  assert.deepEqual(short(resolveEndpoints("quay.io", config)), [
    "https://q.local/v2 [mirror]",
    "https://quay.io/v2",
  ]);
});

test("loopback registries use plain http; scheme-less mirrors follow the same rule", () => {
  assert.deepEqual(short(resolveEndpoints("localhost:5000")), ["http://localhost:5000/v2"]);
  assert.deepEqual(short(resolveEndpoints("127.0.0.1:5000")), ["http://127.0.0.1:5000/v2"]);
  assert.deepEqual(short(resolveEndpoints("[::1]:5000")), ["http://[::1]:5000/v2"]);
  assert.deepEqual(
    short(resolveEndpoints("docker.io", { mirrors: { "docker.io": { endpoints: ["127.0.0.1:9999"] } } })),
    ["http://127.0.0.1:9999/v2 [mirror]", "https://registry-1.docker.io/v2"],
  );
});

test("insecure registries: https without verification, then plain-http fallback", () => {
  const eps = resolveEndpoints("myreg.local:5000", { configs: { "myreg.local:5000": { insecure: true } } });
  assert.deepEqual(short(eps), [
    "https://myreg.local:5000/v2 [skip-verify]",
    "http://myreg.local:5000/v2 [fallback]",
  ]);
  // an explicit https mirror of an insecure host skips verification but does not downgrade
  const m = resolveEndpoints("docker.io", {
    mirrors: { "docker.io": { endpoints: ["https://m.local"] } },
    configs: { "m.local": { insecure: true } },
  });
  assert.deepEqual(short(m), [
    "https://m.local/v2 [skip-verify] [mirror]",
    "https://registry-1.docker.io/v2",
  ]);
});

test("credentials only go to the host they belong to", () => {
  const config = {
    mirrors: { "docker.io": { endpoints: ["https://mirror.local"] } },
    configs: {
      "mirror.local": { auth: { username: "m", password: "mp" } },
      "docker.io": { auth: { auth: Buffer.from("hub:hp").toString("base64") } },
    },
  };
  const [mirror, hub] = resolveEndpoints("docker.io", config);
  assert.deepEqual(mirror?.credentials, { username: "m", password: "mp" });
  assert.deepEqual(hub?.credentials, { username: "hub", password: "hp" });

  // CRI auth without server_address: the image's registry only, never the mirror
  const [m2, h2] = resolveEndpoints(
    "docker.io",
    { mirrors: config.mirrors },
    { username: "k", password: "kp" },
  );
  assert.equal(m2?.credentials, undefined);
  assert.deepEqual(h2?.credentials, { username: "k", password: "kp" });

  // CRI auth naming a server: that host only
  const [m3, h3] = resolveEndpoints(
    "docker.io",
    { mirrors: config.mirrors },
    { username: "k", password: "kp", serverAddress: "https://mirror.local" },
  );
  assert.deepEqual(m3?.credentials, { username: "k", password: "kp" });
  assert.equal(h3?.credentials, undefined);
  const [, h4] = resolveEndpoints(
    "docker.io",
    { mirrors: config.mirrors },
    { username: "k", password: "kp", serverAddress: "https://index.docker.io/v1/" },
  );
  assert.deepEqual(h4?.credentials, { username: "k", password: "kp" });

  // CRI auth wins over the configured credentials of the same host
  const [, h5] = resolveEndpoints("docker.io", config, { registryToken: "tok" });
  assert.deepEqual(h5?.credentials, { registryToken: "tok" });
});

test("normalizeServerAddress", () => {
  assert.equal(normalizeServerAddress("https://index.docker.io/v1/"), "docker.io");
  assert.equal(normalizeServerAddress("quay.io"), "quay.io");
  assert.equal(normalizeServerAddress("http://LOCALHOST:5000/"), "localhost:5000");
});

test("invalid mirror endpoints are rejected", () => {
  assert.throws(
    () => resolveEndpoints("docker.io", { mirrors: { "docker.io": { endpoints: ["ftp://x"] } } }),
    /must be http or https/,
  );
});
