/**
 * Pods and containers end to end against a real berthd: pinned namespaces, CNI bridge
 * networking, overlay rootfs, conmon + runc, CRI logs, ExecSync, stop/remove, restart.
 * Uses a test-only bridge and subnet, and removes everything it made.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile, readlink, rename } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import {
  ContainerConfig,
  ContainerState,
  NamespaceMode,
  PodSandboxConfig,
  PodSandboxState,
} from "../api/gen/runtime/v1/api.js";
import { execOverSpdy, portForwardOverSpdy } from "../streaming/client.js";
import { execOverWebSocket, portForwardOverWebSocket } from "../streaming/websocket/client.js";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { containerStatus, runtimeClient, waitExited } from "./harness/cri.js";
import { httpGet, startPodSuite, stopPodSuite } from "./harness/pod-env.js";
import { processesWithArgs } from "./harness/processes.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const run = promisify(execFile);
const BERTH = new URL("../bin/berth.js", import.meta.url).pathname;

/** Resolves once `done()` holds, checked after each "text" event of `w`. */
function waitFor(w: Writable, done: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (done()) return resolve();
    const check = () => {
      if (!done()) return;
      w.off("text", check);
      resolve();
    };
    w.on("text", check);
  });
}
const BRIDGE = "berthit0";
const SUBNET = "10.251.0.0/24";

