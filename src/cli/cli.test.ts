import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { completionScript } from "./completion.js";
import { containerConfigFromJson, podConfigFromJson } from "./config-json.js";
import { describeError, stripRuncNoise } from "./errors.js";
import { drawTimeline, parseBytes } from "./extra.js";
import { rfc3339 } from "./humanize.js";
import { filterPods } from "./list.js";
import { CriLogDecoder, decodeCriLog, parseSince } from "./logs.js";
import { parseGlobals, splitArgs } from "./main.js";
import { goTemplate, outputFormat, toYaml } from "./output.js";
import { renderLayers } from "./progress.js";
import { pick } from "./resolve.js";
import { parseEnv, parsePublish, parseUser, parseVolume } from "./run.js";
import { detachFilter, parseDetachKeys, parsePortPair } from "./streaming.js";
import { closestVerb, verbs } from "./verbs.js";

describe("berth CLI arguments", () => {
  it("splits run/exec arguments at the command, options before it only", () => {
    const opts = verbs["run"]!.options!;
    assert.deepEqual(splitArgs(["-it", "--rm", "-e", "A=1", "img", "sh", "-c", "ls -t"], opts, 1), {
      head: ["-it", "--rm", "-e", "A=1", "img"],
      command: ["sh", "-c", "ls -t"],
    });
    assert.deepEqual(splitArgs(["-p8080:80", "img", "--", "x"], opts, 1), {
      head: ["-p8080:80", "img"],
      command: ["x"],
    });
    assert.deepEqual(splitArgs(["c", "--", "ls"], verbs["exec"]!.options!, 1), {
      head: ["c"],
      command: ["ls"],
    });
  });

  it("reads global options before the verb only", () => {
    assert.deepEqual(parseGlobals(["-r", "unix:///x", "--timeout=3", "exec", "-t", "c"]), {
      globals: { endpoint: "unix:///x", timeout: "3" },
      rest: ["exec", "-t", "c"],
    });
    assert.throws(() => parseGlobals(["--bogus", "ps"]), /unknown option --bogus/);
  });

  it("suggests the closest verb", () => {
    assert.equal(closestVerb("psa"), "ps");
    assert.equal(closestVerb("inspct"), "inspect");
    assert.equal(closestVerb("zzzzzzzz"), undefined);
  });

  it("parses run's port, env, volume and user options", () => {
    assert.deepEqual(parsePublish("8080:80"), { hostIp: "", hostPort: 8080, containerPort: 80, protocol: 0 });
    assert.deepEqual(parsePublish("127.0.0.1:53:53/udp"), {
      hostIp: "127.0.0.1",
      hostPort: 53,
      containerPort: 53,
      protocol: 1,
    });
    for (const bad of ["", "x", "1:2:3:4", "80:0", "70000:1"])
      assert.throws(() => parsePublish(bad), /--publish/);
    process.env["BERTH_TEST_ENV"] = "from-env";
    assert.deepEqual(
      parseEnv(["A=1", "BERTH_TEST_ENV", "UNSET_XYZ"], ["f"], () => "# c\nB=2\n\nC=a=b\n"),
      [
        { key: "B", value: "2" },
        { key: "C", value: "a=b" },
        { key: "A", value: "1" },
        { key: "BERTH_TEST_ENV", value: "from-env" },
      ],
    );
    assert.throws(() => parseEnv(["=x"], []), /invalid environment/);
    assert.deepEqual(
      parseVolume("/data:/d:ro", () => true),
      { hostPath: "/data", containerPath: "/d", readonly: true },
    );
    assert.throws(() => parseVolume("/nope:/d", () => false), /does not exist/);
    assert.throws(() => parseVolume("/a:rel", () => true), /--volume/);
    assert.deepEqual(parseUser("1000:50"), { runAsUser: { value: 1000n }, runAsGroup: { value: 50n } });
    assert.deepEqual(parseUser("nobody"), { runAsUsername: "nobody" });
    assert.deepEqual(parsePortPair("0:80"), { local: 0, remote: 80 });
  });

  it("detaches on Ctrl-P Ctrl-Q and passes other bytes on", async () => {
    assert.deepEqual(parseDetachKeys("ctrl-p,ctrl-q"), Buffer.from([0x10, 0x11]));
    let detached = false;
    const f = detachFilter(Buffer.from([0x10, 0x11]), () => {
      detached = true;
    });
    const got: Buffer[] = [];
    f.on("data", (b: Buffer) => got.push(b));
    f.write(Buffer.from([0x61, 0x10, 0x62]));
    f.write(Buffer.from([0x10]));
    f.write(Buffer.from([0x11, 0x63]));
    await new Promise((r) => setImmediate(r));
    assert.equal(detached, true);
    assert.deepEqual(Buffer.concat(got), Buffer.from([0x61, 0x10, 0x62]));
  });
});

