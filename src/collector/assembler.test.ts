import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AssembleOptions, assemble } from "./assembler.js";
import { contentText, decodeCriLine, decodeRawLine } from "./line-format.js";
import { formatRfc3339Ns, parseRfc3339Ns } from "./record.js";

const T = "2026-12-06T03:23:46.123456789Z";
const cri = (stream: string, tag: string, text: string) => `${T} ${stream} ${tag} ${text}\n`;
const opts = (over: Partial<AssembleOptions> = {}): AssembleOptions => ({
  decode: decodeCriLine,
  maxRecordBytes: 1 << 20,
  force: false,
  ...over,
});
const contents = (r: ReturnType<typeof assemble>) =>
  r.records.map((x) => `${x.source}:${x.fields["content"]}`);

describe("CRI lines and times", () => {
  it("keeps nanoseconds through parse and format, and converts offsets to UTC", () => {
    assert.equal(formatRfc3339Ns(parseRfc3339Ns(T)!), T);
    assert.equal(
      formatRfc3339Ns(parseRfc3339Ns("2026-12-06T05:23:46.5+02:00")!),
      "2026-12-06T03:23:46.500000000Z",
    );
    assert.equal(parseRfc3339Ns("yesterday"), undefined);
  });

  it("decodes stream, tag and content (also empty content); a foreign line is stdout", () => {
    const d = decodeCriLine(Buffer.from(`${T} stderr P a b c`));
    assert.deepEqual([d.stream, d.partial, contentText(d)], ["stderr", true, "a b c"]);
    assert.equal(contentText(decodeCriLine(Buffer.from(`${T} stdout F `))), "");
    assert.equal(contentText(decodeCriLine(Buffer.from(`${T} stdout F`))), "");
    const bad = decodeCriLine(Buffer.from("just text"));
    assert.deepEqual([bad.stream, bad.partial, contentText(bad)], ["stdout", false, "just text"]);
    // Within a chunk: the line's own bytes only, with stamps of other lengths and zones.
    const chunk = Buffer.from(
      `x\n2026-12-06T05:23:46.5+02:00 stdout F one\n2026-12-06T03:23:46Z stderr F two\nnext`,
    );
    const a = decodeCriLine(chunk, 2, chunk.indexOf("\n", 2));
    assert.deepEqual(
      [a.timeNs, a.stream, contentText(a)],
      [parseRfc3339Ns("2026-12-06T03:23:46.5Z"), "stdout", "one"],
    );
    const b = decodeCriLine(chunk, chunk.indexOf("2026", 10), chunk.lastIndexOf("\n"));
    assert.deepEqual(
      [b.timeNs, b.stream, contentText(b)],
      [parseRfc3339Ns("2026-12-06T03:23:46Z"), "stderr", "two"],
    );
    const nospace = decodeCriLine(chunk, chunk.lastIndexOf("\n") + 1, chunk.length);
    assert.equal(contentText(nospace), "next");
    assert.equal(decodeCriLine(Buffer.from("2026-12-06T03:23:46.x stdout F z")).stream, "stdout");
    assert.equal(
      contentText(decodeCriLine(Buffer.from("2026-13-06T03:23:46Z stdout F z"))),
      "2026-13-06T03:23:46Z stdout F z",
    );
  });
});

