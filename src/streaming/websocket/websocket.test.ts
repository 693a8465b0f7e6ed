import assert from "node:assert/strict";
import { once } from "node:events";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import type WebSocket from "ws";
import { ExecError, execOverSpdy, UpgradeError } from "../client.js";
import { StreamingServer } from "../server.js";
import { collect, FakeBackend, fakeAttachRequest, fakeExecRequest, readAll } from "../testutil.js";
import { decodeMessage, encodeMessage } from "./channels.js";
import { connectWebSocket, execOverWebSocket, portForwardOverWebSocket } from "./client.js";
import { portsFromQuery } from "./portforward.js";
import { negotiateProtocol } from "./upgrade.js";

const req = fakeExecRequest;

interface Message {
  data: Buffer;
  binary: boolean;
}

/** Connects, lets `act` send, and records every message until the server closes. */
async function record(
  url: string,
  protocols: readonly string[],
  act: (ws: WebSocket) => void = () => {},
): Promise<{ protocol: string; messages: Message[]; code: number }> {
  const ws = await connectWebSocket(url, protocols);
  const messages: Message[] = [];
  ws.on("message", (data, binary) => messages.push({ data: data as Buffer, binary }));
  const closed = once(ws, "close");
  ws.resume();
  act(ws);
  const [code] = (await closed) as [number];
  return { protocol: ws.protocol, messages, code };
}

/** The binary messages as [channel, text]. */
const binary = (ms: Message[]) =>
  ms.map((m) => {
    assert.equal(m.binary, true);
    return [m.data[0], m.data.subarray(1).toString()];
  });

