import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { after, describe, it } from "node:test";
import { SpdyConnection, type SpdyConnectionOptions, type SpdyStream } from "./connection.js";
import {
  type Frame,
  FrameEncoder,
  FrameParser,
  GoAwayStatus,
  RstStatus,
  SpdyProtocolError,
} from "./frames.js";

const sockets: net.Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
});

async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, "connection");
  const client = net.connect(port, "127.0.0.1");
  const [serverSide] = (await accepted) as [net.Socket];
  await once(client, "connect");
  server.close();
  sockets.push(client, serverSide);
  return [client, serverSide];
}

async function pair(
  clientOpts: Partial<SpdyConnectionOptions> = {},
  serverOpts: Partial<SpdyConnectionOptions> = {},
): Promise<{ client: SpdyConnection; server: SpdyConnection; rawClient: net.Socket; rawServer: net.Socket }> {
  const [c, s] = await socketPair();
  return {
    client: new SpdyConnection(c, { isServer: false, ...clientOpts }),
    server: new SpdyConnection(s, { isServer: true, ...serverOpts }),
    rawClient: c,
    rawServer: s,
  };
}

/** Reads the peer's side to its FIN. (Not `for await`: that destroys the Duplex, i.e. RST.) */
async function readAll(stream: SpdyStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream.iterator({ destroyOnReturn: false })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function withTimeout<T>(p: Promise<T>, ms = 20_000, what = "operation"): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
    }),
  ]);
}

