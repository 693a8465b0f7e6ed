import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { configFromToml, defaultConfig, loadConfig, parseConfig } from "./config.js";

describe("config", () => {
  it("fills defaults for an empty file", () => {
    assert.deepEqual(parseConfig("", "t.toml"), defaultConfig());
  });

  it("reads every documented key", () => {
    const c = parseConfig(
      `root = "/r"
state = "/s"
listen = "/s/b.sock"
log_level = "debug"
[image]
max_concurrent_downloads = 5
discard_unpacked_layers = true
platform = "linux/arm64"
max_manifest_bytes = 2048
connect_timeout_seconds = 5
response_header_timeout_seconds = 7
body_idle_timeout_seconds = 9
[registry.mirrors."registry.k8s.io"]
endpoints = ["http://127.0.0.1:5000/", "https://mirror.example"]
[registry.configs."my.example:5000"]
insecure = true
[registry.configs."my.example:5000".auth]
username = "u"
password = "p"
[streaming]
address = "127.0.0.1:10010"
idle_timeout_seconds = 60
`,
      "t.toml",
    );
    assert.equal(c.root, "/r");
    assert.equal(c.listen, "/s/b.sock");
    assert.equal(c.logLevel, "debug");
    assert.deepEqual(c.image, {
      maxConcurrentDownloads: 5,
      discardUnpackedLayers: true,
      platform: "linux/arm64",
      maxManifestBytes: 2048,
      connectTimeoutSeconds: 5,
      responseHeaderTimeoutSeconds: 7,
      bodyIdleTimeoutSeconds: 9,
    });
    assert.deepEqual(c.registry.mirrors["registry.k8s.io"]?.endpoints, [
      "http://127.0.0.1:5000",
      "https://mirror.example",
    ]);
    assert.equal(c.registry.configs["my.example:5000"]?.insecure, true);
    assert.equal(c.registry.configs["my.example:5000"]?.auth?.username, "u");
    assert.deepEqual(c.streaming, { address: "127.0.0.1:10010", idleTimeoutSeconds: 60 });
  });

  const bad: Array<[string, RegExp]> = [
    ['rooot = "/x"', /unknown key "rooot"/],
    [
      "[image]\nmax_concurrent_downloads = 0",
      /"image\.max_concurrent_downloads" must be an integer from 1 to 64/,
    ],
    ['[image]\nmax_concurrent_downloads = "3"', /must be an integer/],
    ['root = "relative"', /"root" must be an absolute path/],
    ['log_level = "loud"', /"log_level" must be one of/],
    ['[image]\nplatform = "amd64"', /"image\.platform"/],
    ['[registry.mirrors."x"]\nendpoints = ["ftp://a"]', /must use http or https/],
    ['[registry.mirrors."x"]\nendpoint = ["http://a"]', /unknown key "registry\.mirrors\."x"\.endpoint"/],
    ['[registry.configs."x"]\ninsecure = "yes"', /"registry\.configs\."x"\.insecure" must be true or false/],
    [
      "[image]\nconnect_timeout_seconds = 0",
      /"image\.connect_timeout_seconds" must be an integer from 1 to 3600/,
    ],
    [
      "[image]\nresponse_header_timeout_seconds = 1.5",
      /"image\.response_header_timeout_seconds" must be an integer/,
    ],
    ['[image]\nbody_idle_timeout_seconds = "60"', /"image\.body_idle_timeout_seconds" must be an integer/],
    ["[streaming]\nidle_timeout_seconds = 0", /"streaming\.idle_timeout_seconds" must be an integer from 1/],
    ["root = ", /t\.toml/],
  ];
  for (const [text, message] of bad) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseConfig(text, "t.toml"),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, "InvalidArgument");
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  it("treats a missing default file as empty but a missing explicit file as an error", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-cfg-"));
    try {
      await assert.rejects(loadConfig(join(dir, "missing.toml")), /cannot read config/);
      const file = join(dir, "ok.toml");
      await writeFile(file, 'log_level = "warn"\n');
      assert.equal((await loadConfig(file)).logLevel, "warn");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("accepts every key of docs/berth.example.toml, uncommented", async () => {
    const { readFile: read } = await import("node:fs/promises");
    const text = await read(new URL("../../docs/berth.example.toml", import.meta.url), "utf8");
    const live = text.replace(/^# (\[|[a-z_]+ = )/gm, "$1");
    const c = parseConfig(live, "berth.example.toml");
    assert.equal(c.runtime.handlers["runc-debug"]?.runtimeRoot, "/run/berth/runc-debug");
    assert.deepEqual(c.registry.mirrors["registry.k8s.io"]?.endpoints, ["http://127.0.0.1:5000"]);
    assert.equal(c.cni.confDirs[0], "/etc/cni/net.d");
    assert.equal(c.image.responseHeaderTimeoutSeconds, 30);
  });

  it("a sandbox handler: runtime_type and runtime_args; unknown types refused", () => {
    const c = parseConfig(
      '[runtime.handlers.runsc]\nruntime_path = "/usr/bin/runsc"\nruntime_type = "sandbox"\nruntime_args = ["--platform=ptrace", "--network=host"]\n',
      "t.toml",
    );
    assert.equal(c.runtime.handlers["runsc"]?.runtimeType, "sandbox");
    assert.deepEqual(c.runtime.handlers["runsc"]?.runtimeArgs, ["--platform=ptrace", "--network=host"]);
    assert.equal(c.runtime.handlers["runsc"]?.runtimeRoot, "/run/berth/runsc");
    assert.equal(c.runtime.handlers["runc"]?.runtimeType, "oci");
    assert.throws(
      () => parseConfig('[runtime.handlers.kata]\nruntime_type = "vm"\n', "t.toml"),
      /"runtime\.handlers\."kata"\.runtime_type" is "vm": must be "oci" .* or "sandbox"/,
    );
    assert.throws(
      () => parseConfig('[runtime.handlers.runsc]\nruntime_args = ["ptrace"]\n', "t.toml"),
      /runtime_args" must hold flags/,
    );
    assert.throws(
      () => parseConfig('[runtime.handlers.runsc]\nruntime_args = "--x"\n', "t.toml"),
      /runtime_args" must be an array of strings/,
    );
  });

  it("validates flag overrides the same way", () => {
    assert.throws(() => configFromToml({ listen: "sock" }), /"listen" must be an absolute path/);
  });
});

describe("config: keys that are also Object.prototype names, and dates", () => {
  const rejects = (text: string, message: RegExp) =>
    assert.throws(
      () => parseConfig(text, "t.toml"),
      (err: Error & { code?: string }) => err.code === "InvalidArgument" && message.test(err.message),
    );

  it("a default handler must be a configured one, not an inherited property", () => {
    rejects('[runtime]\ndefault_handler = "constructor"', /no \[runtime\.handlers\] entry/);
    rejects(
      '[runtime]\ndefault_handler = "runtimePath"\n[runtime.handlers."__proto__"]\nruntime_path = "/x"',
      /no \[runtime\.handlers\] entry/,
    );
  });

  it('keeps a handler, mirror or registry host named "__proto__"', () => {
    const c = parseConfig(
      `[runtime]
default_handler = "__proto__"
[runtime.handlers."__proto__"]
runtime_path = "/x"
[registry.mirrors."__proto__"]
endpoints = ["http://m"]
[registry.configs."__proto__"]
insecure = true
`,
      "t.toml",
    );
    assert.deepEqual(Object.keys(c.runtime.handlers), ["runc", "__proto__"]);
    assert.equal(Object.getOwnPropertyDescriptor(c.runtime.handlers, "__proto__")?.value.runtimePath, "/x");
    assert.deepEqual(Object.keys(c.registry.mirrors), ["__proto__"]);
    assert.deepEqual(Object.keys(c.registry.configs), ["__proto__"]);
    assert.equal(Object.getPrototypeOf(c.registry.mirrors), Object.prototype);
  });

  it("a date where a table belongs is an error", () => {
    rejects("image = 1979-05-27", /"image" must be a table/);
    rejects("[registry]\nmirrors = 1979-05-27T07:32:00Z", /"registry\.mirrors" must be a table/);
  });
});