describe("pods and containers", { timeout: SUITE_TIMEOUT_MS }, () => {
  let berthd: BerthdProcess;
  let dir: string;
  let rt: ReturnType<typeof runtimeClient>;
  const image = "docker.io/berth/busybox:it";

  const podConfig = (name: string) =>
    PodSandboxConfig.fromPartial({
      metadata: { name, namespace: "default", uid: `uid-${name}`, attempt: 0 },
      hostname: name,
      logDirectory: join(dir, "logs", name),
      labels: { app: name },
    });
  const containerConfig = (name: string, command: string[]) =>
    ContainerConfig.fromPartial({
      metadata: { name, attempt: 0 },
      image: { image },
      command,
      logPath: `${name}.log`,
      labels: { c: name },
    });

  before(async () => {
    ({ dir, berthd, rt } = await startPodSuite(
      "berth-pods-",
      { name: "berth-it", bridge: BRIDGE, subnet: SUBNET },
      image,
    ));
  });

  after(() => stopPodSuite({ dir, berthd, rt }, BRIDGE));

  it("reports NetworkReady once a CNI config exists, and the cgroup driver", async () => {
    const s = await berthd.client.status();
    const net = s.status?.conditions.find((c) => c.type === "NetworkReady");
    assert.equal(net?.status, true);
    const cfg = await rt.call<{ linux?: { cgroupDriver: number } }>("runtimeConfig", {});
    assert.equal(cfg.linux?.cgroupDriver, 1 /* CGROUPFS */);
  });

  it("runs a pod with an IP in the CNI subnet", async () => {
    const { podSandboxId } = await rt.call<{ podSandboxId: string }>("runPodSandbox", {
      config: podConfig("web"),
    });
    const st = await rt.call<{ status: { state: number; network: { ip: string } } }>("podSandboxStatus", {
      podSandboxId,
    });
    assert.equal(st.status.state, PodSandboxState.SANDBOX_READY);
    assert.match(st.status.network.ip, /^10\.251\.0\.\d+$/);
    const dup = rt.call("runPodSandbox", { config: podConfig("web") });
    await assert.rejects(dup, (err: { code: number; details: string }) => {
      assert.equal(err.code, status.ALREADY_EXISTS);
      assert.match(err.details, new RegExp(podSandboxId));
      return true;
    });
  });

  it("runs a busybox httpd reachable at the pod IP, logs in CRI format, ExecSync", async () => {
    const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {
      filter: { labelSelector: { app: "web" } },
    });
    const podId = items[0]!.id;
    const podStatus = await rt.call<{ status: { network: { ip: string } } }>("podSandboxStatus", {
      podSandboxId: podId,
    });
    const cfg = containerConfig("httpd", [
      "/bin/sh",
      "-c",
      "echo started; echo index > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
    ]);
    const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
      podSandboxId: podId,
      config: cfg,
      sandboxConfig: podConfig("web"),
    });
    await rt.call("startContainer", { containerId });
    const cs = await rt.call<{ status: { state: number; logPath: string } }>("containerStatus", {
      containerId,
    });
    assert.equal(cs.status.state, ContainerState.CONTAINER_RUNNING);
    let body = "";
    for (let i = 0; i < 50 && body === ""; i++) {
      body = await httpGet(`http://${podStatus.status.network.ip}:8080/index.html`).catch(() => "");
      if (body === "") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(body, "index\n");
    const log = await readFile(cs.status.logPath, "utf8");
    assert.match(log, /^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d) stdout F started$/m);
    const ex = await rt.call<{ stdout: Buffer; exitCode: number }>("execSync", {
      containerId,
      cmd: ["/bin/sh", "-c", "hostname; id -u; grep ^Seccomp: /proc/self/status; exit 3"],
      timeout: 10,
    });
    assert.equal(ex.exitCode, 3);
    // No profile named: unconfined, as the CRI says (seccomp_use_default_when_empty is off).
    assert.equal(Buffer.from(ex.stdout).toString(), "web\n0\nSeccomp:\t0\n");
    // The image stays while a container uses it.
    await assert.rejects(berthd.client.removeImage(image), (err: { code: number; details: string }) => {
      assert.equal(err.code, status.FAILED_PRECONDITION);
      assert.match(err.details, new RegExp(containerId));
      return true;
    });
  });

  it("streams Exec and PortForward through the streaming server (SPDY; port-forward also WebSocket)", async () => {
    const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {
      filter: { labelSelector: { app: "web" } },
    });
    const podId = items[0]!.id;
    const { containers } = await rt.call<{ containers: Array<{ id: string; metadata: { name: string } }> }>(
      "listContainers",
      { filter: { podSandboxId: podId } },
    );
    const httpdId = containers.find((c) => c.metadata.name === "httpd")!.id;
    const { url } = await rt.call<{ url: string }>("exec", {
      containerId: httpdId,
      cmd: ["/bin/sh", "-c", "cat; echo done >&2; exit 2"],
      stdin: true,
      stdout: true,
      stderr: true,
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//);
    const collected = { out: "", err: "" };
    const sink = (key: "out" | "err") =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          collected[key] += chunk.toString();
          cb();
        },
      });
    const code = await execOverSpdy(url, {
      stdin: Readable.from([Buffer.from("piped\n")]),
      stdout: sink("out"),
      stderr: sink("err"),
    });
    const { out, err } = collected;
    assert.equal(code, 2);
    assert.equal(out, "piped\n");
    assert.equal(err, "done\n");
    // The URL is single-use.
    await assert.rejects(execOverSpdy(url, { stdout: new Writable({ write: (_c, _e, cb) => cb() }) }));

    const pf = await rt.call<{ url: string }>("portForward", { podSandboxId: podId, port: [8080] });
    const fwd = await portForwardOverSpdy(pf.url, 8080);
    let reply = "";
    fwd.stream.on("data", (d: Buffer) => (reply += d.toString()));
    const ended = new Promise((r) => fwd.stream.once("end", r));
    fwd.stream.write("GET /index.html HTTP/1.0\r\n\r\n");
    await ended;
    assert.match(reply, /^HTTP\/1\.[01] 200/);
    assert.match(reply, /\r\n\r\nindex\n$/);

    // The same over WebSocket (the kubelet's channel protocol: 2-byte port prefix per channel).
    const wsPf = await rt.call<{ url: string }>("portForward", { podSandboxId: podId, port: [8080] });
    const ws = await portForwardOverWebSocket(wsPf.url, [8080]);
    let wsReply = "";
    const data = ws.ports[0]!.data;
    data.on("data", (d: Buffer) => (wsReply += d.toString()));
    const wsEnded = new Promise((r) => data.once("end", r));
    ws.ports[0]!.input.write("GET /index.html HTTP/1.0\r\n\r\n");
    await wsEnded;
    assert.match(wsReply, /^HTTP\/1\.[01] 200/);
    assert.match(wsReply, /\r\n\r\nindex\n$/);
    assert.equal(await ws.ports[0]!.error, "");
  });

  it("streams TTY exec and Attach (stdin, terminal resize, container exit) through the CRI", {
    timeout: 120_000,
  }, async () => {
    const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {
      filter: { labelSelector: { app: "web" } },
    });
    const podId = items[0]!.id;
    const start = async (
      name: string,
      command: string[],
      stdio: { stdin: boolean; tty: boolean; stdinOnce?: boolean },
    ) => {
      const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
        podSandboxId: podId,
        config: {
          ...containerConfig(name, command),
          ...stdio,
          // its own pid namespace: its processes (an exec's too) end with it
          linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } },
        },
        sandboxConfig: podConfig("web"),
      });
      await rt.call("startContainer", { containerId });
      return containerId;
    };
    const text = () => {
      let t = "";
      const w = new Writable({
        write(chunk: Buffer, _enc, cb) {
          t += chunk.toString();
          w.emit("text", t);
          cb();
        },
      });
      return { w, get: () => t, until: (re: RegExp) => waitFor(w, () => re.test(t)) };
    };
    const attachUrl = async (containerId: string, o: { stdin: boolean; tty?: boolean }) =>
      (
        await rt.call<{ url: string }>("attach", {
          containerId,
          stdin: o.stdin,
          stdout: true,
          stderr: !o.tty,
          tty: o.tty ?? false,
        })
      ).url;

    // Attach without a terminal: stdin in, stdout out; leaving does not stop the container.
    const echo = await start(
      "echoer",
      ["/bin/sh", "-c", 'while read l; do echo got:$l; echo err:$l >&2; [ "$l" = quit ] && exit 7; done'],
      { stdin: true, tty: false },
    );
    // berthd's descriptors, less its gRPC connections: this test's clients open those when
    // grpc-js decides to (they were the "leak" this check used to report now and then).
    const berthdFds = async () => {
      const criConnections = new Set(
        (await readFile("/proc/net/unix", "utf8"))
          .split("\n")
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f[7] === berthd.socket)
          .map((f) => `socket:[${f[6]}]`),
      );
      const fds = new Map<string, string>();
      for (const fd of await readdir(`/proc/${berthd.pid}/fd`)) {
        const target = await readlink(`/proc/${berthd.pid}/fd/${fd}`).catch(() => "?");
        if (!criConnections.has(target)) fds.set(fd, target);
      }
      return fds;
    };
    const fdsBefore = await berthdFds();
    const first = text();
    const stdin1 = new PassThrough();
    const leave = new AbortController();
    const session1 = execOverSpdy(await attachUrl(echo, { stdin: true }), {
      stdin: stdin1,
      stdout: first.w,
      stderr: first.w,
      signal: leave.signal,
    });
    session1.catch(() => {});
    stdin1.write("one\n");
    await first.until(/got:one\n/);
    leave.abort();
    await assert.rejects(session1);
    assert.equal((await containerStatus(rt, echo)).state, ContainerState.CONTAINER_RUNNING);
    // The client closing stdin is a detach (crictl's Ctrl-P Ctrl-Q) of a container that is not
    // stdin_once: the session ends (once the output is quiet), the container runs on.
    const detachIn = new PassThrough();
    const detachOut = text();
    const detached = execOverSpdy(await attachUrl(echo, { stdin: true }), {
      stdin: detachIn,
      stdout: detachOut.w,
      stderr: detachOut.w,
    });
    detachIn.write("three\n");
    await detachOut.until(/got:three\n/);
    detachIn.end();
    assert.equal(await detached, 0);
    assert.equal((await containerStatus(rt, echo)).state, ContainerState.CONTAINER_RUNNING);
    // An exec running when the container exits ends with it (killed with the pid namespace).
    const execOut = text();
    const { url: sleeperUrl } = await rt.call<{ url: string }>("exec", {
      containerId: echo,
      cmd: ["sh", "-c", "echo started; exec sleep 9999"],
      stdout: true,
    });
    const execSession = execOverSpdy(sleeperUrl, { stdout: execOut.w });
    await execOut.until(/started/);
    // A second attach; the container exiting ends the session with success.
    const second = text();
    const secondErr = text();
    const stdin2 = new PassThrough();
    const session2 = execOverSpdy(await attachUrl(echo, { stdin: true }), {
      stdin: stdin2,
      stdout: second.w,
      stderr: secondErr.w,
    });
    stdin2.write("two\nquit\n");
    assert.equal(await session2, 0);
    assert.equal(second.get(), "got:two\ngot:quit\n");
    assert.equal(secondErr.get(), "err:two\nerr:quit\n");
    assert.equal((await waitExited(rt, echo)).exitCode, 7);
    assert.equal(await execSession, 137, "the exec'd sleep was SIGKILLed with the container");
    assert.deepEqual(await processesWithArgs(["sleep", "9999"]), []);
    // Both sessions' attach sockets and relays are gone from berthd.
    let fdsAfter = await berthdFds();
    for (let i = 0; i < 50 && fdsAfter.size > fdsBefore.size; i++) {
      await new Promise((r) => setTimeout(r, 100));
      fdsAfter = await berthdFds();
    }
    const added = [...fdsAfter].filter(([fd, target]) => fdsBefore.get(fd) !== target);
    assert.ok(
      fdsAfter.size <= fdsBefore.size,
      `berthd fds: ${fdsBefore.size} before, ${fdsAfter.size} after; new: ${JSON.stringify(added)}`,
    );

    // stdin_once: the attached client's stdin EOF is the container's, so `cat` ends and the
    // session with it.
    const catOnce = await start("cat-once", ["cat"], { stdin: true, tty: false, stdinOnce: true });
    const catOut = text();
    const code = await execOverSpdy(await attachUrl(catOnce, { stdin: true }), {
      stdin: Readable.from([Buffer.from("to cat and back\n")]),
      stdout: catOut.w,
      stderr: catOut.w,
    });
    assert.equal(code, 0);
    assert.equal(catOut.get(), "to cat and back\n");
    assert.equal((await waitExited(rt, catOnce)).exitCode, 0);

    // Attach to a shell on a terminal: the resize goes through conmon's control FIFO.
    const shell = await start("shell", ["/bin/sh"], { stdin: true, tty: true });
    const term = text();
    const keys = new PassThrough();
    // (over WebSocket v5 this time: the resize travels on channel 4)
    const session3 = execOverWebSocket(await attachUrl(shell, { stdin: true, tty: true }), {
      protocols: ["v5.channel.k8s.io"],
      stdin: keys,
      stdout: term.w,
      resize: Readable.from([{ width: 100, height: 40 }]),
    });
    keys.write(
      'i=0; while [ "$(stty size)" != "40 100" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; stty size; exit 3\r',
    );
    assert.equal(await session3, 0);
    assert.match(term.get(), /\r\n40 100\r\n/);
    assert.equal((await waitExited(rt, shell)).exitCode, 3);

    // Exec with a terminal into a running container.
    const { containers } = await rt.call<{ containers: Array<{ id: string; metadata: { name: string } }> }>(
      "listContainers",
      { filter: { podSandboxId: podId } },
    );
    const httpdId = containers.find((c) => c.metadata.name === "httpd")!.id;
    const ttyOut = text();
    const { url } = await rt.call<{ url: string }>("exec", {
      containerId: httpdId,
      cmd: ["/bin/sh", "-c", "tty; exit 5"],
      tty: true,
      stdout: true,
    });
    assert.equal(await execOverSpdy(url, { stdout: ttyOut.w, tty: true }), 5);
    // On a terminal: a pts path and CR LF line ends. runc 1.1's `exec -t` sets the terminal up
    // while the process already runs, so under load the first line can get a second CR.
    assert.match(ttyOut.get(), /^\/dev\/pts\/\d+\r+\n$/);
    // Attaching stdin to a container made without it is refused.
    await assert.rejects(
      rt.call("attach", { containerId: httpdId, stdin: true, stdout: true }),
      (err: { code: number }) => {
        assert.equal(err.code, status.FAILED_PRECONDITION);
        return true;
      },
    );
    for (const id of [echo, catOnce, shell]) await rt.call("removeContainer", { containerId: id });
  });

  it("berth exec -i and berth port-forward drive the streaming server from the CLI", async () => {
    const cli = (args: string[]) =>
      spawn(process.execPath, [BERTH, "--runtime-endpoint", `unix://${berthd.socket}`, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
      });
    const exec = cli(["exec", "-i", "httpd", "--", "/bin/sh", "-c", "cat; echo to-stderr >&2; exit 4"]);
    let out = "";
    let err = "";
    exec.stdout.on("data", (b: Buffer) => (out += b.toString()));
    exec.stderr.on("data", (b: Buffer) => (err += b.toString()));
    exec.stdin.end("piped through the CLI\n");
    const [code] = (await once(exec, "exit")) as [number];
    assert.equal(code, 4, err);
    assert.equal(out, "piped through the CLI\n");
    assert.equal(err, "to-stderr\n");

    const pf = cli(["port-forward", "web", "0:8080"]);
    try {
      const [line] = (await once(pf.stdout, "data")) as [Buffer];
      const port = /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(line.toString())?.[1];
      assert.ok(port, line.toString());
      // Two connections: each gets its own single-use URL.
      for (let i = 0; i < 2; i++)
        assert.equal(await httpGet(`http://127.0.0.1:${port}/index.html`), "index\n");
      pf.kill("SIGTERM");
      const [pfCode] = (await once(pf, "exit")) as [number];
      assert.equal(pfCode, 0);
    } finally {
      pf.kill("SIGKILL");
    }
  });

  it("reports exit codes and reasons", async () => {
    const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {});
    const podId = items[0]!.id;
    const mk = async (name: string, cmd: string[]) => {
      const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
        podSandboxId: podId,
        config: containerConfig(name, cmd),
      });
      await rt.call("startContainer", { containerId });
      return containerId;
    };
    const ok = await mk("ok", ["/bin/true"]);
    const bad = await mk("bad", ["/bin/sh", "-c", "exit 7"]);
    const waitExit = async (id: string) => {
      for (let i = 0; i < 100; i++) {
        const s = await rt.call<{ status: { state: number; exitCode: number; reason: string } }>(
          "containerStatus",
          {
            containerId: id,
          },
        );
        if (s.status.state === ContainerState.CONTAINER_EXITED) return s.status;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`container ${id} did not exit`);
    };
    assert.deepEqual(
      { code: (await waitExit(ok)).exitCode, reason: (await waitExit(ok)).reason },
      { code: 0, reason: "Completed" },
    );
    const b = await waitExit(bad);
    assert.equal(b.exitCode, 7);
    assert.equal(b.reason, "Error");
    await assert.rejects(
      rt.call("createContainer", {
        podSandboxId: podId,
        config: containerConfig("nocmd", ["/no/such/binary"]),
      }),
      (err: { code: number; details: string }) => {
        assert.match(err.details, /no\/such\/binary/);
        return true;
      },
    );
  });

  it("reopens a container's log after rotation (ReopenContainerLog)", async () => {
    const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {});
    const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
      podSandboxId: items[0]!.id,
      config: containerConfig("ticker", ["/bin/sh", "-c", "while true; do echo tick; sleep 0.1; done"]),
    });
    await rt.call("startContainer", { containerId });
    const { status: st } = await rt.call<{ status: { logPath: string } }>("containerStatus", { containerId });
    await new Promise((r) => setTimeout(r, 300));
    await rename(st.logPath, `${st.logPath}.1`);
    await rt.call("reopenContainerLog", { containerId });
    let fresh = "";
    for (let i = 0; i < 50 && !fresh.includes("tick"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      fresh = await readFile(st.logPath, "utf8");
    }
    assert.match(fresh, /stdout F tick/);
    assert.match(await readFile(`${st.logPath}.1`, "utf8"), /stdout F tick/);
    await rt.call("stopContainer", { containerId, timeout: 0 });
    await assert.rejects(rt.call("reopenContainerLog", { containerId }), {
      code: status.FAILED_PRECONDITION,
    });
  });

  it("keeps containers running across a berthd SIGKILL and restart", async () => {
    const before = await rt.call<{ containers: Array<{ id: string; state: number }> }>("listContainers", {});
    const running = before.containers.filter((c) => c.state === ContainerState.CONTAINER_RUNNING);
    assert.ok(running.length >= 1);
    await berthd.kill("SIGKILL");
    await berthd.launch();
    rt.client.close();
    rt = runtimeClient(berthd.socket);
    const after = await rt.call<{ containers: Array<{ id: string; state: number }> }>("listContainers", {});
    assert.deepEqual(
      after.containers.map((c) => [c.id, c.state]).sort(),
      before.containers.map((c) => [c.id, c.state]).sort(),
    );
  });

  it("stops and removes pods idempotently, leaving no namespaces or bridge ports", async () => {
    const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {});
    for (const p of items) {
      await rt.call("stopPodSandbox", { podSandboxId: p.id });
      await rt.call("stopPodSandbox", { podSandboxId: p.id });
      await rt.call("removePodSandbox", { podSandboxId: p.id });
      await rt.call("removePodSandbox", { podSandboxId: p.id });
    }
    assert.deepEqual((await rt.call<{ items: unknown[] }>("listPodSandbox", {})).items, []);
    assert.deepEqual((await rt.call<{ containers: unknown[] }>("listContainers", {})).containers, []);
    const mounts = await readFile("/proc/self/mountinfo", "utf8");
    assert.ok(!mounts.includes(berthd.root), "no mounts left under berthd's root");
    const { stdout } = await run("ip", ["-o", "link", "show", "master", BRIDGE]).catch(() => ({
      stdout: "",
    }));
    assert.equal(stdout.trim(), "");
  });
});
