import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { buildTar } from "../image/unpack/tar-fixture.js";
import { floorLine, PullFloor } from "./floor.js";
import type { BenchImage } from "./image.js";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("bench pull floor", () => {
  let server: Server;
  let url: string;
  let image: BenchImage;

  before(async () => {
    const tars = [
      await buildTar([
        { name: "etc", type: "directory" },
        { name: "etc/hello", data: "hello\n" },
      ]),
      await buildTar([{ name: "big", data: Buffer.alloc(3 << 20, 7) }]),
    ];
    const blobs = new Map<string, Buffer>();
    const layers = tars.map((tar) => {
      const gz = gzipSync(tar);
      blobs.set(sha256(gz), gz);
      return { digest: sha256(gz), diffId: sha256(tar), size: gz.length, tarSize: tar.length };
    });
    image = { layers } as unknown as BenchImage;
    server = createServer((req, res) => {
      const digest = /^\/v2\/test\/blobs\/(sha256:\w+)$/.exec(req.url ?? "")?.[1];
      const blob = digest ? blobs.get(digest) : undefined;
      if (!blob) return void res.writeHead(404).end();
      res.writeHead(200, { "content-length": blob.length }).end(blob);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const built = async (threads: number, compiler?: string) => {
    const floor = await PullFloor.build(threads, compiler);
    assert.ok(floor instanceof PullFloor, `not built: ${"skipped" in floor ? floor.skipped : ""}`);
    return floor;
  };

  it("pulls every layer with both digests right, once a run", async () => {
    const floor = await built(2);
    try {
      for (let i = 0; i < 3; i++) assert.ok((await floor.run(url, "test", image)) >= 0);
      const result = floor.result();
      assert.ok(!("skipped" in result), `floor failed: ${"skipped" in result ? result.skipped : ""}`);
      assert.equal(result.runsMs.length, 3);
      assert.equal(result.threads, 2);
      assert.equal(result.medianMs, [...result.runsMs].sort((a, b) => a - b)[1]);
    } finally {
      await floor.dispose();
    }
  });

  it("fails when a layer does not come out as the image says", async () => {
    const [first, second] = image.layers;
    const wrong = { layers: [first, { ...second, diffId: first?.diffId }] } as unknown as BenchImage;
    const floor = await built(1);
    try {
      await assert.rejects(floor.run(url, "test", wrong), /layer 1 came out as/);
    } finally {
      await floor.dispose();
    }
  });

  it("keeps a failed round's reason as its result, whatever rounds follow", async () => {
    const [first, second] = image.layers;
    const wrong = { layers: [first, { ...second, diffId: first?.diffId }] } as unknown as BenchImage;
    const floor = await built(1);
    try {
      await floor.runRound(url, "test", image);
      await floor.runRound(url, "test", wrong);
      await floor.runRound(url, "test", image);
      const result = floor.result();
      assert.ok("skipped" in result);
      assert.match(result.skipped, /^failed: pull-floor: layer 1 came out as/);
    } finally {
      await floor.dispose();
    }
  });

  it("is skipped, with the reason, when it cannot be built", async () => {
    const floor = await PullFloor.build(1, "/nonexistent/cc");
    assert.ok(!(floor instanceof PullFloor));
    assert.match(floor.skipped, /cannot build .*pull-floor\.c .*ENOENT/);
  });

  it("states the floor against both runtimes", () => {
    const line = floorLine({ threads: 3, runsMs: [600, 610, 620], medianMs: 610 }, 1830, 2033);
    assert.match(line, /0\.61 s = 0\.30x containerd's; Berth's cold pull is 3\.0x the floor$/);
    assert.equal(floorLine({ skipped: "no cc" }, 1830, 2033), "Floor: not measured: no cc");
  });
});
