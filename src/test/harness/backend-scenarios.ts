/**
 * CRI scenarios every backend must pass, run against a real berthd per backend (native:
 * src/test/backend-scenarios.test.ts; Docker Engine: src/test/docker/docker-backend.test.ts):
 * pods on a CNI bridge, containers, CRI logs (reopen, and no line lost or doubled across a
 * berthd crash), exec, state after a restart, refusals, pod removal.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ContainerState, PodSandboxState } from "../../api/gen/runtime/v1/api.js";
import { defaultConflist } from "../../network/default-conflist.js";
import { BerthdProcess } from "../../tools/berthd-process.js";
import { busyboxEntries } from "../../tools/busybox-image.js";
import {
  type BuiltImage,
  buildImage,
  buildLayer,
  dockerSaveArchive,
  tarOf,
} from "../../tools/oci-builder.js";
import { pushImage } from "../../tools/push-image.js";
import { type RegistryHandle, startRegistry } from "../../tools/registry-server.js";
import {
  containerStatus,
  execSync,
  type GrpcError,
  parseCriLogLines,
  type RuntimeClient,
  removeAllPods,
  runtimeClient,
  sleep,
  waitExited,
} from "./cri.js";

const IMAGE = "berth.test/busybox:scenarios";
const MIRRORED_HOST = "registry.berth.invalid";

export interface ScenarioBackend {
  name: string;
  skip: string | false;
  /** Test-only bridge and subnet. */
  bridge: string;
  subnet: string;
  /** Starts what the backend needs; resolves the TOML that selects it. */
  setUp(dir: string): Promise<string>;
  tearDown(): Promise<void>;
}

