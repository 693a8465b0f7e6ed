import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import {
  attachPoint,
  EarlyOutput,
  loggedAt,
  type StreamName,
  ttyNewlines,
  withoutCrOfCrlf,
} from "./early-output.js";

const b = (s: string) => Buffer.from(s);

function sink(): { w: Writable; text: () => string } {
  let t = "";
  return {
    w: new Writable({
      write(chunk: Buffer, _e, cb) {
        t += chunk.toString();
        cb();
      },
    }),
    text: () => t,
  };
}

const write = (w: Writable, s: string) => new Promise<void>((r) => w.write(b(s), () => r()));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("run -it: the log spliced in front of the attached stream", () => {
  it("finds where the attached bytes start in the log", () => {
    assert.equal(attachPoint(b("early\nlate\n"), b("late\n")), 6);
    // the log read after more arrived than was received: they agree on the common part
    assert.equal(attachPoint(b("early\nlate\nlater\n"), b("late\n")), 6);
    // more received than the log held when read
    assert.equal(attachPoint(b("early\nla"), b("late\nmore")), 6);
    assert.equal(attachPoint(b("early\n"), b("")), 6);
    // not in the log at all (log off or rotated): no splice
    assert.equal(attachPoint(b("early\n"), b("other\n")), undefined);
    // repeated output: the latest agreeing position, or the latest one allowed (by the time)
    assert.equal(attachPoint(b("y\ny\ny\n"), b("y\n")), 4);
    assert.equal(
      attachPoint(b("y\ny\ny\n"), b("y\n"), (s) => s < 4),
      2,
    );
    assert.equal(
      attachPoint(b("y\ny\ny\n"), b("y\n"), () => false),
      4,
    );
    assert.equal(
      loggedAt(
        [
          { offset: 0, ms: 5 },
          { offset: 2, ms: 7 },
        ],
        3,
      ),
      7,
    );
    assert.equal(loggedAt([{ offset: 2, ms: 7 }], 1), undefined);
  });

  it("shows what came before the attach, then the attached stream, without duplicates", async () => {
    const out = sink();
    const err = sink();
    const log = { stdout: b("one\ntwo\nthree\n"), stderr: b("e1\n") };
    const e = new EarlyOutput(async () => log, { stdout: out.w, stderr: err.w });
    await write(e.stream("stdout"), "three\n");
    await e.end();
    await write(e.stream("stdout"), "four\n");
    assert.equal(out.text(), "one\ntwo\nthree\nfour\n");
    assert.equal(err.text(), "e1\n");
  });

  it("a quiet container's early output (a prompt) is shown, and not again when the attach repeats it", async () => {
    const out = sink();
    const log: Record<StreamName, Buffer> = { stdout: b("/ # "), stderr: b("") };
    const e = new EarlyOutput(async () => log, { stdout: out.w, stderr: undefined });
    await sleep(400);
    assert.equal(out.text(), "/ # ");
    // the prompt was in flight when the log was read: the attach delivers it again
    log.stdout = b("/ # ls\r\nbin\r\n");
    await write(e.stream("stdout"), "/ # ls\r\n");
    await e.end();
    assert.equal(out.text(), "/ # ls\r\n");
  });

  it("repeated output: a repetition logged after the first attached byte arrived is not the attach point", async () => {
    const out = sink();
    const now = Date.now();
    // the third y was logged after the attach's first byte came (it is still on its way)
    const entries = [
      { offset: 0, ms: now - 2000 },
      { offset: 2, ms: now - 1000 },
      { offset: 4, ms: now + 60_000 },
    ];
    const log = { stdout: b("y\ny\ny\n"), stderr: b(""), entries: { stdout: entries, stderr: [] } };
    const e = new EarlyOutput(async () => log, { stdout: out.w, stderr: undefined });
    await write(e.stream("stdout"), "y\n");
    await e.end();
    await write(e.stream("stdout"), "y\n");
    assert.equal(out.text(), "y\ny\ny\n");
  });

  it("repeated output: the attach point has all the received bytes after it in the log", async () => {
    const out = sink();
    const log = { stdout: b("y\ny\ny\n"), stderr: b("") };
    const e = new EarlyOutput(async () => log, { stdout: out.w, stderr: undefined });
    // both received at once: the log (read after) has both after the attach point
    await write(e.stream("stdout"), "y\ny\n");
    await e.end();
    assert.equal(out.text(), "y\ny\ny\n");
  });

  it("a container that ended before any byte arrived: the whole log", async () => {
    const out = sink();
    const e = new EarlyOutput(async () => ({ stdout: b("all\nof it\n"), stderr: b("") }), {
      stdout: out.w,
      stderr: undefined,
    });
    await e.end();
    assert.equal(out.text(), "all\nof it\n");
  });

  it("drops the attach's own artefact at the attach point only", async () => {
    const out = sink();
    const trim = (x: Buffer) => (x.subarray(0, 2).toString() === "^@" ? x.subarray(2) : x);
    const e = new EarlyOutput(
      async () => ({ stdout: b("early\r\n^@late\r\n"), stderr: b("") }),
      { stdout: out.w, stderr: undefined },
      { trimAttachPoint: trim },
    );
    await write(e.stream("stdout"), "^@late\r\n");
    await e.end();
    assert.equal(out.text(), "early\r\nlate\r\n");
  });

  /** A terminal session's EarlyOutput over a log (changed by the test), writing to `out`. */
  const onTerminal = (log: Record<StreamName, Buffer>) => {
    const out = sink();
    return { out, e: new EarlyOutput(async () => log, { stdout: out.w, stderr: undefined }, { tty: true }) };
  };

  it("a terminal's output against a log without the \\r of its \\r\\n (containerd's)", async () => {
    const { out, e } = onTerminal({ stdout: b("early\nlate\n"), stderr: b("") });
    // the \n of the last line has not arrived yet
    await write(e.stream("stdout"), "late\r");
    await e.end();
    await write(e.stream("stdout"), "\n");
    assert.equal(out.text(), "early\r\nlate\r\n");
  });

  it("a terminal's output shown from the log before the attach is not shown again", async () => {
    const log = { stdout: b("one\n"), stderr: b("") };
    const { out, e } = onTerminal(log);
    await sleep(400);
    assert.equal(out.text(), "one\r\n");
    log.stdout = b("one\ntwo\n");
    await write(e.stream("stdout"), "one\r\ntwo\r\n");
    await e.end();
    assert.equal(out.text(), "one\r\ntwo\r\n");
  });

  it("an abandoned session (its attach failed) shows nothing more, not even the quiet log", async () => {
    const out = sink();
    const e = new EarlyOutput(async () => ({ stdout: b("hi\n"), stderr: b("") }), {
      stdout: out.w,
      stderr: undefined,
    });
    await e.abandon();
    await sleep(400);
    assert.equal(out.text(), "");
    assert.deepEqual(e.reached, { stdout: 0, stderr: 0 });
  });

  it("reached: where the log's rest begins after what was shown (a session that fails)", async () => {
    // shown from the log while nothing arrived: all of it (nothing to show again)
    const quietLog = { stdout: b("hi\n"), stderr: b("") };
    const reached = { stdout: 0, stderr: 0 };
    const quiet = new EarlyOutput(async () => quietLog, { stdout: sink().w, stderr: undefined }, { reached });
    await sleep(400);
    assert.deepEqual(reached, { stdout: 3, stderr: 0 });
    await quiet.end();

    // a terminal: aligned bytes (their last \r not yet followed by its \n), then more chunks
    const log = { stdout: b("early\nhi\n"), stderr: b("") };
    const { e } = onTerminal(log);
    await write(e.stream("stdout"), "hi\r");
    await e.end();
    assert.equal(e.reached.stdout, "early\nhi".length);
    await write(e.stream("stdout"), "\n");
    await write(e.stream("stdout"), "more\r\n");
    log.stdout = b("early\nhi\nmore\nlast\n");
    assert.equal(withoutCrOfCrlf(log.stdout).text.subarray(e.reached.stdout).toString(), "last\n");
  });

  it("a terminal's output against a log that kept its \\r\\n (berthd's)", async () => {
    const { out, e } = onTerminal({ stdout: b("early\r\nlate\r\n"), stderr: b("") });
    await write(e.stream("stdout"), "late\r\n");
    await e.end();
    assert.equal(out.text(), "early\r\nlate\r\n");
  });
});

describe("a terminal's line ends", () => {
  it("compares without the \\r of \\r\\n, and maps back to the raw bytes", () => {
    const { text, raw } = withoutCrOfCrlf(b("a\r\nb\rc\r"));
    assert.equal(text.toString(), "a\nb\rc");
    assert.deepEqual(raw, [0, 2, 3, 4, 5, 7]);
    assert.equal(ttyNewlines(b("a\nb\r\n")).toString(), "a\r\nb\r\n");
  });
});
