/**
 * Our streaming clients (SPDY and WebSocket, used by the berth CLI) against a Go peer: the
 * kubelet streaming library inside Debian's containerd. A host-network pod (no CNI needed)
 * with a busybox container from a local registry; everything lives in temp dirs and goes at
 * the end. Skipped when containerd is not installed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { NamespaceMode } from "../api/gen/runtime/v1/api.js";
import { startContainerd } from "../bench/containerd.js";
import { Cleanup, removeTree } from "../bench/util.js";
import { execOverSpdy, portForwardOverSpdy } from "../streaming/client.js";
import { execOverWebSocket, portForwardOverWebSocket } from "../streaming/websocket/client.js";
import { busyboxLayer } from "../tools/busybox-image.js";
import { buildImage } from "../tools/oci-builder.js";
import { pushImage } from "../tools/push-image.js";
import { startRegistry } from "../tools/registry-server.js";
import { needsRoot } from "./harness/skip.js";

const CONTAINERD = "/usr/bin/containerd";
const BERTH = new URL("../bin/berth.js", import.meta.url).pathname;

function sink(): { w: Writable; text: () => string } {
  let t = "";
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      t += chunk.toString();
      cb();
    },
  });
  return { w, text: () => t };
}

const skip =
  needsRoot() ||
  ((await import("node:fs")).existsSync(CONTAINERD) ? undefined : `${CONTAINERD} not installed`);

describe("streaming clients against containerd's (Go) streaming server", { skip, timeout: 300_000 }, () => {
  const cleanup = new Cleanup();
  let socket = "";
  let call: <T>(method: string, req: object) => Promise<T>;
  let podSandboxId = "";
  let containerId = "";

  before(async () => {
    const tmp = await mkdtemp(join(tmpdir(), "berth-ctrd-interop-"));
    cleanup.add(`temp dir ${tmp}`, () => removeTree(tmp));
    await mkdir(join(tmp, "net.d"));
    const image = buildImage([await busyboxLayer()], {
      config: { Entrypoint: ["/bin/sleep", "infinity"], Env: ["PATH=/bin"], WorkingDir: "/" },
    });
    const registry = await startRegistry();
    cleanup.add("registry", () => registry.stop());
    await pushImage(registry.url, "interop/busybox", "v1", image);
    const ref = `${registry.host}/interop/busybox:v1`;
    const c = await startContainerd(cleanup, registry.host, {
      cniConfDir: join(tmp, "net.d"),
      sandboxImage: ref,
    });
    socket = join(c.dir, "containerd.sock");
    call = (method, req) => c.client.runtimeCall(method, req);
    await c.client.pullImage(ref, undefined, 120_000);
    const pod = {
      metadata: { name: "interop", namespace: "berth-test", uid: "interop-1", attempt: 0 },
      logDirectory: join(tmp, "logs"),
      linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } },
    };
    await mkdir(pod.logDirectory);
    ({ podSandboxId } = await call<{ podSandboxId: string }>("runPodSandbox", { config: pod }));
    cleanup.add("pod", async () => {
      await call("stopPodSandbox", { podSandboxId }).catch(() => {});
      await call("removePodSandbox", { podSandboxId }).catch(() => {});
    });
    ({ containerId } = await call<{ containerId: string }>("createContainer", {
      podSandboxId,
      config: {
        metadata: { name: "sleeper", attempt: 0 },
        image: { image: ref },
        command: ["sleep", "3600"],
        logPath: "sleeper.log",
      },
      sandboxConfig: pod,
    }));
    await call("startContainer", { containerId });
  });

  after(() => cleanup.runAll());

  const execUrl = async (cmd: string[], o: { stdin?: boolean; tty?: boolean } = {}) =>
    (
      await call<{ url: string }>("exec", {
        containerId,
        cmd,
        stdin: o.stdin ?? false,
        tty: o.tty ?? false,
        stdout: true,
        stderr: !o.tty,
      })
    ).url;

  it("SPDY: stdin, stdout, stderr apart, and the exit code (status before the reset)", async () => {
    const out = sink();
    const err = sink();
    const code = await execOverSpdy(
      await execUrl(["sh", "-c", "cat; echo oops >&2; exit 3"], { stdin: true }),
      {
        stdin: Readable.from([Buffer.from("through containerd\n")]),
        stdout: out.w,
        stderr: err.w,
      },
    );
    assert.equal(code, 3);
    assert.equal(out.text(), "through containerd\n");
    assert.equal(err.text(), "oops\n");
  });

  it("SPDY: a terminal with the size we send", async () => {
    const out = sink();
    // Waits (boundedly) for the size: the resize travels apart from the command's start.
    const script =
      'i=0; while [ "$(stty size 2>&1)" != "30 90" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; stty size';
    const code = await execOverSpdy(await execUrl(["sh", "-c", script], { stdin: true, tty: true }), {
      stdin: new PassThrough(),
      stdout: out.w,
      tty: true,
      resize: Readable.from([{ width: 90, height: 30 }]),
    });
    assert.equal(code, 0);
    assert.match(out.text(), /^30 90\r\n$/);
  });

  for (const protocol of [
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
  ]) {
    it(`WebSocket ${protocol}: stdin, stdout, stderr and the exit code`, async () => {
      const out = sink();
      const err = sink();
      const code = await execOverWebSocket(
        await execUrl(["sh", "-c", "head -n 1; echo oops >&2; exit 4"], { stdin: true }),
        {
          protocols: [protocol],
          stdin: Readable.from([Buffer.from("one line\n")]),
          stdout: out.w,
          stderr: err.w,
        },
      );
      assert.equal(code, 4);
      assert.equal(out.text(), "one line\n");
      assert.equal(err.text(), "oops\n");
    });
  }

  it("port-forward over SPDY and WebSocket to a port of the (host-network) pod", async () => {
    const server = net.createServer((s) => s.end("hello from the pod's network\n")).listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as net.AddressInfo).port;
    try {
      const url = async () =>
        (await call<{ url: string }>("portForward", { podSandboxId, port: [port] })).url;
      const spdy = await portForwardOverSpdy(await url(), port);
      const got = sink();
      spdy.stream.pipe(got.w);
      await once(spdy.stream, "end");
      assert.equal(got.text(), "hello from the pod's network\n");

      const ws = await portForwardOverWebSocket(await url(), [port]);
      const wsGot = sink();
      ws.ports[0]!.data.pipe(wsGot.w);
      await once(ws.ports[0]!.data, "end");
      assert.equal(wsGot.text(), "hello from the pod's network\n");
      assert.equal(await ws.ports[0]!.error, "");
    } finally {
      server.close();
    }
  });

  it("berth exec -i against containerd's CRI socket", async () => {
    const p = spawn(
      process.execPath,
      [
        BERTH,
        "--runtime-endpoint",
        `unix://${socket}`,
        "exec",
        "-i",
        containerId,
        "--",
        "sh",
        "-c",
        "cat; exit 6",
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    const out = sink();
    p.stdout.pipe(out.w);
    p.stdin.end("berth CLI → containerd\n");
    const [code] = (await once(p, "exit")) as [number];
    assert.equal(code, 6);
    assert.equal(out.text(), "berth CLI → containerd\n");
  });
});
