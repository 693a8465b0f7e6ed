import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { isBerthError } from "../common/errors.js";
import { connectPortForward, ExecError, execOverSpdy, UpgradeError, upgradeSpdy } from "./client.js";
import type { PortForwardConn, PortForwardRequest } from "./portforward.js";
import { type ExecIO, type ExecRequest, parseResize } from "./remotecommand.js";
import { StreamingServer } from "./server.js";

function collect(): { w: PassThrough; text: () => string } {
  const w = new PassThrough();
  const chunks: Buffer[] = [];
  w.on("data", (b: Buffer) => chunks.push(b));
  return { w, text: () => Buffer.concat(chunks).toString() };
}

async function readAll(r: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  r.on("data", (b: Buffer) => chunks.push(b));
  await once(r, "end");
  return Buffer.concat(chunks).toString();
}

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

const req = (o: Partial<ExecRequest> = {}): ExecRequest => ({
  containerId: "c1",
  cmd: ["fake"],
  tty: false,
  stdin: false,
  stdout: true,
  stderr: true,
  ...o,
});

describe("StreamingServer (fake handlers)", { timeout: 60_000 }, () => {
  let now = 0;
  let aborted = 0;
  const pfCalls: Array<{ req: PortForwardRequest; port: number }> = [];
  let echo: net.Server;
  let echoPort = 0;
  const server = new StreamingServer({
    now: () => now,
    streamCreationTimeoutMs: 2000,
    handlers: {
      async exec(r: ExecRequest, io: ExecIO): Promise<number> {
        const mode = r.cmd[0];
        if (mode === "echo") {
          io.stdout!.write("out:");
          io.stderr!.write("err!");
          return 0;
        }
        if (mode === "cat") {
          for await (const c of io.stdin!) io.stdout!.write(c);
          return 0;
        }
        if (mode === "exit3") return 3;
        if (mode === "boom") throw new Error("cannot run");
        if (mode === "hang") {
          await new Promise<void>((resolve) =>
            io.signal.addEventListener("abort", () => {
              aborted++;
              resolve();
            }),
          );
          return 137;
        }
        return 0;
      },
      async attach(r: ExecRequest, io: ExecIO): Promise<number> {
        io.stdout!.write(`attached to ${r.containerId} cmd=${r.cmd.length}`);
        return 0;
      },
      async portForward(r: PortForwardRequest, c: PortForwardConn): Promise<void> {
        pfCalls.push({ req: r, port: c.port });
        if (c.port === 1) throw new Error("nothing listens on 1");
        const sock = net.connect(echoPort, "127.0.0.1");
        c.stream.pipe(sock);
        sock.pipe(c.stream);
        await once(sock, "close");
      },
    },
  });
  let base = "";

  before(async () => {
    echo = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on("data", (b) => s.write(Buffer.from(b.toString().toUpperCase())));
      s.on("end", () => s.end());
    });
    echo.listen(0, "127.0.0.1");
    await once(echo, "listening");
    echoPort = (echo.address() as net.AddressInfo).port;
    base = (await server.start()).url;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  });
  after(async () => {
    await server.close();
    echo.close();
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
    const before = aborted;
    const p = execOverSpdy(server.execUrl(req({ cmd: ["hang"] })), {
      stdout: collect().w,
      stderr: collect().w,
      signal: ac.signal,
      onReady: () => setTimeout(() => ac.abort(), 200),
    });
    await assert.rejects(p);
    for (let i = 0; i < 50 && aborted === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(aborted, before + 1);
  });

  it("attach goes to the attach handler", { timeout: 15_000 }, async () => {
    const out = collect();
    const url = server.attachUrl({
      containerId: "c9",
      tty: false,
      stdin: false,
      stdout: true,
      stderr: false,
    });
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
    assert.deepEqual(pfCalls.map((c) => c.port).sort(), [1, 8080, 8081]);

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
