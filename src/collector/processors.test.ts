import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createProcessor, multilineOptions, splitDelimited } from "./processors.js";
import { formatRfc3339Ns, type LogRecord } from "./record.js";
import { compileTimeFormat } from "./timestamp.js";

const rec = (content: string): LogRecord => ({ timeNs: 0n, source: "stdout", fields: { content }, tags: {} });
const run = (type: string, params: Record<string, unknown>, contents: string[]) =>
  createProcessor(type, params)
    .process(contents.map(rec))
    .map((r) => r.fields);

describe("processors", () => {
  it("parse_regex: whole-match, Keys in group order; failures drop or keep the source", () => {
    const p = { Regex: "(\\S+) (\\d+) (.*)", Keys: ["level", "code", "msg"] };
    assert.deepEqual(run("processor_parse_regex_native", p, ["INFO 200 all good"]), [
      { level: "INFO", code: "200", msg: "all good" },
    ]);
    assert.deepEqual(run("processor_parse_regex_native", p, ["nope"]), []);
    assert.deepEqual(
      run("processor_parse_regex_native", { ...p, KeepingSourceWhenParseFail: true }, ["nope"]),
      [{ content: "nope" }],
    );
    assert.deepEqual(
      run(
        "processor_parse_regex_native",
        { ...p, KeepingSourceWhenParseSucceed: true, RenamedSourceKey: "raw" },
        ["E 1 x"],
      ),
      [{ raw: "E 1 x", level: "E", code: "1", msg: "x" }],
    );
  });

  it("parse_json: object fields, non-strings as JSON", () => {
    assert.deepEqual(run("processor_parse_json_native", {}, ['{"a":"x","n":1,"o":{"b":true}}']), [
      { a: "x", n: "1", o: '{"b":true}' },
    ]);
    assert.deepEqual(run("processor_parse_json_native", { KeepingSourceWhenParseFail: true }, ["[1]"]), [
      { content: "[1]" },
    ]);
  });

  it("parse_delimiter: quotes, short rows, overflow extend/keep/discard", () => {
    assert.deepEqual(splitDelimited('a,"b,""c""",d', ",", '"'), ["a", 'b,"c"', "d"]);
    assert.deepEqual(splitDelimited("a||b", "||", ""), ["a", "b"]);
    const p = { Separator: ",", Keys: ["a", "b"] };
    assert.deepEqual(run("processor_parse_delimiter_native", p, ["1,2,3"]), [
      { a: "1", b: "2", __column2__: "3" },
    ]);
    assert.deepEqual(
      run("processor_parse_delimiter_native", { ...p, OverflowedFieldsTreatment: "keep" }, ["1,2,3"]),
      [{ a: "1", b: "2,3" }],
    );
    assert.deepEqual(
      run("processor_parse_delimiter_native", { ...p, OverflowedFieldsTreatment: "discard" }, ["1,2,3"]),
      [{ a: "1", b: "2" }],
    );
    assert.deepEqual(
      run("processor_parse_delimiter_native", { ...p, AllowingShortenedFields: false }, ["1"]),
      [],
    );
  });

  it("parse_timestamp: strftime formats, fractions, zones", () => {
    const f = compileTimeFormat("%Y-%m-%d %H:%M:%S.%f", 8 * 60);
    assert.equal(formatRfc3339Ns(f("2026-12-06 11:23:46.123456 rest")!), "2026-12-06T03:23:46.123456000Z");
    const g = compileTimeFormat("%d/%b/%Y:%H:%M:%S %z");
    assert.equal(formatRfc3339Ns(g("06/Dec/2026:05:00:00 +0200")!), "2026-12-06T03:00:00.000000000Z");
    assert.equal(formatRfc3339Ns(compileTimeFormat("%s")("1700000000")!), "2023-11-14T22:13:20.000000000Z");
    const [r] = createProcessor("processor_parse_timestamp_native", {
      SourceKey: "t",
      SourceFormat: "%Y-%m-%dT%H:%M:%S",
      SourceTimezone: "GMT+00:00",
    }).process([{ timeNs: 0n, source: "", fields: { t: "2026-01-02T03:04:05" }, tags: {} }]);
    assert.equal(formatRfc3339Ns(r!.timeNs), "2026-01-02T03:04:05.000000000Z");
    assert.throws(() => compileTimeFormat("%Q"), /unsupported/);
  });

  it("filter_regex: all includes must match, any exclude drops", () => {
    const out = run(
      "processor_filter_regex_native",
      { Include: { content: "line-\\d*[02468]" }, Exclude: { content: "line-1.*" } },
      ["line-0", "line-1", "line-2", "line-10", "x-2"],
    );
    assert.deepEqual(out, [{ content: "line-0" }, { content: "line-2" }]);
  });

  it("desensitize: const and md5, first or all occurrences", () => {
    const base = {
      SourceKey: "content",
      ContentPatternBeforeReplacedString: "pwd=",
      ReplacedContentPattern: "[^,]+",
    };
    assert.deepEqual(
      run("processor_desensitize_native", { ...base, Method: "const", ReplacingString: "***" }, [
        "pwd=a,pwd=b",
      ]),
      [{ content: "pwd=***,pwd=***" }],
    );
    assert.deepEqual(
      run(
        "processor_desensitize_native",
        { ...base, Method: "const", ReplacingString: "*", ReplacingAll: false },
        ["pwd=a,pwd=b"],
      ),
      [{ content: "pwd=*,pwd=b" }],
    );
    assert.deepEqual(run("processor_desensitize_native", { ...base, Method: "md5" }, ["pwd=a"]), [
      { content: "pwd=0cc175b9c0f1b6a831c399e269772661" },
    ]);
    assert.throws(
      () => createProcessor("processor_desensitize_native", { ...base, Method: "rot13" }),
      /Method/,
    );
  });

  it("multiline options: whole-line patterns; bad combinations refused", () => {
    const ml = multilineOptions({ StartPattern: "\\d+.*" });
    assert.ok(ml?.start?.test("2026 x") && !ml.start.test("x 2026"));
    assert.equal(multilineOptions({}), undefined);
    assert.throws(() => multilineOptions({ ContinuePattern: "x" }), /needs StartPattern/);
    assert.throws(() => multilineOptions({ Mode: "JSON" }), /Mode/);
  });
});
