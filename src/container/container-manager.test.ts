/**
 * The container manager against a fake runtime, a fake rootfs and a pod manager on fakes: no
 * root, no runc. What the CRI promises of containers: refusals that leave nothing, name
 * reservation, the state machine, idempotent stop/remove, events in order, the pod's pid
 * namespace joined.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { pino } from "pino";
import {
  ContainerConfig,
  type DeepPartial,
  NamespaceMode,
  PodSandboxConfig,
} from "../api/gen/runtime/v1/api.js";
import { isBerthError } from "../common/errors.js";
import { EventBus } from "../events/bus.js";
import type { ImageRecord } from "../image/image-store.js";
import { PodInits } from "../pod/pod-init.js";
import { SandboxManager } from "../pod/sandbox-manager.js";
import { FakeHost, FakeNetwork, FakeRuntime, fakeHandlers } from "../test/fakes.js";
import { type ContainerImages, ContainerManager, type ContainerRecord } from "./container-manager.js";

const code = (c: string) => (err: unknown) => isBerthError(err) && err.code === c;

const IMAGE = "docker.io/library/busybox:latest";
const image = {
  id: "sha256:feed",
  repoTags: [IMAGE],
  repoDigests: [],
  layers: [{ chainId: "sha256:layer" }],
} as unknown as ImageRecord;

const images: ContainerImages = {
  find: (ref) => (ref === IMAGE || ref === "busybox" ? image : undefined),
  readConfig: async () => ({ config: { Cmd: ["sh"], Env: ["PATH=/bin"] } }),
  snapshots: { fsPath: (chainId: string) => `/snapshots/${chainId}` },
};

describe("ContainerManager (fake runtime, rootfs and pods)", () => {
  let dir: string;
  let runtime: FakeRuntime;
  let pods: SandboxManager;
  let containers: ContainerManager;
  let events: EventBus<ContainerRecord>;
  const mounted = new Set<string>();

  const podConfig = (name: string, pid = NamespaceMode.CONTAINER) =>
    PodSandboxConfig.fromPartial({
      metadata: { name, namespace: "ns", uid: `uid-${name}`, attempt: 0 },
      logDirectory: join(dir, "logs", name),
      linux: { securityContext: { namespaceOptions: { pid } } },
    });
  const ctr = (name: string, over: DeepPartial<ContainerConfig> = {}) =>
    ContainerConfig.fromPartial({
      metadata: { name },
      image: { image: IMAGE },
      command: ["sleep", "1"],
      logPath: `${name}.log`,
      ...over,
    });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-containers-unit-"));
    runtime = new FakeRuntime();
    const handlers = fakeHandlers(runtime);
    pods = new SandboxManager({
      root: join(dir, "root"),
      state: join(dir, "state"),
      logger: pino({ level: "silent" }),
      cni: new FakeNetwork(),
      host: new FakeHost(),
      handlers,
      inits: new PodInits({ root: join(dir, "root"), handlers, binary: "/dev/null" }),
    });
    await pods.init();
    events = new EventBus<ContainerRecord>();
    containers = new ContainerManager({
      root: join(dir, "root"),
      logger: pino({ level: "silent" }),
      images,
      pods,
      handlers,
      oomScoreAdjMin: 0,
      events,
      rootfs: {
        mount: async (_lowers, d) => {
          await mkdir(join(d, "rootfs"), { recursive: true });
          mounted.add(d);
          return { rootfs: join(d, "rootfs") };
        },
        remove: async (d) => {
          mounted.delete(d);
          await rm(d, { recursive: true, force: true });
        },
      },
    });
    await containers.init();
  });
  afterEach(async () => {
    containers.close();
    mounted.clear();
    await rm(dir, { recursive: true, force: true });
  });

  it("creates, starts, stops and removes, publishing each step", async () => {
    const sub = events.subscribe();
    const pod = await pods.run(podConfig("p"), "");
    const c = await containers.create(pod.id, ctr("web"));
    assert.equal(c.state, "CONTAINER_CREATED");
    assert.equal(c.logPath, join(dir, "logs", "p", "web.log"));
    const spec = JSON.parse(await readFile(join(c.dir, "config.json"), "utf8"));
    assert.deepEqual(spec.process.args, ["sleep", "1"]);
    await containers.start(c.id);
    assert.equal(containers.store.get(c.id)?.state, "CONTAINER_RUNNING");
    await assert.rejects(containers.start(c.id), code("FailedPrecondition"));
    await containers.stop(c.id, 0);
    const stopped = containers.store.get(c.id);
    assert.equal(stopped?.state, "CONTAINER_EXITED");
    assert.equal(stopped?.exitCode, 143);
    await containers.stop(c.id, 0); // idempotent
    await containers.remove(c.id);
    await containers.remove(c.id);
    assert.equal(containers.store.get(c.id), undefined);
    assert.ok(!mounted.has(c.dir), "rootfs removed");
    const kinds: string[] = [];
    for (let e = await sub.next(); e; e = kinds.length < 4 ? await sub.next() : undefined) kinds.push(e.kind);
    assert.deepEqual(kinds, ["created", "started", "stopped", "deleted"]);
  });

  it("refusals create nothing: bad config, unknown image, pod not ready, log path outside", async () => {
    const pod = await pods.run(podConfig("p"), "");
    await assert.rejects(containers.create(pod.id, ctr("a\0b")), code("InvalidArgument"));
    await assert.rejects(containers.create(pod.id, ctr("x", { image: { image: "nope" } })), code("NotFound"));
    await assert.rejects(
      containers.create(pod.id, ctr("x", { logPath: "../../x.log" })),
      code("InvalidArgument"),
    );
    await pods.stop(pod.id);
    await assert.rejects(containers.create(pod.id, ctr("x")), code("FailedPrecondition"));
    assert.deepEqual(containers.store.list(), []);
    assert.equal(mounted.size, 0);
  });

  it("names are reserved per pod; a failed create releases the name and its rootfs", async () => {
    const pod = await pods.run(podConfig("p"), "");
    await containers.create(pod.id, ctr("web"));
    await assert.rejects(containers.create(pod.id, ctr("web")), code("AlreadyExists"));
    runtime.failCreate = true;
    await assert.rejects(containers.create(pod.id, ctr("other")), /runc create failed/);
    assert.equal(containers.store.list().length, 1);
    assert.equal(mounted.size, 1);
    runtime.failCreate = false;
    await containers.create(pod.id, ctr("other"));
  });

  it("an exit nobody asked about is recorded on refresh", async () => {
    const pod = await pods.run(podConfig("p"), "");
    const c = await containers.create(pod.id, ctr("web"));
    await containers.start(c.id);
    runtime.exit(c.id, 3);
    const after = await containers.refresh(c.id);
    assert.equal(after?.state, "CONTAINER_EXITED");
    assert.equal(after?.exitCode, 3);
  });

  it("an exit seen while StartContainer is finishing is recorded after it, with its exit code", async () => {
    const pod = await pods.run(podConfig("p"), "");
    const c = await containers.create(pod.id, ctr("quick"));
    const sub = events.subscribe();
    // The process exits before runc start has returned, and the exit watch asks at once.
    runtime.onStart = async (id) => {
      runtime.exit(id, 5);
      await containers.refresh(id);
    };
    await containers.start(c.id);
    const after = await containers.refresh(c.id);
    assert.equal(after?.state, "CONTAINER_EXITED");
    assert.equal(after?.exitCode, 5);
    const seen: string[] = [];
    for (let e = await sub.next(); e; e = seen.length < 2 ? await sub.next() : undefined) seen.push(e.kind);
    assert.deepEqual(seen, ["started", "stopped"]);
  });

  it("an exited container's runtime state goes at its exit; RemoveContainer does not delete it again", async () => {
    const pod = await pods.run(podConfig("p"), "");
    const stopped = await containers.create(pod.id, ctr("stopped"));
    await containers.start(stopped.id);
    await containers.stop(stopped.id, 0);
    // StopContainer returns once the runtime state is gone, as containerd's does.
    assert.deepEqual(runtime.deleted, [stopped.id]);
    assert.equal(containers.store.get(stopped.id)?.exitCode, runtime.stopExitCode);
    await containers.remove(stopped.id);
    assert.deepEqual(runtime.deleted, [stopped.id]);

    const exited = await containers.create(pod.id, ctr("exited"));
    await containers.start(exited.id);
    runtime.exit(exited.id, 3);
    await containers.refresh(exited.id);
    for (let i = 0; i < 100 && !runtime.deleted.includes(exited.id); i++)
      await new Promise((r) => setImmediate(r));
    assert.deepEqual(runtime.deleted, [stopped.id, exited.id]);
    // The status stays what the exit said.
    const after = await containers.refresh(exited.id);
    assert.equal(after?.state, "CONTAINER_EXITED");
    assert.equal(after?.exitCode, 3);
    await containers.remove(exited.id);
    assert.equal(runtime.deleted.length, 2);
    assert.equal(mounted.size, 0);
  });

  it("an exit recorded but not yet deleted from the runtime (e.g. before a restart): RemoveContainer deletes it", async () => {
    const pod = await pods.run(podConfig("p"), "");
    const c = await containers.create(pod.id, ctr("web"));
    await containers.start(c.id);
    // As a record that a restarted berthd reads: exited, its runtime state still there.
    await containers.store.update(c.id, (r) => ({ ...r, state: "CONTAINER_EXITED", exitCode: 1 }));
    await containers.remove(c.id);
    assert.deepEqual(runtime.deleted, [c.id]);
    assert.equal(containers.store.get(c.id), undefined);
  });

  it("stop and remove refuse empty and ambiguous ids, accept unknown ones", async () => {
    const pod = await pods.run(podConfig("p"), "");
    const made: ContainerRecord[] = [];
    // Until two ids share a first character (17 at most).
    while (!made.some((a, i) => made.some((b, j) => i !== j && a.id[0] === b.id[0]))) {
      made.push(await containers.create(pod.id, ctr(`c${made.length}`)));
    }
    const prefix = made.find((a, i) => made.some((b, j) => i !== j && a.id[0] === b.id[0]))!.id[0]!;
    await assert.rejects(containers.stop("", 0), code("InvalidArgument"));
    await assert.rejects(containers.stop(prefix, 0), code("InvalidArgument"));
    await assert.rejects(containers.remove(prefix), code("InvalidArgument"));
    await containers.stop("f".repeat(64), 0);
    await containers.remove("f".repeat(64));
    assert.equal(containers.store.list().length, made.length);
  });

  it("a container of a pod sharing its pid namespace joins its init's", async () => {
    const pod = await pods.run(podConfig("shared", NamespaceMode.POD), "");
    const c = await containers.create(pod.id, ctr("web"));
    const spec = JSON.parse(await readFile(join(c.dir, "config.json"), "utf8"));
    const pid = spec.linux.namespaces.find((n: { type: string }) => n.type === "pid");
    assert.deepEqual(pid, { type: "pid", path: "/proc/100/ns/pid" });
  });
});