describe("berth CLI config files", () => {
  it("accepts camelCase and snake_case proto names, enums by name, and names unknown keys", () => {
    const pod = podConfigFromJson(
      {
        metadata: { name: "p", uid: "u", namespace: "n" },
        log_directory: "/tmp/logs",
        port_mappings: [{ container_port: 80, host_port: 8080, protocol: "UDP" }],
        labels: { some_label: "x" },
        linux: { security_context: { namespace_options: { network: "NODE", pid: 1 } } },
      },
      "pod.json",
    );
    assert.equal(pod.logDirectory, "/tmp/logs");
    assert.deepEqual(pod.portMappings[0], { protocol: 1, containerPort: 80, hostPort: 8080, hostIp: "" });
    assert.deepEqual(pod.labels, { some_label: "x" });
    assert.equal(pod.linux?.securityContext?.namespaceOptions?.network, 2);
    assert.throws(() => podConfigFromJson({ log_dir: "/x" }, "pod.json"), /pod\.json: unknown key "log_dir"/);
    assert.throws(
      () => podConfigFromJson({ linux: { security_context: { bogus: 1 } } }, "pod.json"),
      /unknown key "linux\.security_context\.bogus"/,
    );
    const c = containerConfigFromJson(
      {
        metadata: { name: "c" },
        image: { image: "busybox" },
        log_path: "c.log",
        envs: [{ key: "A", value: "1" }],
        linux: {
          resources: { memory_limit_in_bytes: "67108864" },
          security_context: { run_as_user: { value: 0 } },
        },
      },
      "c.json",
    );
    assert.equal(c.logPath, "c.log");
    assert.equal(c.linux?.resources?.memoryLimitInBytes, 67108864n);
    assert.equal(c.linux?.securityContext?.runAsUser?.value, 0n);
    assert.throws(
      () => containerConfigFromJson({ envs: [{ name: "A" }] }, "c.json"),
      /unknown key "envs\[0\]\.name"/,
    );
    assert.throws(() => containerConfigFromJson({ tty: "yes" }, "c.json"), /"tty" must be true or false/);
  });
});

