/**
 * berthd --backend docker against a private Debian dockerd (src/tools/dockerd-process.ts): the
 * CRI scenarios every backend passes, and an engine that is down.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BerthdProcess } from "../../tools/berthd-process.js";
import { DockerdProcess, dockerMissing } from "../../tools/dockerd-process.js";
import { backendScenarios } from "../harness/backend-scenarios.js";
import { type GrpcError, runtimeClient } from "../harness/cri.js";

const skip = await dockerMissing();
let dockerd: DockerdProcess | undefined;

backendScenarios({
  name: "Docker Engine backend",
  skip,
  bridge: "berthdk0",
  subnet: "10.240.0.0/16",
  setUp: async () => {
    dockerd = await DockerdProcess.start();
    return `backend = "docker"\ndocker_endpoint = "${dockerd.endpoint}"`;
  },
  tearDown: async () => {
    await dockerd?.stop();
  },
});

describe("Docker Engine backend: engine down", { skip }, () => {
  it("an engine that is down answers UNAVAILABLE naming its endpoint", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-docker-down-"));
    const down = await BerthdProcess.start({
      toml: `backend = "docker"\ndocker_endpoint = "unix://${dir}/no-docker.sock"\n`,
    });
    try {
      const c = runtimeClient(down.socket);
      await assert.rejects(c.call("listContainers", {}), (err: GrpcError) => {
        assert.equal(err.code, 14);
        assert.match(err.details, /no-docker\.sock/);
        return true;
      });
      c.client.close();
    } finally {
      await down.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