export function backendScenarios(b: ScenarioBackend): void {
  describe(`CRI scenarios: ${b.name}`, { skip: b.skip }, () => {
    const BRIDGE = b.bridge;
    let dir = "";
    let berthd: BerthdProcess | undefined;
    let rt: RuntimeClient;
    let podId = "";
    let registry: RegistryHandle | undefined;
    let mirrored: BuiltImage | undefined;
    const logDir = () => join(dir, "pod-logs");
    const ipPrefix = new RegExp(`^${b.subnet.split(".").slice(0, 2).join("\\.")}\\.`);

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "berth-scenarios-"));
      const backendToml = await b.setUp(dir);
      // A registry that only a mirror entry reaches: MIRRORED_HOST is no real host.
      registry = await startRegistry();
      const conf = join(dir, "net.d");
      await mkdir(conf, { recursive: true });
      await writeFile(
        join(conf, "10-test.conflist"),
        JSON.stringify(
          defaultConflist({
            name: "berth-scenarios",
            bridge: BRIDGE,
            subnet: b.subnet,
            dataDir: join(dir, "ipam"),
            ipMasq: false,
            bandwidth: false,
            portmap: false,
          }),
        ),
      );
      berthd = await BerthdProcess.start({
        toml: `${backendToml}\n[cni]\nconf_dirs = ["${conf}"]\n[registry.mirrors."${MIRRORED_HOST}"]\nendpoints = ["${registry.url}"]\n`,
      });
      rt = runtimeClient(berthd.socket);
      const entries = await busyboxEntries();
      const layer = await buildLayer(entries, "none");
      const archive = await dockerSaveArchive([
        { image: buildImage([layer], { docker: true }), tags: [IMAGE], tars: [await tarOf(entries)] },
      ]);
      await writeFile(join(dir, "busybox.tar"), archive);
      await berthd.client.importImage(join(dir, "busybox.tar"));
      mirrored = buildImage([layer], { docker: true, config: { Env: ["FROM_MIRROR=1"] } });
      await pushImage(registry.url, "scenarios/busybox", "v1", mirrored);
    });

    after(async () => {
      if (rt) await removeAllPods(rt);
      rt?.client.close();
      await berthd?.stop();
      await b.tearDown();
      await registry?.stop();
      await promisify(execFile)("ip", ["link", "del", BRIDGE]).catch(() => {});
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const podConfig = (name: string) => ({
      metadata: { name, namespace: "docker-test", uid: `uid-${name}`, attempt: 0 },
      hostname: name,
      logDirectory: logDir(),
      labels: { app: name },
      annotations: { "berth.test/pod": name },
    });

    const createContainer = async (name: string, args: string[], extra: object = {}) => {
      const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
        podSandboxId: podId,
        config: {
          metadata: { name, attempt: 0 },
          image: { image: IMAGE },
          command: ["/bin/sh", "-c"],
          args,
          logPath: `${name}.log`,
          labels: { c: name },
          ...extra,
        },
        sandboxConfig: podConfig("web"),
      });
      return containerId;
    };

    it("pulls through a mirror: the image is known by the name and digest asked for", async () => {
      const name = `${MIRRORED_HOST}/scenarios/busybox`;
      const { imageRef } = await berthd!.client.pullImage(`${name}:v1`);
      const { image } = await berthd!.client.imageStatus(`${name}:v1`);
      assert.equal(image?.id, imageRef);
      assert.deepEqual(image?.repoTags, [`${name}:v1`]);
      const byDigest = `${name}@${mirrored!.manifestDigest}`;
      assert.deepEqual(image?.repoDigests, [byDigest]);
      assert.equal((await berthd!.client.imageStatus(byDigest)).image?.id, imageRef);
      const listed = await berthd!.client.listImages(byDigest);
      assert.deepEqual(
        listed.images.map((i) => i.id),
        [imageRef],
      );
    });

    it("runs a pod: a pause container with a CNI address on the test bridge", async () => {
      ({ podSandboxId: podId } = await rt.call<{ podSandboxId: string }>("runPodSandbox", {
        config: podConfig("web"),
      }));
      const { status } = await rt.call<{
        status: { state: number; network: { ip: string }; labels: Record<string, string> };
      }>("podSandboxStatus", { podSandboxId: podId });
      assert.equal(status.state, PodSandboxState.SANDBOX_READY);
      assert.match(status.network.ip, ipPrefix);
      assert.deepEqual(status.labels, { app: "web" });
      const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {
        filter: { labelSelector: { app: "web" } },
      });
      assert.deepEqual(
        items.map((p) => p.id),
        [podId],
      );
    });

    it("a container's output lands in a CRI log at the kubelet's path; exit code and reason from the engine", async () => {
      const id = await createContainer("echo", ["echo out; echo err >&2; exit 3"]);
      await rt.call("startContainer", { containerId: id });
      const s = await waitExited(rt, id);
      assert.equal(s.exitCode, 3);
      assert.equal(s.reason, "Error");
      assert.equal(s.logPath, join(logDir(), "echo.log"));
      const lines = parseCriLogLines(await readFile(s.logPath, "utf8"));
      assert.deepEqual(lines.map((l) => `${l.stream} ${l.tag} ${l.content}`).sort(), [
        "stderr F err",
        "stdout F out",
      ]);
      const { containers } = await rt.call<{ containers: Array<{ id: string }> }>("listContainers", {
        filter: { labelSelector: { c: "echo" }, state: { state: ContainerState.CONTAINER_EXITED } },
      });
      assert.deepEqual(
        containers.map((c) => c.id),
        [id],
      );
    });

    it("exec runs in the container, which shares the pod's network namespace", async () => {
      const id = await createContainer("sleeper", ["sleep 3600"], {
        linux: { resources: { memoryLimitInBytes: 256n << 20n } },
      });
      const verbose = await rt.call<{ info: Record<string, string> }>("containerStatus", {
        containerId: id,
        verbose: true,
      });
      assert.match(verbose.info["info"] ?? "", /"memoryLimitInBytes":"268435456"/);
      await rt.call("startContainer", { containerId: id });
      const r = await execSync(rt, id, [
        "/bin/sh",
        "-c",
        "hostname; ip -4 addr show eth0; echo e >&2; exit 7",
      ]);
      assert.equal(r.exitCode, 7);
      assert.match(r.stdout, /^web\n/);
      assert.match(r.stdout, new RegExp(`inet ${b.subnet.split(".").slice(0, 2).join("\\.")}\\.`));
      assert.equal(r.stderr, "e\n");
      await rt.call("stopContainer", { containerId: id, timeout: 0 });
      assert.equal((await containerStatus(rt, id)).state, ContainerState.CONTAINER_EXITED);
    });

    it("ReopenContainerLog starts a new file after the kubelet renamed the old one", async () => {
      const id = await createContainer("ticker", [
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
      ]);
      await rt.call("startContainer", { containerId: id });
      const path = join(logDir(), "ticker.log");
      await sleep(800);
      await rename(path, `${path}.1`);
      await rt.call("reopenContainerLog", { containerId: id });
      await sleep(800);
      await rt.call("stopContainer", { containerId: id, timeout: 0 });
      const old = parseCriLogLines(await readFile(`${path}.1`, "utf8"));
      const fresh = parseCriLogLines(await readFile(path, "utf8"));
      assert.ok(old.length > 0 && fresh.length > 0, `${old.length} then ${fresh.length} lines`);
      const numbers = [...old, ...fresh].map((l) => Number(l.content.replace("tick ", "")));
      assert.deepEqual(
        numbers,
        numbers.map((_, i) => i),
      );
    });

    it("after a berthd crash, state comes back from the engine and the log catches up: no line lost or doubled", async () => {
      const id = await createContainer("counter", [
        "i=0; while true; do echo n $i; i=$((i+1)); sleep 0.05; done",
      ]);
      await rt.call("startContainer", { containerId: id });
      await sleep(500);
      assert.ok(berthd);
      await berthd.kill("SIGKILL");
      await sleep(1000); // output written while berthd is down stays in the engine
      await berthd.launch();
      rt.client.close();
      rt = runtimeClient(berthd.socket);
      const { status } = await rt.call<{ status: { state: number; network: { ip: string } } }>(
        "podSandboxStatus",
        {
          podSandboxId: podId,
        },
      );
      assert.equal(status.state, PodSandboxState.SANDBOX_READY);
      assert.match(status.network.ip, ipPrefix);
      assert.equal((await containerStatus(rt, id)).state, ContainerState.CONTAINER_RUNNING);
      await sleep(500);
      await rt.call("stopContainer", { containerId: id, timeout: 0 });
      const lines = parseCriLogLines(await readFile(join(logDir(), "counter.log"), "utf8"));
      const numbers = lines.map((l) => Number(l.content.replace("n ", "")));
      assert.ok(numbers.length > 20, `${numbers.length} lines`);
      assert.deepEqual(
        numbers,
        numbers.map((_, i) => i),
      );
    });

    it("refusals: unknown image NotFound, unknown pod NotFound, stop/remove of what is gone succeed", async () => {
      await assert.rejects(
        rt.call("createContainer", {
          podSandboxId: podId,
          config: { metadata: { name: "x", attempt: 0 }, image: { image: "berth.test/none:1" } },
          sandboxConfig: podConfig("web"),
        }),
        (err: GrpcError) => err.code === 5,
      );
      await assert.rejects(
        rt.call("podSandboxStatus", { podSandboxId: "0123abcd" }),
        (err: GrpcError) => err.code === 5,
      );
      await rt.call("stopContainer", { containerId: "0123abcd", timeout: 0 });
      await rt.call("removeContainer", { containerId: "0123abcd" });
      await rt.call("stopPodSandbox", { podSandboxId: "0123abcd" });
    });

    it("removing the pod removes its containers from the engine", async () => {
      await rt.call("stopPodSandbox", { podSandboxId: podId });
      await rt.call("removePodSandbox", { podSandboxId: podId });
      const { containers } = await rt.call<{ containers: unknown[] }>("listContainers", {});
      assert.deepEqual(containers, []);
      const { items } = await rt.call<{ items: unknown[] }>("listPodSandbox", {});
      assert.deepEqual(items, []);
    });
  });
}