describe("SpdyConnection", { timeout: 30_000 }, () => {
  it("carries 5 header-only streams with > 1 MiB each way and no WINDOW_UPDATE", async () => {
    const { client, server } = await pair();
    const types = ["stdin", "stdout", "stderr", "error", "resize"];
    const payloads = new Map(types.map((t) => [t, randomBytes(1_200_000 + types.indexOf(t))]));
    const serverSeen = new Map<string, Promise<string>>();
    server.onStream((stream) => {
      assert.equal(stream.headers[":method"], undefined);
      const type = stream.headers.streamtype!;
      assert.equal(stream.headers.requestid, "0");
      stream.reply({});
      serverSeen.set(type, readAll(stream).then(sha));
      // Reply with the reversed payload, written in odd-sized pieces, then FIN.
      const out = Buffer.from(payloads.get(type)!).reverse();
      (async () => {
        for (let off = 0; off < out.length; off += 100_003) {
          if (!stream.write(out.subarray(off, off + 100_003))) await once(stream, "drain");
        }
        stream.end();
      })();
    });
    const results = await withTimeout(
      Promise.all(
        types.map(async (type) => {
          const s = client.openStream({ streamtype: type, requestid: "0" });
          assert.equal(s.id % 2, 1);
          const got = readAll(s);
          s.end(payloads.get(type));
          return [type, await got] as const;
        }),
      ),
    );
    for (const [type, got] of results) {
      assert.equal(sha(got), sha(Buffer.from(payloads.get(type)!).reverse()), type);
      assert.equal(await serverSeen.get(type), sha(payloads.get(type)!), type);
    }
    assert.equal(client.windowUpdatesReceived, 0);
    assert.equal(server.windowUpdatesReceived, 0);
    await withTimeout(client.close());
    if (!server.isClosed) await withTimeout(once(server, "close"), 5000, "server close");
  });

  it("half-closes with FIN and holds writes until SYN_REPLY", async () => {
    const { client, server } = await pair();
    server.onStream(async (stream) => {
      // Reply late: the client's early write must be held, not dropped (spdystream drops DATA
      // on unreplied streams, so we must never send it).
      await new Promise((r) => setTimeout(r, 50));
      stream.reply({ ok: "1" });
      const data = await readAll(stream); // ends at the client's FIN
      stream.write(`got ${data.toString()}`);
      stream.end();
    });
    const s = client.openStream({ streamtype: "stdin" });
    s.write("early");
    s.end(" bytes");
    const [headers] = (await once(s, "reply")) as [Record<string, string>];
    assert.equal(headers.ok, "1");
    assert.equal((await withTimeout(readAll(s))).toString(), "got early bytes");
    if (!s.closed) await withTimeout(once(s, "close"), 5000, "stream close");
    assert.equal(s.rstStatus, undefined);
    assert.equal(client.streamCount, 0);
    client.destroy();
  });

  it("resets streams both ways and refuses streams without a handler", async () => {
    const { client, server } = await pair();
    // no handler yet: refused
    const refused = client.openStream({ streamtype: "stdout" });
    const [status, byPeer] = await once(refused, "reset");
    assert.equal(status, RstStatus.REFUSED_STREAM);
    assert.equal(byPeer, true);

    const serverStreams: SpdyStream[] = [];
    server.onStream((s) => {
      serverStreams.push(s);
      s.reply();
    });
    const a = client.openStream({ streamtype: "error" });
    await once(a, "reply");
    const serverReset = once(serverStreams[0]!, "reset");
    a.reset(RstStatus.CANCEL);
    assert.deepEqual(await serverReset, [RstStatus.CANCEL, true]);
    const writeErr = await new Promise<Error | null | undefined>((resolve) => a.write("x", resolve));
    assert.ok(writeErr, "write after reset fails");

    const b = client.openStream({ streamtype: "resize" });
    await once(b, "reply");
    const closed = once(b, "close");
    serverStreams[1]!.reset(RstStatus.INTERNAL_ERROR);
    await closed;
    assert.equal(b.rstStatus, RstStatus.INTERNAL_ERROR);
    assert.equal(b.resetByPeer, true);
    // a destroyed stream (without FIN both ways) sends RST CANCEL
    const c = client.openStream({ streamtype: "stdin" });
    await once(c, "reply");
    const cReset = once(serverStreams[2]!, "reset");
    c.destroy();
    assert.deepEqual(await cReset, [RstStatus.CANCEL, true]);
    client.destroy();
  });

  it("answers PINGs in both directions", async () => {
    const { client, server } = await pair();
    const rtt = await withTimeout(client.ping());
    assert.ok(rtt >= 0);
    assert.ok((await withTimeout(server.ping())) >= 0);
    await Promise.all([client.ping(), client.ping(), server.ping()]);
    client.destroy();
  });

  it("GOAWAY: no new streams, open ones finish, then the connection closes", async () => {
    const { client, server } = await pair();
    const serverStreams: SpdyStream[] = [];
    server.onStream((s) => {
      serverStreams.push(s);
      s.reply();
    });
    const s = client.openStream({ port: "80", requestid: "1" });
    await once(s, "reply");
    const goaway = once(server, "goaway");
    const clientClosed = client.close();
    const [lastGood, status] = await goaway;
    assert.equal(lastGood, 0);
    assert.equal(status, GoAwayStatus.OK);
    assert.throws(() => server.openStream({ a: "b" }), /going away/);
    assert.throws(() => client.openStream({ a: "b" }), /going away/);
    // the open stream still works both ways
    const got = readAll(serverStreams[0]!);
    s.end("still here");
    assert.equal((await got).toString(), "still here");
    serverStreams[0]!.end("bye");
    assert.equal((await readAll(s)).toString(), "bye");
    await withTimeout(clientClosed, 5000, "client close");
    if (!server.isClosed) await withTimeout(once(server, "close"), 5000, "server close");
  });

  it("closing the socket ends every stream", async () => {
    const { client, server, rawClient } = await pair();
    const serverStreams: SpdyStream[] = [];
    server.onStream((s) => {
      serverStreams.push(s);
      s.reply();
    });
    const mine = ["stdin", "stdout", "stderr"].map((t) => client.openStream({ streamtype: t }));
    await Promise.all(mine.map((m) => once(m, "reply")));
    const closes = [...serverStreams, ...mine].map((s) => once(s, "close"));
    const serverClose = once(server, "close");
    const pending = client.ping(10_000).then(
      () => new Error("ping answered"),
      (err: Error) => err,
    );
    rawClient.destroy();
    await withTimeout(Promise.all(closes), 5000, "stream close");
    await withTimeout(serverClose, 5000, "server close");
    assert.match((await pending).message, /closed/);
    assert.equal(server.streamCount, 0);
    assert.equal(client.isClosed, true);
  });

  it("sends WINDOW_UPDATE only when asked to", async () => {
    const { client, server } = await pair({}, { sendWindowUpdates: true });
    server.onStream((s) => {
      s.reply();
      s.resume();
    });
    const s = client.openStream({ streamtype: "stdin" });
    s.end(Buffer.alloc(300_000));
    await once(s, "finish");
    await client.ping();
    await server.ping();
    assert.ok(client.windowUpdatesReceived >= 2, `got ${client.windowUpdatesReceived}`);
    client.destroy();
  });

  it("applies inbound backpressure without losing data", async () => {
    const { client, server } = await pair({}, { streamHighWaterMark: 16 * 1024 });
    let serverStream: SpdyStream | undefined;
    server.onStream((s) => {
      serverStream = s;
      s.reply();
    });
    const s = client.openStream({ streamtype: "stdin" });
    const data = randomBytes(4 * 1024 * 1024);
    s.end(data);
    await new Promise((r) => setTimeout(r, 200)); // nobody reads on the server meanwhile
    assert.ok(serverStream);
    assert.ok(serverStream.readableLength < data.length);
    assert.equal(sha(await withTimeout(readAll(serverStream))), sha(data));
    client.destroy();
  });

  describe("malformed input closes the connection without crashing", () => {
    async function rawToServer(bytes: Buffer, opts: Partial<SpdyConnectionOptions> = {}) {
      const [c, s] = await socketPair();
      const server = new SpdyConnection(s, { isServer: true, ...opts });
      server.onStream((st) => st.reply());
      const frames: Frame[] = [];
      const parser = new FrameParser((f) => frames.push(f));
      c.on("data", (d: Buffer) => parser.push(d));
      const closed = once(server, "close");
      c.write(bytes);
      const [err] = (await withTimeout(closed, 5000, "server close")) as [Error | undefined];
      await withTimeout(once(c, "close"), 5000, "socket close");
      return { err, frames };
    }

    it("bad version", async () => {
      const { err, frames } = await rawToServer(Buffer.from("800200060000000400000001", "hex"));
      assert.ok(err instanceof SpdyProtocolError);
      assert.match(err.message, /version/);
      assert.deepEqual(frames, [
        { type: "GOAWAY", lastGoodStreamId: 0, status: GoAwayStatus.PROTOCOL_ERROR },
      ]);
    });

    it("oversize frame", async () => {
      const { err } = await rawToServer(Buffer.from("0000000100100000", "hex"), { maxFrameSize: 65536 });
      assert.match(String(err), /exceeds the limit/);
    });

    it("truncated header block (after a valid stream)", async () => {
      const enc = new FrameEncoder();
      const good = enc.encode({
        type: "SYN_STREAM",
        streamId: 1,
        flags: 0,
        headers: { streamtype: "stdout" },
      });
      const bad = enc.encode({
        type: "SYN_STREAM",
        streamId: 3,
        flags: 0,
        headers: { streamtype: "x".repeat(100) },
      });
      const cut = Buffer.from(bad.subarray(0, bad.length - 10));
      cut.writeUIntBE(cut.length - 8, 5, 3);
      const { err, frames } = await rawToServer(Buffer.concat([good, cut]));
      assert.match(String(err), /SYN_STREAM/);
      assert.deepEqual(
        frames.map((f) => f.type),
        ["SYN_REPLY", "GOAWAY"],
      );
      assert.deepEqual(frames[1], {
        type: "GOAWAY",
        lastGoodStreamId: 1,
        status: GoAwayStatus.PROTOCOL_ERROR,
      });
    });

    it("stream ids of the wrong parity or going backwards are reset", async () => {
      const [c, s] = await socketPair();
      const server = new SpdyConnection(s, { isServer: true });
      const seen: number[] = [];
      server.onStream((st) => {
        seen.push(st.id);
        st.reply();
      });
      const frames: Frame[] = [];
      const parser = new FrameParser((f) => frames.push(f));
      c.on("data", (d: Buffer) => parser.push(d));
      const enc = new FrameEncoder();
      for (const id of [2, 5, 3, 7])
        c.write(enc.encode({ type: "SYN_STREAM", streamId: id, flags: 0, headers: {} }));
      c.write(enc.encode({ type: "PING", id: 1 }));
      while (!frames.some((f) => f.type === "PING")) await once(c, "data");
      assert.deepEqual(seen, [5, 7]);
      assert.deepEqual(
        frames.filter((f) => f.type === "RST_STREAM"),
        [
          { type: "RST_STREAM", streamId: 2, status: RstStatus.PROTOCOL_ERROR },
          { type: "RST_STREAM", streamId: 3, status: RstStatus.PROTOCOL_ERROR },
        ],
      );
      server.destroy();
    });
  });
});
