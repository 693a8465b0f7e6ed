/**
 * GrpcServer against a real gRPC client (grpc-js) on a unix socket: every call kind, status
 * codes and messages, deadlines, cancellation, limits, and what a non-gRPC request gets.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:http2";
import { connect as connectUnix } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client, credentials, type ServiceError, status } from "@grpc/grpc-js";
import type { ServerCall } from "./call.js";
import {
  type ClientStreamCall,
  GrpcServer,
  type ServerStreamCall,
  type ServiceImplementation,
  type UnaryCall,
} from "./server.js";
import { Status } from "./status.js";

interface Msg {
  text: string;
  n?: number;
}
const encode = (m: Msg) => Buffer.from(JSON.stringify(m));
const decode = (b: Buffer) => JSON.parse(b.toString()) as Msg;
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/test.v1.Test/${name}`,
  requestStream,
  responseStream,
  requestDeserialize: decode,
  responseSerialize: encode,
});
const service = {
  echo: method("Echo", false, false),
  fail: method("Fail", false, false),
  hang: method("Hang", false, false),
  count: method("Count", false, true),
  sum: method("Sum", true, false),
  unhandled: method("Unhandled", false, false),
};

const MAX = 256 * 1024;

describe("GrpcServer", () => {
  let dir: string;
  let server: GrpcServer;
  let client: Client;
  let address: string;
  /** The server side of the last Hang or Count call, to watch for "cancelled". */
  let lastCall: ServerCall<Msg> | undefined;

  const impl: ServiceImplementation = {
    echo: (call: UnaryCall<Msg>, cb: (e: null, r: Msg) => void) => cb(null, { text: call.request.text }),
    fail: (call: UnaryCall<Msg>, cb: (e: { code: Status; details: string }) => void) =>
      cb({ code: Status.NOT_FOUND, details: call.request.text }),
    hang: (call: UnaryCall<Msg>) => {
      lastCall = call;
    },
    count: (call: ServerStreamCall<Msg, Msg>) => {
      lastCall = call;
      const n = call.request.n ?? 0;
      for (let i = 0; i < n; i++) call.write({ text: `m${i}` });
      if (call.request.text === "fail") call.fail({ code: Status.ABORTED, details: "stopped" });
      else if (call.request.text !== "hold") call.end();
    },
    sum: async (call: ClientStreamCall<Msg>, cb: (e: null, r: Msg) => void) => {
      let total = 0;
      let text = "";
      for await (const m of call) {
        total += m.n ?? 0;
        text += m.text;
      }
      cb(null, { text, n: total });
    },
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-grpc-"));
    server = new GrpcServer({ maxMessageBytes: MAX });
    server.addService(service, impl);
    address = join(dir, "s.sock");
    await server.listen(address);
    client = new Client(`unix://${address}`, credentials.createInsecure());
  });
  after(async () => {
    client.close();
    server.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const unary = (name: string, req: Msg, deadlineMs?: number) =>
    new Promise<Msg>((resolve, reject) =>
      client.makeUnaryRequest(
        `/test.v1.Test/${name}`,
        encode,
        decode,
        req,
        deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs },
        (err, res) => (err ? reject(err) : resolve(res as Msg)),
      ),
    );
  const code = (c: number) => (err: ServiceError) => {
    assert.equal(err.code, c, `${status[err.code]}: ${err.details}`);
    return true;
  };

  it("answers a unary call", async () => {
    assert.deepEqual(await unary("Echo", { text: "hello" }), { text: "hello" });
  });

  it("answers a request larger than an HTTP/2 frame", async () => {
    const text = "x".repeat(200_000);
    assert.equal((await unary("Echo", { text })).text.length, text.length);
  });

  it("ends a failed call with its code and message, non-ASCII and % intact", async () => {
    await assert.rejects(unary("Fail", { text: "nicht gefunden: 100% ünïcode ✓" }), (err: ServiceError) => {
      assert.equal(err.code, status.NOT_FOUND);
      assert.equal(err.details, "nicht gefunden: 100% ünïcode ✓");
      return true;
    });
  });

  it("answers UNIMPLEMENTED for a method it does not serve", async () => {
    await assert.rejects(unary("Nope", { text: "" }), code(status.UNIMPLEMENTED));
    await assert.rejects(unary("Unhandled", { text: "" }), code(status.UNIMPLEMENTED));
  });

  it("refuses a message over the limit with RESOURCE_EXHAUSTED", async () => {
    await assert.rejects(unary("Echo", { text: "x".repeat(MAX + 1) }), code(status.RESOURCE_EXHAUSTED));
    assert.deepEqual(await unary("Echo", { text: "still serving" }), { text: "still serving" });
  });

  it("ends a call at its deadline with DEADLINE_EXCEEDED and tells the handler", async () => {
    lastCall = undefined;
    await assert.rejects(unary("Hang", { text: "" }, 150), code(status.DEADLINE_EXCEEDED));
    const call = lastCall as ServerCall<Msg> | undefined;
    assert.ok(call);
    if (!call.cancelled) await once(call, "cancelled");
    assert.equal(call.cancelled, true);
    assert.ok(Number.isFinite(call.getDeadline()));
  });

  it("streams messages, then the status", async () => {
    const got: string[] = [];
    const stream = client.makeServerStreamRequest("/test.v1.Test/Count", encode, decode, { text: "", n: 3 });
    stream.on("data", (m: Msg) => got.push(m.text));
    const [st] = await once(stream, "status");
    assert.equal(st.code, status.OK);
    assert.deepEqual(got, ["m0", "m1", "m2"]);
  });

  it("ends a stream with an error after the messages written", async () => {
    const got: string[] = [];
    const stream = client.makeServerStreamRequest("/test.v1.Test/Count", encode, decode, {
      text: "fail",
      n: 2,
    });
    stream.on("data", (m: Msg) => got.push(m.text));
    const [err] = await once(stream, "error");
    assert.equal(err.code, status.ABORTED);
    assert.equal(err.details, "stopped");
    assert.deepEqual(got, ["m0", "m1"]);
  });

  it("tells a streaming handler when the client cancels", async () => {
    lastCall = undefined;
    const stream = client.makeServerStreamRequest("/test.v1.Test/Count", encode, decode, {
      text: "hold",
      n: 1,
    });
    stream.on("error", () => {});
    await once(stream, "data");
    const call = lastCall as ServerCall<Msg> | undefined;
    assert.ok(call);
    stream.cancel();
    await once(call, "cancelled");
    assert.equal(call.cancelled, true);
    assert.equal(call.getDeadline(), Number.POSITIVE_INFINITY);
    assert.equal(call.write({ text: "late" }), true); // a no-op once the call is gone
  });

  it("takes a client stream", async () => {
    const res = await new Promise<Msg>((resolve, reject) => {
      const stream = client.makeClientStreamRequest("/test.v1.Test/Sum", encode, decode, (err, r) =>
        err ? reject(err) : resolve(r as Msg),
      );
      for (let i = 1; i <= 20; i++) stream.write({ text: String.fromCharCode(96 + i), n: i });
      stream.end();
    });
    assert.deepEqual(res, { text: "abcdefghijklmnopqrst", n: 210 });
  });

  it("answers 415 to a request that is not gRPC, UNIMPLEMENTED to a compressed message", async () => {
    const session = connect("http://localhost", { createConnection: () => connectUnix(address) });
    try {
      const plain = session.request({
        ":method": "POST",
        ":path": "/test.v1.Test/Echo",
        "content-type": "text/plain",
      });
      plain.end();
      const [headers] = await once(plain, "response");
      assert.equal(headers[":status"], 415);
      plain.resume();

      const req = session.request({
        ":method": "POST",
        ":path": "/test.v1.Test/Echo",
        "content-type": "application/grpc",
      });
      const body = encode({ text: "z" });
      const prefix = Buffer.alloc(5);
      prefix[0] = 1;
      prefix.writeUInt32BE(body.length, 1);
      req.end(Buffer.concat([prefix, body]));
      const [h] = await once(req, "response");
      assert.equal(h["grpc-status"], String(Status.UNIMPLEMENTED));
      req.resume();
    } finally {
      session.close();
    }
  });

  it("reports a failed accept() and goes on serving", async () => {
    const errors: Error[] = [];
    const other = new GrpcServer({ maxMessageBytes: MAX, onAcceptError: (err) => errors.push(err) });
    other.addService(service, impl);
    const path = join(dir, "accept.sock");
    await other.listen(path);
    const c = new Client(`unix://${path}`, credentials.createInsecure());
    try {
      // What net.Server emits when accept() fails (EMFILE, ENFILE…).
      (other as unknown as { server: import("node:events").EventEmitter }).server.emit(
        "error",
        Object.assign(new Error("accept EMFILE"), { code: "EMFILE" }),
      );
      assert.equal(errors[0]?.message, "accept EMFILE");
      const res = await new Promise<Msg>((resolve, reject) =>
        c.makeUnaryRequest("/test.v1.Test/Echo", encode, decode, { text: "ok" }, (err, r) =>
          err ? reject(err) : resolve(r as Msg),
        ),
      );
      assert.deepEqual(res, { text: "ok" });
    } finally {
      c.close();
      other.destroy();
    }
  });

  it("close() waits for the calls in flight", async () => {
    const other = new GrpcServer({ maxMessageBytes: MAX });
    let answer: (() => void) | undefined;
    other.addService(service, {
      echo: (call: UnaryCall<Msg>, cb: (e: null, r: Msg) => void) => {
        answer = () => cb(null, { text: call.request.text });
      },
    });
    const path = join(dir, "other.sock");
    await other.listen(path);
    const c = new Client(`unix://${path}`, credentials.createInsecure());
    try {
      const res = new Promise<Msg>((resolve, reject) =>
        c.makeUnaryRequest("/test.v1.Test/Echo", encode, decode, { text: "last" }, (err, r) =>
          err ? reject(err) : resolve(r as Msg),
        ),
      );
      while (!answer) await new Promise((r) => setTimeout(r, 5));
      let closed = false;
      const closing = other.close().then(() => {
        closed = true;
      });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(closed, false);
      answer();
      assert.deepEqual(await res, { text: "last" });
      await closing;
    } finally {
      c.close();
      other.destroy();
    }
  });
});
