import assert from "node:assert/strict";
import http from "node:http";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { isBerthError } from "../common/errors.js";
import { connectPortForward, ExecError, execOverSpdy, UpgradeError, upgradeSpdy } from "./client.js";
import { parseResize } from "./remotecommand.js";
import { StreamingServer } from "./server.js";
import { collect, FakeBackend, fakeAttachRequest, fakeExecRequest, readAll } from "./testutil.js";
import { execOverWebSocket } from "./websocket/client.js";

function rawRequest(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers });
    req.once("error", reject);
    req.once("response", async (res) => resolve({ status: res.statusCode ?? 0, body: await readAll(res) }));
    req.once("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: "" });
    });
    req.end();
  });
}

const req = fakeExecRequest;

describe("StreamingServer (fake handlers)", { timeout: 60_000 }, () => {
  let now = 0;
  const fake = new FakeBackend();
  const server = new StreamingServer({
    now: () => now,
    streamCreationTimeoutMs: 2000,
    handlers: fake.handlers,
  });
  let base = "";

  before(async () => {
    await fake.start();
    base = (await server.start()).url;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  });
  after(async () => {
    await server.close();
    fake.stop();
  });

  it("validates requests like the kubelet", () => {
    assert.throws(
      () => server.execUrl(req({ stdout: false, stderr: false })),
      (e: unknown) => isBerthError(e, "InvalidArgument"),
    );
    assert.throws(() => server.execUrl(req({ tty: true })), /tty and stderr/);
    assert.throws(() => server.execUrl(req({ cmd: [] })), /cmd/);
    assert.throws(() => server.portForwardUrl({ podSandboxId: "p", port: [70000] }), /invalid port/);
  });

  it("404 for unknown, reused and expired tokens; 400 without upgrade; 403 without a common protocol", {
    timeout: 15_000,
  }, async () => {
    assert.equal((await rawRequest(`${base}/exec/${"A".repeat(43)}`, {})).status, 404);
    assert.equal((await rawRequest(`${base}/nothing`, {})).status, 404);
    const url = server.execUrl(req());
    assert.match(url, new RegExp(`^${base}/exec/[A-Za-z0-9_-]{43}$`));
    const plain = await rawRequest(url, {});
    assert.equal(plain.status, 400);
    assert.match(plain.body, /missing upgrade headers/);
    assert.equal((await rawRequest(url, {})).status, 404, "token used up by the 400");
    // an exec token is not a portforward token
    const u2 = server.execUrl(req());
    assert.equal((await rawRequest(u2.replace("/exec/", "/portforward/"), {})).status, 404);
    const u3 = server.execUrl(req());
    await assert.rejects(upgradeSpdy(u3, ["v9.channel.k8s.io"]), (e: unknown) => {
      assert.ok(e instanceof UpgradeError);
      assert.equal(e.statusCode, 403);
      return true;
    });
    const u4 = server.execUrl(req());
    const ws = await rawRequest(u4, { Connection: "Upgrade", Upgrade: "websocket" });
    assert.equal(ws.status, 400);
    // expiry
    const u5 = server.execUrl(req({ cmd: ["echo"] }));
    now += 60_000;
    await assert.rejects(
      execOverSpdy(u5, { stdout: collect().w, stderr: collect().w }),
      (e: unknown) => e instanceof UpgradeError && e.statusCode === 404,
    );
  });

  it("exec: stdout/stderr, exit codes, handler errors", { timeout: 15_000 }, async () => {
    const out = collect();
    const err = collect();
    const code = await execOverSpdy(server.execUrl(req({ cmd: ["echo"] })), { stdout: out.w, stderr: err.w });
    assert.equal(code, 0);
    assert.equal(out.text(), "out:");
    assert.equal(err.text(), "err!");
    assert.equal(
      await execOverSpdy(server.execUrl(req({ cmd: ["exit3"] })), {
        stdout: collect().w,
        stderr: collect().w,
      }),
      3,
    );
    await assert.rejects(
      execOverSpdy(server.execUrl(req({ cmd: ["boom"] })), { stdout: collect().w, stderr: collect().w }),
      (e: unknown) => e instanceof ExecError && /cannot run/.test(e.message),
    );
  });

  it("exec: stdin to stdout, 1 MiB", { timeout: 15_000 }, async () => {
    const out = collect();
    const data = Buffer.alloc(1 << 20, "xyz");
    const code = await execOverSpdy(server.execUrl(req({ cmd: ["cat"], stdin: true, stderr: false })), {
      stdin: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
      stdout: out.w,
    });
    assert.equal(code, 0);
    assert.equal(out.text(), data.toString());
  });

  it("exec: client disconnect aborts the handler", { timeout: 15_000 }, async () => {
    const ac = new AbortController();
    const before = fake.aborted;
    const p = execOverSpdy(server.execUrl(req({ cmd: ["hang"] })), {
      stdout: collect().w,
      stderr: collect().w,
      signal: ac.signal,
      onReady: () => setTimeout(() => ac.abort(), 200),
    });
    await assert.rejects(p);
    for (let i = 0; i < 50 && fake.aborted === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(fake.aborted, before + 1);
  });

  it("attach goes to the attach handler", { timeout: 15_000 }, async () => {
    const out = collect();
    const url = server.attachUrl(fakeAttachRequest);
    assert.match(url, /\/attach\//);
    assert.equal(await execOverSpdy(url, { stdout: out.w }), 0);
    assert.equal(out.text(), "attached to c9 cmd=0");
  });

  it("exec: v2 protocol (plain text error stream)", { timeout: 15_000 }, async () => {
    const { conn, protocol } = await upgradeSpdy(server.execUrl(req({ cmd: ["exit3"], stderr: false })), [
      "v2.channel.k8s.io",
    ]);
    assert.equal(protocol, "v2.channel.k8s.io");
    const e = conn.openStream({ streamtype: "error" }, { fin: true });
    const o = conn.openStream({ streamtype: "stdout" }, { fin: true });
    o.resume();
    assert.match(await readAll(e), /non-zero exit code.*exit code 3/);
    conn.destroy();
  });

  it("port-forward: concurrent connections, errors on the error stream, port restriction", {
    timeout: 15_000,
  }, async () => {
    const session = await connectPortForward(server.portForwardUrl({ podSandboxId: "pod1", port: [] }));
    const a = session.open(8080);
    const b = session.open(8081);
    const bad = session.open(1);
    a.stream.write("hello ");
    b.stream.write("other");
    a.stream.end("a");
    b.stream.end();
    assert.deepEqual(await Promise.all([readAll(a.stream), readAll(b.stream)]), ["HELLO A", "OTHER"]);
    assert.equal(await a.error, "");
    assert.match(await bad.error, /error forwarding port 1 to pod pod1: nothing listens on 1/);
    session.close();
    assert.deepEqual(fake.pfCalls.map((c) => c.port).sort(), [1, 8080, 8081]);

    const s2 = await connectPortForward(server.portForwardUrl({ podSandboxId: "pod1", port: [80] }));
    const c = s2.open(81);
    assert.match(await c.error, /port 81 was not requested/);
    s2.close();
  });

  it("parses resize events", { timeout: 15_000 }, async () => {
    const r = Readable.from([Buffer.from('{"Width":80,"Height":2'), Buffer.from('4}{"Width":1,"Height":2}')]);
    const got = [];
    for await (const s of parseResize(r)) got.push(s);
    assert.deepEqual(got, [
      { width: 80, height: 24 },
      { width: 1, height: 2 },
    ]);
  });
});

describe("StreamingServer idle timeout", { timeout: 60_000 }, () => {
  it("drops a session that carries nothing for idleTimeoutMs (both transports); its process is aborted", async () => {
    const fake = new FakeBackend();
    const server = new StreamingServer({ idleTimeoutMs: 300, handlers: fake.handlers });
    await server.start();
    try {
      // The server's side of the close arrives a moment after the client's.
      const aborted = async (n: number) => {
        for (let i = 0; i < 100 && fake.aborted < n; i++) await new Promise((r) => setTimeout(r, 20));
        return fake.aborted;
      };
      await assert.rejects(
        execOverSpdy(server.execUrl(req({ cmd: ["hang"] })), { stdout: collect().w, stderr: collect().w }),
      );
      assert.equal(await aborted(1), 1);
      await assert.rejects(
        execOverWebSocket(server.execUrl(req({ cmd: ["hang"] })), {
          stdout: collect().w,
          stderr: collect().w,
        }),
        (e: unknown) => e instanceof ExecError,
      );
      assert.equal(await aborted(2), 2);
    } finally {
      await server.close();
    }
  });
});