describe("berth CLI output", () => {
  const data = {
    items: [
      { id: "abc", n: 1, labels: { a: "b" } },
      { id: "6e9", n: 2n, labels: {} },
    ],
  };

  it("writes YAML, Go-style templates and checks -o", () => {
    assert.equal(
      toYaml(data),
      'items:\n- id: abc\n  n: 1\n  labels:\n    a: b\n- id: "6e9"\n  n: 2\n  labels: {}',
    );
    assert.equal(goTemplate('{{range .items}}{{.id}}={{.n}}{{"\\n"}}{{end}}', data), "abc=1\n6e9=2\n");
    assert.equal(goTemplate("{{json .items}}", { items: [1] }), "[1]");
    assert.throws(() => goTemplate("{{if .x}}", {}), /without \{\{end\}\}/);
    assert.deepEqual(outputFormat("go-template={{.id}}", ["go-template"]), { template: "{{.id}}" });
    assert.throws(() => outputFormat("xml", ["table", "json"]), /unsupported output format "xml"/);
  });

  it("formats times and draws timelines", () => {
    assert.equal(rfc3339(1_700_000_000_123_456_789n), "2023-11-14T22:13:20.123456789Z");
    assert.equal(rfc3339(0n), undefined);
    const chart = drawTimeline(
      [
        { label: "a", span: { phase: "a", startMs: 0, durationMs: 10 } },
        { label: "bb", span: { phase: "b", startMs: 10, durationMs: 30 } },
      ],
      60,
    );
    assert.match(chart, /^a {2}│█+ +│ +10\.0 ms\nbb │ +█+│ +30\.0 ms\n/);
    assert.equal(parseBytes("64m"), 64n * 1024n * 1024n);
  });

  it("filters pods by name, state, labels and picks by name or prefix", () => {
    const pod = (id: string, name: string, state: number, labels: Record<string, string>) =>
      ({
        id,
        metadata: { name, uid: "", namespace: "default", attempt: 0 },
        state,
        createdAt: 1n,
        labels,
      }) as never;
    const pods = [pod("aaa1", "web", 0, { app: "web" }), pod("aab2", "db", 1, { app: "db" })];
    assert.deepEqual(
      filterPods(pods, { state: "ready" }).map((p: { id: string }) => p.id),
      ["aaa1"],
    );
    assert.deepEqual(
      filterPods(pods, { label: ["app=db"] }).map((p: { id: string }) => p.id),
      ["aab2"],
    );
    assert.deepEqual(
      filterPods(pods, {}, "^d").map((p: { id: string }) => p.id),
      ["aab2"],
    );
    assert.throws(() => filterPods(pods, { state: "gone" }), /invalid --state/);
    assert.equal(pick(pods, "db", "pod"), pods[1]);
    assert.equal(pick(pods, "aaa", "pod"), pods[0]);
    assert.throws(() => pick(pods, "aa", "pod"), /ambiguous/);
    assert.throws(() => pick(pods, "zz", "pod"), /no such pod: zz \(NotFound\)/);
  });

  it("draws pull progress a layer a line", () => {
    const lines = renderLayers(
      [
        { digest: "sha256:aaaaaaaaaaaa1111", size: 2_000_000n, downloaded: 1_000_000n, state: "downloading" },
        { digest: "sha256:bbbbbbbbbbbb2222", size: 10n, downloaded: 0n, state: "waiting" },
        { digest: "sha256:cccccccccccc3333", size: 5_000n, downloaded: 5_000n, state: "done" },
      ],
      65,
    );
    assert.deepEqual(lines, [
      "aaaaaaaaaaaa  [=========>          ] 1MB/2MB",
      "bbbbbbbbbbbb  waiting",
      "cccccccccccc  [====================] done 5kB",
    ]);
  });

  it("prints completion scripts", () => {
    assert.match(completionScript("bash"), /complete -F _berth berth/);
    assert.match(completionScript("zsh"), /#compdef berth/);
    assert.match(completionScript("fish"), /complete -c berth .* -a run/);
    assert.throws(() => completionScript("tcsh"), /unsupported shell/);
  });
});

describe("berth CLI logs and errors", () => {
  it("decodes CRI log lines, joining partial records per stream", () => {
    const d = new CriLogDecoder();
    assert.deepEqual(d.push("t1 stdout P hel"), []);
    assert.deepEqual(d.push("\nt2 stderr F oops\nt3 stdout F lo\n"), [
      { time: "t2", stream: "stderr", text: "oops\n" },
      { time: "t1", stream: "stdout", text: "hello\n" },
    ]);
    assert.equal(decodeCriLog("t stdout F a\nt stdout F b"), "a\nb\n");
    assert.equal(parseSince("1h30m", 10_000_000), 10_000_000 - 5_400_000);
    assert.equal(parseSince("2026-01-01T00:00:00Z"), Date.parse("2026-01-01T00:00:00Z"));
    assert.throws(() => parseSince("yesterday"), /invalid --since/);
  });

  it("words errors in one line naming the cause", () => {
    assert.equal(
      stripRuncNoise('time="2026-01-01T00:00:00Z" level=error msg="exec failed: \\"nope\\": not found"'),
      'exec failed: "nope": not found',
    );
    assert.match(
      describeError(
        { code: 14, details: "No connection established. Last error: connect ENOENT /x/y.sock", message: "" },
        "unix:///x/y.sock",
      ).text,
      /^cannot connect to the runtime: no socket at \/x\/y\.sock/,
    );
    // a registry that is down is the registry's fault, not the runtime's socket
    assert.equal(
      describeError(
        { code: 14, details: "cannot reach registry r:5000: ECONNREFUSED", message: "" },
        "unix:///x.sock",
      ).text,
      "cannot reach registry r:5000: ECONNREFUSED (UNAVAILABLE)",
    );
    assert.match(
      describeError({ code: 4, details: "Deadline exceeded", message: "" }, "/x", 1).text,
      /after 1s \(--timeout\)/,
    );
  });
});

describe("berth CLI errors across module copies", () => {
  it("recognizes a CliError or UsageError from a second copy of errors.js (the bundled entry's)", async () => {
    const copy = (await import(`./errors.js?copy=${Date.now()}`)) as typeof import("./errors.js");
    const { CliError, UsageError } = await import("./errors.js");
    assert.notEqual(copy.CliError, CliError);
    assert.ok(new copy.CliError("x", 125) instanceof CliError);
    assert.ok(new copy.UsageError("x") instanceof UsageError);
    assert.ok(!(new copy.UsageError("x") instanceof CliError));
    assert.ok(!(new Error("x") instanceof UsageError));
    assert.deepEqual(describeError(new copy.CliError("gone", 125), "unix:///x"), { text: "gone", code: 125 });
  });
});