describe("assemble", () => {
  it("joins P parts into one record per stream, with interleaved streams", () => {
    const text =
      cri("stdout", "P", "aa") +
      cri("stderr", "F", "err1") +
      cri("stdout", "P", "bb") +
      cri("stdout", "F", "cc");
    const r = assemble(Buffer.from(text), opts());
    // err1 completes while stdout is open: it is left for the next read of the same bytes.
    assert.deepEqual(contents(r), ["stderr:err1", "stdout:aabbcc"]);
    assert.equal(r.consumed, Buffer.byteLength(text));
    assert.equal(r.records[1]?.timeNs, parseRfc3339Ns(T));
  });

  it("never commits inside an open record, and leaves records after it for the next read", () => {
    const head = cri("stdout", "F", "one");
    const text = head + cri("stdout", "P", "part") + cri("stderr", "F", "later");
    const r = assemble(Buffer.from(text), opts());
    assert.deepEqual(contents(r), ["stdout:one"]);
    assert.equal(r.consumed, Buffer.byteLength(head));
    assert.ok(r.pending);
    const rest = assemble(Buffer.from(text.slice(head.length) + cri("stdout", "F", "end")), opts());
    assert.deepEqual(contents(rest), ["stderr:later", "stdout:partend"]);
  });

  it("stops at an incomplete last line unless forced", () => {
    const text = `${cri("stdout", "F", "a")}${T} stdout F b`;
    assert.deepEqual(contents(assemble(Buffer.from(text), opts())), ["stdout:a"]);
    const forced = assemble(Buffer.from(text), opts({ force: true }));
    assert.deepEqual(contents(forced), ["stdout:a", "stdout:b"]);
    assert.equal(forced.consumed, Buffer.byteLength(text));
  });

  it("joins parts split inside a multi-byte character", () => {
    const euro = Buffer.from("€");
    const buf = Buffer.concat([
      Buffer.from(`${T} stdout P `),
      euro.subarray(0, 1),
      Buffer.from(`\n${T} stdout F `),
      euro.subarray(1),
      Buffer.from("\n"),
    ]);
    assert.deepEqual(contents(assemble(buf, opts())), ["stdout:€"]);
  });

  it("cuts a partial line longer than maxRecordBytes", () => {
    const text = cri("stdout", "P", "aaaa") + cri("stdout", "P", "bbbb") + cri("stdout", "F", "c");
    assert.deepEqual(contents(assemble(Buffer.from(text), opts({ maxRecordBytes: 8 }))), [
      "stdout:aaaabbbb",
      "stdout:c",
    ]);
  });

  it("multiline with a start pattern: a record ends where the next starts", () => {
    const lines = ["2026 a", "  at x", "  at y", "2026 b", "  at z", "2026 c"];
    const text = lines.map((l) => cri("stdout", "F", l)).join("");
    const ml = { start: /^2026 .*$/s, unmatched: "single_line" as const };
    const r = assemble(Buffer.from(text), opts({ multiline: ml }));
    assert.deepEqual(contents(r), ["stdout:2026 a\n  at x\n  at y", "stdout:2026 b\n  at z"]);
    // The clean point is the start of "2026 c", still open.
    assert.equal(
      r.consumed,
      Buffer.byteLength(
        lines
          .slice(0, 5)
          .map((l) => cri("stdout", "F", l))
          .join(""),
      ),
    );
    const forced = assemble(Buffer.from(text), opts({ multiline: ml, force: true }));
    assert.equal(forced.records.length, 3);
  });

  it("multiline start + end, continue + end, end only; unmatched lines kept or dropped", () => {
    const run = (lines: string[], ml: Parameters<typeof opts>[0]) =>
      contents(
        assemble(
          Buffer.from(lines.map((l) => `${l}\n`).join("")),
          opts({ decode: decodeRawLine, ...ml, force: true }),
        ),
      );
    assert.deepEqual(
      run(["x", "[", "1", "]", "y"], { multiline: { start: /^\[$/, end: /^\]$/, unmatched: "single_line" } }),
      [":x", ":[\n1\n]", ":y"],
    );
    assert.deepEqual(
      run(["x", "[", "1", "]", "y"], { multiline: { start: /^\[$/, end: /^\]$/, unmatched: "discard" } }),
      [":[\n1\n]"],
    );
    assert.deepEqual(
      run(["a", "\\c", "\\d", "end", "b"], {
        multiline: { continue: /^\\.*$/, end: /^end$/, unmatched: "single_line" },
      }),
      [":a", ":\\c\n\\d\nend", ":b"],
    );
    assert.deepEqual(run(["a", "b;", "c;"], { multiline: { end: /.*;$/, unmatched: "single_line" } }), [
      ":a\nb;",
      ":c;",
    ]);
  });
});
