import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ContainerConfig } from "../api/gen/runtime/v1/api.js";
import { isBerthError } from "../common/errors.js";
import {
  applyRootfsDiff,
  checkLocation,
  isCheckpointArchive,
  type OpenedCheckpoint,
} from "./checkpoint-archive.js";
import { RESTORED_ANNOTATION, restoreConfig } from "./restore-config.js";

const invalid = (message: RegExp) => (err: unknown) =>
  isBerthError(err, "InvalidArgument") && message.test(err.message);

describe("checkpoint archive", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-cpa-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("checkLocation: an absolute file path in an existing writable directory", async () => {
    await checkLocation(join(dir, "a.tar"));
    await assert.rejects(checkLocation(""), invalid(/empty/));
    await assert.rejects(checkLocation("a.tar"), invalid(/not an absolute path/));
    await assert.rejects(checkLocation("/x\0y"), invalid(/NUL/));
    await assert.rejects(checkLocation(join(dir, "nope", "a.tar")), invalid(/does not exist/));
    await assert.rejects(checkLocation(dir), invalid(/is a directory/));
    if (process.getuid?.() !== 0) {
      const ro = join(dir, "ro");
      await mkdir(ro);
      await chmod(ro, 0o500);
      await assert.rejects(checkLocation(join(ro, "a.tar")), invalid(/not writable/));
    }
  });

  test("an archive is named by an absolute path, an image never is", () => {
    assert.equal(isCheckpointArchive("/var/tmp/c.tar"), true);
    assert.equal(isCheckpointArchive("docker.io/library/busybox:latest"), false);
    assert.equal(isCheckpointArchive("sha256:abc"), false);
  });

  test("deleted.files: paths stay inside the rootfs and never go through a symlink", async () => {
    const rootfs = join(dir, "rootfs");
    const outside = join(dir, "outside");
    await mkdir(join(rootfs, "etc"), { recursive: true });
    await mkdir(outside);
    await writeFile(join(rootfs, "etc", "gone"), "x");
    await writeFile(join(outside, "keep"), "x");
    await symlink(outside, join(rootfs, "link"));
    const opened: OpenedCheckpoint = {
      dir: join(dir, "staging"),
      config: {} as OpenedCheckpoint["config"],
      berth: { containerConfig: "", podId: "" },
    };
    await mkdir(opened.dir);
    await writeFile(
      join(opened.dir, "deleted.files"),
      JSON.stringify(["/etc/gone", "/link/keep", "/../outside/keep", 7]),
    );
    await applyRootfsDiff(opened, rootfs);
    await assert.rejects(readFile(join(rootfs, "etc", "gone")));
    assert.equal(await readFile(join(outside, "keep"), "utf8"), "x");
  });

  test("restoreConfig: the checkpointed container's config, the request's name, log path and labels on top", () => {
    const original = ContainerConfig.fromPartial({
      metadata: { name: "counter", attempt: 3 },
      image: { image: "busybox" },
      command: ["/bin/sh", "-c", "count"],
      logPath: "counter.log",
      labels: { app: "c", pod: "old" },
      annotations: { a: "1" },
    });
    const opened: OpenedCheckpoint = {
      dir: "/x",
      config: {
        id: "id",
        name: "counter",
        rootfsImage: "busybox",
        rootfsImageRef: "sha256:abc",
        rootfsImageName: "docker.io/library/busybox:latest",
        runtime: "runc",
        createdTime: "",
        checkpointedTime: "2026-01-01T00:00:00.000Z",
        restored: false,
      },
      berth: {
        containerConfig: Buffer.from(ContainerConfig.encode(original).finish()).toString("base64"),
        podId: "p",
      },
    };
    const c = restoreConfig(
      opened,
      ContainerConfig.fromPartial({
        image: { image: "/a.tar" },
        labels: { pod: "new" },
        metadata: { name: "", attempt: 1 },
      }),
    );
    assert.deepEqual(c.metadata, { name: "counter", attempt: 1 });
    assert.equal(c.image?.image, "sha256:abc");
    assert.deepEqual(c.command, ["/bin/sh", "-c", "count"]);
    assert.equal(c.logPath, "counter.log");
    assert.deepEqual(c.labels, { app: "c", pod: "new" });
    assert.equal(c.annotations[RESTORED_ANNOTATION], "/a.tar");
    assert.equal(c.annotations["a"], "1");
    const renamed = restoreConfig(
      opened,
      ContainerConfig.fromPartial({ metadata: { name: "copy" }, logPath: "copy.log" }),
    );
    assert.deepEqual([renamed.metadata?.name, renamed.logPath], ["copy", "copy.log"]);
    assert.throws(
      () =>
        restoreConfig(
          { ...opened, berth: { containerConfig: "!!notbase64protobuf", podId: "" } },
          ContainerConfig.fromPartial({}),
        ),
      invalid(/does not decode/),
    );
  });
});
