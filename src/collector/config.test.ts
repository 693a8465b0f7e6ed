import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parsePipeline } from "./config.js";
import { SCHEMAS } from "./pipeline.js";

const parse = (text: string) => parsePipeline("/etc/collector/app.yaml", text, SCHEMAS);

describe("pipeline config", () => {
  it("parses iLogtail's format", () => {
    const cfg = parse(`
enable: true
inputs:
  - Type: input_container_stdio
    IgnoringStderr: true
    ContainerFilters:
      K8sNamespaceRegex: ^prod$
      IncludeK8sLabel: { app: web }
processors:
  - Type: processor_parse_regex_native
    SourceKey: content
    Regex: (\\w+) (.*)
    Keys: [level, msg]
flushers:
  - Type: flusher_stdout
    FileName: /tmp/out.json
`);
    assert.equal(cfg?.name, "app");
    assert.equal(cfg?.inputs[0]?.type, "input_container_stdio");
    assert.deepEqual(cfg?.inputs[0]?.params["ContainerFilters"], {
      K8sNamespaceRegex: "^prod$",
      IncludeK8sLabel: { app: "web" },
    });
    assert.equal(parse("enable: false\ninputs: []\n"), null);
  });

  it("names the file, the plugin and the key of what is wrong", () => {
    const bad = (text: string, re: RegExp) =>
      assert.throws(
        () => parse(text),
        (e: Error) => e instanceof ConfigError && re.test(e.message),
      );
    const F = "flushers:\n  - Type: flusher_stdout\n";
    bad(
      `inputs:\n  - Type: input_nope\n${F}`,
      /app\.yaml: inputs\[0\] \(input_nope\): unknown plugin type "input_nope"/,
    );
    bad(
      `inputs:\n  - Type: input_container_stdio\n    Foo: 1\n${F}`,
      /inputs\[0\] \(input_container_stdio\): unknown parameter "Foo"/,
    );
    bad(
      `inputs:\n  - Type: input_container_stdio\n    ContainerFilters: { K8sPodRgx: x }\n${F}`,
      /unknown parameter "ContainerFilters\.K8sPodRgx"/,
    );
    bad(
      `inputs:\n  - Type: input_container_stdio\n    IgnoringStdout: "yes"\n${F}`,
      /parameter "IgnoringStdout": want true or false/,
    );
    bad(
      `inputs:\n  - Type: input_container_stdio\nflushers:\n  - Type: flusher_http\n`,
      /flushers\[0\] \(flusher_http\): parameter "RemoteURL" is required/,
    );
    bad(`inputs:\n  - Type: input_container_stdio\n`, /at least one flusher/);
    bad(`input:\n  - Type: input_container_stdio\n${F}`, /app\.yaml: input: unknown top-level key/);
    bad("inputs: [", /not valid YAML/);
  });
});
