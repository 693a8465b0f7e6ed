import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isBerthError } from "../common/errors.js";
import { compareApiVersions, DockerEngine, socketPathOf } from "./engine.js";
import { demux, encodeFrame, progressMessages } from "./frames.js";

async function* chunks(...parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield p;
}

describe("docker frames", () => {
  it("demultiplexes frames split anywhere across chunks", async () => {
    const wire = Buffer.concat([
      encodeFrame("stdout", Buffer.from("hello\n")),
      encodeFrame("stderr", Buffer.from("oops")),
      encodeFrame("stdout", Buffer.alloc(0)),
    ]);
    for (let cut = 0; cut <= wire.length; cut++) {
      const frames = [];
      for await (const f of demux(chunks(wire.subarray(0, cut), wire.subarray(cut))))
        frames.push(`${f.stream}:${f.data}`);
      assert.deepEqual(frames, ["stdout:hello\n", "stderr:oops", "stdout:"]);
    }
  });

  it("a torn frame at the end is an error, not silently dropped", async () => {
    const wire = encodeFrame("stdout", Buffer.from("hello"));
    await assert.rejects(async () => {
      for await (const _ of demux(chunks(wire.subarray(0, 10))));
    }, /torn frame/);
  });

  it("progress messages: split lines are joined; an error message throws", async () => {
    const text = '{"status":"Pulling fs layer","id":"aaaaaaaaaaaa"}\n{"status":"Down';
    const rest = 'loading","id":"aaaaaaaaaaaa","progressDetail":{"current":5,"total":10}}\n';
    const got = [];
    for await (const m of progressMessages(chunks(Buffer.from(text), Buffer.from(rest)))) got.push(m.status);
    assert.deepEqual(got, ["Pulling fs layer", "Downloading"]);
    await assert.rejects(async () => {
      for await (const _ of progressMessages(
        chunks(Buffer.from('{"errorDetail":{"message":"denied"},"error":"denied"}\n')),
      ));
    }, /denied/);
  });
});

describe("docker engine client", () => {
  let dir = "";
  let server: Server | undefined;
  let apiVersion = "1.41";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-engine-"));
  });
  after(async () => {
    server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const listen = (path: string) =>
    new Promise<Server>((resolve) => {
      const s = createServer((req, res) => {
        if (req.url === "/version") {
          res.end(JSON.stringify({ Version: "x", ApiVersion: apiVersion }));
        } else if (req.url === "/v1.41/containers/nope/json") {
          res.statusCode = 404;
          res.end(JSON.stringify({ message: "No such container: nope" }));
        } else {
          res.end(JSON.stringify({ url: req.url }));
        }
      });
      s.listen(path, () => resolve(s));
    });

  it("endpoints must be unix:// URLs", () => {
    assert.equal(socketPathOf("unix:///var/run/docker.sock"), "/var/run/docker.sock");
    assert.throws(() => socketPathOf("tcp://1.2.3.4:2375"), /unix:\/\//);
    assert.ok(compareApiVersions("1.9", "1.41") < 0 && compareApiVersions("1.43", "1.41") > 0);
  });

  it("an engine that is down is Unavailable naming the endpoint; it is found again when it comes back", async () => {
    const path = join(dir, "docker.sock");
    const engine = new DockerEngine(`unix://${path}`);
    await assert.rejects(engine.json("GET", "/info"), (err: unknown) => {
      assert.ok(isBerthError(err, "Unavailable"));
      assert.match(err.message, new RegExp(`unix://${path}`));
      return true;
    });
    server = await listen(path);
    assert.deepEqual(await engine.json("GET", "/info", { query: { a: 1 } }), { url: "/v1.41/info?a=1" });
    await assert.rejects(engine.json("GET", "/containers/nope/json"), (err: unknown) => {
      assert.ok(isBerthError(err, "NotFound"));
      assert.match(err.message, /No such container/);
      return true;
    });
    server.close();
    server = undefined;
  });

  it("an engine too old is refused, naming the API version Berth needs", async () => {
    const path = join(dir, "old.sock");
    apiVersion = "1.39";
    const s = await listen(path);
    try {
      await assert.rejects(new DockerEngine(`unix://${path}`).json("GET", "/info"), (err: unknown) => {
        assert.ok(isBerthError(err, "FailedPrecondition"));
        assert.match(err.message, /API 1\.39.*needs API 1\.41/);
        return true;
      });
    } finally {
      s.close();
      apiVersion = "1.41";
    }
  });
});
