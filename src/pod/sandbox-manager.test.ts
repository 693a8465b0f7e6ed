/**
 * The sandbox manager against a fake host (namespaces, mounts), a fake CNI and a fake runtime:
 * no root. What the CRI promises of pods: name reservation, refusals that leave nothing, a
 * failure midway undone, the init only for a shared pid namespace, stop/remove idempotent.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { pino } from "pino";
import { NamespaceMode, PodSandboxConfig } from "../api/gen/runtime/v1/api.js";
import { isBerthError } from "../common/errors.js";
import { FakeHost, FakeNetwork, FakeRuntime, fakeHandlers } from "../test/fakes.js";
import { PodInits } from "./pod-init.js";
import { SandboxManager } from "./sandbox-manager.js";

const code = (c: string) => (err: unknown) => isBerthError(err) && err.code === c;

describe("SandboxManager (fake host, CNI and runtime)", () => {
  let dir: string;
  let host: FakeHost;
  let net: FakeNetwork;
  let runtime: FakeRuntime;
  let pods: SandboxManager;

  const config = (name: string, pid: NamespaceMode = NamespaceMode.CONTAINER, over = {}) =>
    PodSandboxConfig.fromPartial({
      metadata: { name, namespace: "ns", uid: `uid-${name}`, attempt: 0 },
      hostname: name,
      linux: { securityContext: { namespaceOptions: { pid } } },
      ...over,
    });

  const manager = () => {
    const handlers = fakeHandlers(runtime);
    return new SandboxManager({
      root: join(dir, "root"),
      state: join(dir, "state"),
      logger: pino({ level: "silent" }),
      cni: net,
      host,
      handlers,
      inits: new PodInits({ root: join(dir, "root"), handlers, binary: join(dir, "pause") }),
    });
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-sandbox-unit-"));
    await writeFile(join(dir, "pause"), "not really a program");
    host = new FakeHost();
    net = new FakeNetwork();
    runtime = new FakeRuntime();
    pods = manager();
    await pods.init();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("runs a pod: files, namespaces, network, READY; the name is reserved", async () => {
    const pod = await pods.run(config("web"), "");
    assert.equal(pod.state, "SANDBOX_READY");
    assert.deepEqual(pod.ips, ["10.9.0.7"]);
    assert.equal(pod.runtimeHandler, "runc");
    assert.equal(await readFile(join(pod.dir, "hostname"), "utf8"), "web\n");
    assert.match(await readFile(join(pod.dir, "hosts"), "utf8"), /10\.9\.0\.7\tweb/);
    assert.ok(net.added.has(pod.id));
    await assert.rejects(pods.run(config("web"), ""), code("AlreadyExists"));
  });

  it("a refused request creates nothing", async () => {
    await assert.rejects(
      pods.run(config("bad", NamespaceMode.CONTAINER, { hostname: "a b" }), ""),
      code("InvalidArgument"),
    );
    await assert.rejects(pods.run(config("x"), "no-such-handler"), code("NotFound"));
    assert.deepEqual(host.calls, []);
    assert.deepEqual(pods.store.list(), []);
  });

  it("a failure midway undoes every step and releases the name", async () => {
    net.failAdd = true;
    await assert.rejects(pods.run(config("web"), ""), /CNI ADD failed/);
    assert.deepEqual(pods.store.list(), []);
    assert.equal(host.pinned.size, 0, "namespaces removed");
    assert.deepEqual(await readdir(join(dir, "state", "pods")), [], "pod directory removed");
    net.failAdd = false;
    await pods.run(config("web"), ""); // the name is free again
  });

  it("only a pod sharing its pid namespace gets an init, and it goes with the pod", async () => {
    const own = await pods.run(config("own", NamespaceMode.CONTAINER), "");
    assert.equal(own.init, undefined);
    assert.equal(await pods.pidNamespace(own), undefined);
    const shared = await pods.run(config("shared", NamespaceMode.POD), "");
    assert.equal(shared.init, true);
    assert.ok(runtime.containers.has(shared.id));
    assert.equal(await pods.pidNamespace(shared), "/proc/100/ns/pid");
    await pods.stop(shared.id);
    assert.ok(!runtime.containers.has(shared.id));
    await assert.rejects(pods.pidNamespace(shared), code("FailedPrecondition"));
  });

  it("stop releases once; remove after stop does no second CNI DEL; both idempotent", async () => {
    const pod = await pods.run(config("web"), "");
    await pods.stop(pod.id);
    await pods.stop(pod.id);
    assert.equal(net.deletes, 1);
    assert.equal(pods.store.get(pod.id)?.state, "SANDBOX_NOTREADY");
    await pods.remove(pod.id);
    await pods.remove(pod.id);
    assert.equal(net.deletes, 1);
    assert.equal(pods.store.get(pod.id), undefined);
  });

  it("a failing clean-up step does not stop the others", async () => {
    const pod = await pods.run(config("web"), "");
    net.failDel = true;
    await assert.rejects(pods.stop(pod.id), /CNI DEL failed/);
    assert.equal(host.pinned.size, 0, "the namespaces went although CNI DEL failed");
    assert.ok(
      host.calls.some((c) => c.startsWith("unmount ")),
      "the shm went too",
    );
  });

  it("start-up removes half-made pods and sweeps what no pod owns", async () => {
    const pod = await pods.run(config("web"), "");
    await pods.store.update(pod.id, (p) => ({ ...p, phase: "creating" }));
    await writeFile(join(dir, "state", "pods", "orphan-file-dir"), "");
    const again = manager();
    await again.init();
    assert.deepEqual(again.store.list(), []);
    assert.deepEqual(await readdir(join(dir, "state", "pods")), []);
    assert.equal(host.pinned.size, 0);
  });
});