describe("StreamingServer over WebSocket (fake handlers)", { timeout: 60_000 }, () => {
  const fake = new FakeBackend();
  const server = new StreamingServer({
    handlers: fake.handlers,
  });
  let base = "";

  before(async () => {
    await fake.start();
    base = (await server.start()).url;
  });
  after(async () => {
    await server.close();
    fake.stop();
  });

  it("negotiates the first offered protocol the server supports; none offered is binary channel.k8s.io", async () => {
    assert.equal(negotiateProtocol([], ["a", ""]), "");
    assert.equal(negotiateProtocol(["x", "b", "a"], ["a", "b", ""]), "b");
    assert.equal(negotiateProtocol(["x"], ["a", ""]), undefined);
    for (const p of ["v5.channel.k8s.io", "v4.base64.channel.k8s.io", "base64.channel.k8s.io"]) {
      const r = await record(server.execUrl(req({ cmd: ["echo"], stderr: false })), ["v9.channel.k8s.io", p]);
      assert.equal(r.protocol, p);
      assert.equal(r.code, 1000);
    }
    const none = await record(server.execUrl(req({ cmd: ["echo"], stderr: false })), []);
    assert.equal(none.protocol, "");
    // binary, v1 status: nothing on channel 3 for success
    assert.deepEqual(binary(none.messages), [
      [1, ""],
      [1, "out:"],
    ]);
  });

  it("refuses without a common protocol (403), unknown or used tokens (404), bad handshakes (400)", async () => {
    const url = server.execUrl(req({ cmd: ["echo"] }));
    await assert.rejects(connectWebSocket(url, ["v9.channel.k8s.io"]), (e) => {
      assert.ok(e instanceof UpgradeError);
      assert.equal(e.statusCode, 403);
      assert.match(e.body, /requested protocol\(s\) are not supported: \[v9.channel.k8s.io\]/);
      return true;
    });
    const pf = server.portForwardUrl({ podSandboxId: "p", port: [] });
    await assert.rejects(
      connectWebSocket(`${pf}?port=80`, ["v5.channel.k8s.io"]),
      (e) => e instanceof UpgradeError && e.statusCode === 403,
    );
    await assert.rejects(
      connectWebSocket(`${base}/exec/${"A".repeat(43)}`, []),
      (e) => e instanceof UpgradeError && e.statusCode === 404,
    );
    const once1 = server.execUrl(req({ cmd: ["echo"] }));
    assert.equal(await execOverWebSocket(once1, { stdout: collect().w, stderr: collect().w }), 0);
    await assert.rejects(
      execOverWebSocket(once1, { stdout: collect().w }),
      (e) => e instanceof UpgradeError && e.statusCode === 404,
    );
    // an exec token used over WebSocket is gone for SPDY too
    const both = server.execUrl(req({ cmd: ["echo"] }));
    assert.equal(await execOverWebSocket(both, { stdout: collect().w, stderr: collect().w }), 0);
    await assert.rejects(
      execOverSpdy(both, { stdout: collect().w }),
      (e) => e instanceof UpgradeError && e.statusCode === 404,
    );
  });

  it("binary v4: empty first message on stdout, output, Status JSON on channel 3, normal close", async () => {
    const r = await record(server.execUrl(req({ cmd: ["echo"] })), ["v4.channel.k8s.io"]);
    assert.equal(r.code, 1000);
    assert.deepEqual(binary(r.messages), [
      [1, ""],
      [1, "out:"],
      [2, "err!"],
      [3, JSON.stringify({ metadata: {}, status: "Success" })],
    ]);
  });

  it("the first empty message goes to the lowest open writable channel", async () => {
    const onlyErr = await record(server.execUrl(req({ cmd: ["x"], stdout: false })), ["v4.channel.k8s.io"]);
    assert.deepEqual(binary(onlyErr.messages)[0], [2, ""]);
    const onlyIn = await record(
      server.execUrl(req({ cmd: ["x"], stdin: true, stdout: false, stderr: false })),
      ["v4.channel.k8s.io"],
    );
    assert.deepEqual(binary(onlyIn.messages)[0], [3, ""]);
  });

  it("base64 v4: text messages with a digit channel and base64 payload", async () => {
    const r = await record(server.execUrl(req({ cmd: ["exit3"] })), ["v4.base64.channel.k8s.io"]);
    assert.equal(r.code, 1000);
    for (const m of r.messages) assert.equal(m.binary, false);
    const texts = r.messages.map((m) => m.data.toString());
    assert.equal(texts[0], "1");
    assert.equal(texts.length, 2);
    assert.match(texts[1]!, /^3/);
    const status = JSON.parse(Buffer.from(texts[1]!.slice(1), "base64").toString());
    assert.equal(status.reason, "NonZeroExitCode");
    assert.deepEqual(status.details.causes, [{ reason: "ExitCode", message: "3" }]);
    // base64 works the other way too
    const out = collect();
    const code = await execOverWebSocket(server.execUrl(req({ cmd: ["echo"] })), {
      protocols: ["v4.base64.channel.k8s.io"],
      stdout: out.w,
      stderr: collect().w,
    });
    assert.equal(code, 0);
    assert.equal(out.text(), "out:");
  });

  it("channel.k8s.io (pre-v4): the error text on channel 3, nothing on success", async () => {
    const r = await record(server.execUrl(req({ cmd: ["exit3"], stderr: false })), ["channel.k8s.io"]);
    assert.deepEqual(binary(r.messages), [
      [1, ""],
      [3, "command terminated with non-zero exit code: error executing command [exit3], exit code 3"],
    ]);
    const b64 = await record(server.execUrl(req({ cmd: ["boom"], stderr: false })), [
      "base64.channel.k8s.io",
    ]);
    assert.deepEqual(
      b64.messages.map((m) => m.data.toString()),
      ["1", `3${Buffer.from("cannot run").toString("base64")}`],
    );
  });

  it("exit codes and handler errors through execOverWebSocket (v5 and v4)", async () => {
    for (const protocols of [["v5.channel.k8s.io"], ["v4.channel.k8s.io"]]) {
      const out = collect();
      const err = collect();
      assert.equal(
        await execOverWebSocket(server.execUrl(req({ cmd: ["echo"] })), {
          protocols,
          stdout: out.w,
          stderr: err.w,
        }),
        0,
      );
      assert.equal(out.text(), "out:");
      assert.equal(err.text(), "err!");
      assert.equal(await execOverWebSocket(server.execUrl(req({ cmd: ["exit3"] })), { protocols }), 3);
      await assert.rejects(
        execOverWebSocket(server.execUrl(req({ cmd: ["boom"] })), { protocols }),
        (e: unknown) =>
          e instanceof ExecError &&
          /cannot run/.test(e.message) &&
          (e.status as { reason?: string }).reason === "InternalError",
      );
    }
  });

  it("v5: the close signal [255, 0] ends stdin (1 MiB through cat)", async () => {
    const data = Buffer.alloc(1 << 20, "xyz");
    const out = collect();
    const code = await execOverWebSocket(server.execUrl(req({ cmd: ["cat"], stdin: true, stderr: false })), {
      stdin: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
      stdout: out.w,
    });
    assert.equal(code, 0);
    assert.equal(out.text(), data.toString());
    // the raw messages
    const r = await record(
      server.execUrl(req({ cmd: ["cat"], stdin: true, stderr: false })),
      ["v5.channel.k8s.io"],
      (ws) => {
        ws.send(Buffer.from("\x00abc"));
        ws.send(Buffer.of(255, 0));
      },
    );
    assert.deepEqual(binary(r.messages), [
      [1, ""],
      [1, "abc"],
      [3, JSON.stringify({ metadata: {}, status: "Success" })],
    ]);
  });

  it("tty: resize messages reach the handler", async () => {
    const out = collect();
    const code = await execOverWebSocket(server.execUrl(req({ cmd: ["resize"], tty: true, stderr: false })), {
      stdout: out.w,
      resize: (async function* () {
        yield { width: 132, height: 43 };
      })(),
    });
    assert.equal(code, 0);
    assert.equal(out.text(), "132x43");
  });

  it("client disconnect aborts the handler", async () => {
    const ac = new AbortController();
    const before = fake.aborted;
    const p = execOverWebSocket(server.execUrl(req({ cmd: ["hang"] })), {
      signal: ac.signal,
      onReady: () => ac.abort(),
    });
    await assert.rejects(p, ExecError);
    for (let i = 0; i < 250 && fake.aborted === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(fake.aborted, before + 1);
  });

  it("attach goes to the attach handler", async () => {
    const out = collect();
    const url = server.attachUrl(fakeAttachRequest);
    assert.equal(await execOverWebSocket(url, { stdout: out.w }), 0);
    assert.equal(out.text(), "attached to c9 cmd=0");
  });

  it("port-forward: the request's ports, else the query's; refused without any", () => {
    assert.deepEqual(portsFromQuery("/portforward/t?port=80&port=8080,9090", []), [80, 8080, 9090]);
    assert.deepEqual(portsFromQuery("/portforward/t?other=1", [22]), [22]);
    assert.deepEqual(portsFromQuery("/portforward/t?port=81", [22]), [22]);
    assert.throws(() => portsFromQuery("/portforward/t", []), /query parameter "port" is required/);
    assert.throws(() => portsFromQuery("/portforward/t?port=", []), /cannot be empty/);
    for (const bad of ["0", "65536", "x", "80,"])
      assert.throws(() => portsFromQuery(`/p/t?port=${bad}`, []), /invalid port/);
  });

  it("port-forward: two ports, port prefixes on both channels, data both ways, errors", async () => {
    const before = fake.pfCalls.length;
    const url = `${server.portForwardUrl({ podSandboxId: "pod1", port: [] })}?port=8080&port=1`;
    const pf = await portForwardOverWebSocket(url, [8080, 1]);
    assert.equal(pf.protocol, "v4.channel.k8s.io");
    const [a, bad] = pf.ports;
    a!.input.write("hello");
    const [chunk] = (await once(a!.data, "data")) as [Buffer];
    assert.equal(chunk.toString(), "HELLO");
    pf.close();
    assert.equal(await pf.closed, 1000);
    assert.equal(await a!.error, "");
    assert.match(await bad!.error, /^error forwarding port 1 to pod pod1: nothing listens on 1$/);
    assert.deepEqual(
      fake.pfCalls.slice(before).map((c) => c.port),
      [8080, 1],
    );
    // the raw prefixes: [ch, lo, hi] on both channels of each port
    const r = await record(`${server.portForwardUrl({ podSandboxId: "pod1", port: [] })}?port=7,258`, []);
    assert.equal(r.code, 1000);
    const perChannel = [0, 1, 2, 3].map((ch) =>
      r.messages.filter((m) => m.data[0] === ch).map((m) => m.data.subarray(1).toString("latin1")),
    );
    assert.deepEqual(perChannel, [["\x07\x00", "bye"], ["\x07\x00"], ["\x02\x01", "bye"], ["\x02\x01"]]);
  });

  it("port-forward: closes normally when every port is done; base64; stored ports", async () => {
    const pf = await portForwardOverWebSocket(
      server.portForwardUrl({ podSandboxId: "pod1", port: [7] }),
      [7],
      ["v4.base64.channel.k8s.io"],
    );
    assert.equal(pf.protocol, "v4.base64.channel.k8s.io");
    assert.equal(await readAll(pf.ports[0]!.data), "bye");
    assert.equal(await pf.closed, 1000);
    assert.equal(await pf.ports[0]!.error, "");
  });

  it("port-forward: refused (400) without ports or with an invalid one", async () => {
    for (const suffix of ["", "?port=0", "?port=http"]) {
      await assert.rejects(
        connectWebSocket(`${server.portForwardUrl({ podSandboxId: "pod1", port: [] })}${suffix}`, []),
        (e: unknown) => e instanceof UpgradeError && e.statusCode === 400 && /unable to upgrade/.test(e.body),
      );
    }
  });

  it("framing: encode/decode round trip, v5 close signal only for v5", () => {
    const bin = { base64: false, closeSignals: false };
    assert.deepEqual(decodeMessage(encodeMessage(2, Buffer.from("hi"), false) as Buffer, bin), {
      channel: 2,
      data: Buffer.from("hi"),
    });
    const b64 = encodeMessage(1, Buffer.from("hi"), true);
    assert.equal(b64, "1aGk=");
    assert.deepEqual(decodeMessage(Buffer.from(b64), { base64: true, closeSignals: false }), {
      channel: 1,
      data: Buffer.from("hi"),
    });
    assert.deepEqual(decodeMessage(Buffer.of(255, 0), { base64: false, closeSignals: true }), {
      channel: 0,
      close: true,
    });
    assert.deepEqual(decodeMessage(Buffer.of(255, 0), bin), { channel: 255, data: Buffer.of(0) });
    assert.equal(decodeMessage(Buffer.alloc(0), bin), undefined);
  });
});
