import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { PacketReader, resizeMessage, routePacket } from "./attach.js";
import { execProcess } from "./runc-exec.js";

const frame = (p: Buffer) => {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(p.length);
  return Buffer.concat([h, p]);
};

describe("attach socket framing", () => {
  it("splits length-prefixed packets however the bytes arrive", () => {
    const got: string[] = [];
    const r = new PacketReader((p) => got.push(`${p[0]}:${p.subarray(1).toString()}`));
    const bytes = Buffer.concat([
      frame(Buffer.from("\x02hello")),
      frame(Buffer.from("\x03")),
      frame(Buffer.from("\x02x")),
    ]);
    for (const b of bytes) r.push(Buffer.from([b])); // one byte at a time
    assert.deepEqual(got, ["2:hello", "3:", "2:x"]);
    const whole: string[] = [];
    new PacketReader((p) => whole.push(p.toString("latin1"))).push(bytes);
    assert.deepEqual(whole, ["\x02hello", "\x03", "\x02x"]);
  });

  it("routes conmon's stream bytes: 2 stdout, 3 stderr, others dropped", () => {
    const out = new PassThrough();
    const err = new PassThrough();
    routePacket(Buffer.from("\x02out"), { stdout: out, stderr: err });
    routePacket(Buffer.from("\x03err"), { stdout: out, stderr: err });
    routePacket(Buffer.from("\x01in?"), { stdout: out, stderr: err });
    routePacket(Buffer.from("\x03lost"), { stdout: out }); // stderr not requested
    assert.equal(out.read()?.toString(), "out");
    assert.equal(err.read()?.toString(), "err");
  });

  it("writes resizes as conmon's control message: 1 rows cols", () => {
    assert.equal(resizeMessage({ width: 120, height: 40 }), "1 40 120\n");
  });
});

describe("exec process spec", () => {
  const base = { args: ["sh"], cwd: "/", env: ["PATH=/bin"] };
  it("without a tty: terminal off, env untouched", () => {
    assert.deepEqual(execProcess({ ...base, terminal: true }, false), { ...base, terminal: false });
  });
  it("with a tty: terminal on and TERM=xterm unless the container sets TERM", () => {
    assert.deepEqual(execProcess(base, true).env, ["PATH=/bin", "TERM=xterm"]);
    assert.deepEqual(execProcess({ ...base, env: ["TERM=vt100"] }, true).env, ["TERM=vt100"]);
    assert.equal(execProcess(base, true).terminal, true);
  });
});
