import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ImageRecord, ImageStore } from "./image-store.js";

const hex = (c: string) => c.repeat(64);
function record(id: string, tags: string[]): ImageRecord {
  return {
    id: `sha256:${hex(id)}`,
    repoTags: tags,
    repoDigests: [],
    manifestDigest: `sha256:${hex("f")}`,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    size: 1,
    layers: [],
    platform: "linux/amd64",
    user: "",
    createdAt: "2024-01-01T00:00:00.000Z",
    updatedAt: "2024-01-01T00:00:00.000Z",
  };
}

describe("ImageStore", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "berth-images-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("moves a tag to the newest image and keeps the old one untagged", async () => {
    const s = new ImageStore(root);
    await s.init();
    await s.put(record("a", ["docker.io/library/x:1", "docker.io/library/x:latest"]));
    await s.put(record("b", ["docker.io/library/x:latest"]));
    assert.deepEqual(s.get(`sha256:${hex("a")}`)?.repoTags, ["docker.io/library/x:1"]);
    assert.equal(s.find("docker.io/library/x:latest")?.id, `sha256:${hex("b")}`);
  });

  it("finds by id, unique id prefix, tag and digest; not by an ambiguous prefix", async () => {
    const s = new ImageStore(root);
    await s.init();
    assert.equal(s.find(hex("a"))?.id, `sha256:${hex("a")}`);
    assert.equal(s.find("bbbb")?.id, `sha256:${hex("b")}`);
    assert.equal(s.find("sha256:aaa")?.id, `sha256:${hex("a")}`);
    assert.equal(s.find("cc"), undefined);
  });

  it("persists atomically and reloads the same records", async () => {
    const s = new ImageStore(root);
    await s.init();
    assert.equal(s.list().length, 2);
    await s.update(`sha256:${hex("a")}`, () => undefined);
    const reloaded = new ImageStore(root);
    await reloaded.init();
    assert.deepEqual(
      reloaded.list().map((i) => i.id),
      [`sha256:${hex("b")}`],
    );
    // No temp files left beside the document.
    assert.deepEqual(await readdir(join(root, "metadata")), ["images.json"]);
    assert.equal(JSON.parse(await readFile(join(root, "metadata/images.json"), "utf8")).version, 1);
  });
});
