import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ndjsonBuffer } from "./ndjson.js";
import { type LogRecord, parseRfc3339Ns, recordToJson } from "./record.js";

const T = parseRfc3339Ns("2026-12-06T03:23:46.123456789Z")!;
const tags = Object.freeze({ _container_name_: "web", __path__: '/var/log/a "b".log' });

describe("ndjsonBuffer", () => {
  it("writes each record as recordToJson's object, one per line, escaping what needs it", () => {
    const records: LogRecord[] = [
      { timeNs: T, source: "stdout", fields: { content: "plain text ~ ok" }, tags },
      { timeNs: T, source: "stderr", fields: { content: 'q"b\\s\tc\u0001 é 😀 \ud800' }, tags },
      { timeNs: T + 1n, source: "", fields: { content: "", method: "GET" }, tags: {} },
      // A field named like a tag or a reserved key is left to the tag / the record's own value.
      { timeNs: T, source: "stdout", fields: { _container_name_: "x", _time_: "y" }, tags },
      { timeNs: T, source: "", fields: {}, tags: {} },
      { timeNs: T, source: "stdout", fields: { content: "Exception\n  at a\n  at b" }, tags },
      { timeNs: T, source: "stdout", fields: { content: 'trace\n  "quoted"\n' }, tags },
    ];
    const lines = ndjsonBuffer(records).toString("utf8").split("\n");
    assert.equal(lines.pop(), "");
    assert.equal(lines.length, records.length);
    for (const [i, l] of lines.entries()) assert.deepEqual(JSON.parse(l), recordToJson(records[i]!));
    assert.deepEqual(Object.keys(JSON.parse(lines[2]!)), ["content", "method", "_time_"]);
  });

  it("grows past its first estimate (long multi-byte values)", () => {
    const long = "ü".repeat(5000);
    const out = ndjsonBuffer([{ timeNs: T, source: "stdout", fields: { content: long, a: long }, tags: {} }]);
    assert.equal(JSON.parse(out.toString("utf8")).a, long);
  });
});
