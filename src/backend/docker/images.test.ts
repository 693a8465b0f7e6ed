import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mirrorHosts, toCriImage } from "./images.js";

const D = `sha256:${"ab".repeat(32)}`;
const image = (RepoTags: string[], RepoDigests: string[]) => ({
  Id: "sha256:1",
  Size: 1,
  RepoTags,
  RepoDigests,
});
const mirrors = mirrorHosts({
  mirrors: {
    "registry.k8s.io": { endpoints: ["http://127.0.0.1:5055"] },
    "gcr.io": { endpoints: ["http://127.0.0.1:5055", "https://m.example/v2"] },
  },
});

describe("Docker images in CRI form", () => {
  it("names are full references; <none> is not a name", () => {
    const img = toCriImage(image(["busybox:1", "<none>:<none>"], [`busybox@${D}`, "<none>@<none>"]));
    assert.deepEqual(img.repoTags, ["docker.io/library/busybox:1"]);
    assert.deepEqual(img.repoDigests, [`docker.io/library/busybox@${D}`]);
  });

  it("mirror hosts map to the registries they stand for", () => {
    assert.deepEqual(
      [...mirrors].map(([h, s]) => [h, [...s]]),
      [
        ["127.0.0.1:5055", ["registry.k8s.io", "gcr.io"]],
        ["m.example", ["gcr.io"]],
      ],
    );
  });

  it("a pull through a mirror is shown under the registry asked for, without the mirror's tag", () => {
    const img = toCriImage(
      image(["127.0.0.1:5055/pause:3.9", "registry.k8s.io/pause:3.9"], [`127.0.0.1:5055/pause@${D}`]),
      mirrors,
    );
    assert.deepEqual(img.repoTags, ["registry.k8s.io/pause:3.9"]);
    assert.deepEqual(img.repoDigests, [`registry.k8s.io/pause@${D}`]);
  });

  it("without a mirror entry, or another repository, names stay as Docker has them", () => {
    const img = toCriImage(
      image(
        ["127.0.0.1:5055/pause:3.9", "quay.io/pause:3.9"],
        [`127.0.0.1:5055/pause@${D}`, `quay.io/other@${D}`],
      ),
      mirrors,
    );
    assert.deepEqual(img.repoTags, ["127.0.0.1:5055/pause:3.9", "quay.io/pause:3.9"]);
    assert.deepEqual(img.repoDigests, [`127.0.0.1:5055/pause@${D}`, `quay.io/other@${D}`]);
  });
});
