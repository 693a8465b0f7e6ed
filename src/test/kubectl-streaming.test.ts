/**
 * berthd's streaming server against a Go client: real kubectl (exec, exec -it with resizes,
 * attach, port-forward) through a fake API server that makes the kubelet's CRI calls and
 * proxies the upgraded connection to berthd, as kubelet does. kubectl's streaming code
 * (client-go remotecommand/portforward with spdystream and gorilla websocket) is what crictl
 * uses too. SPDY, and WebSocket where the kubectl is 1.30 or newer. Skipped without kubectl.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { close, existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ContainerConfig, PodSandboxConfig } from "../api/gen/runtime/v1/api.js";
import { native } from "../common/native.js";
import { type RunResult, run } from "../common/process.js";
import type { BerthdProcess } from "../tools/berthd-process.js";
import { removeAllPods, runtimeClient, waitExited } from "./harness/cri.js";
import { FakeApiserver, type FakeContainer, type SeenUpgrade } from "./harness/fake-apiserver.js";
import { httpGet, importBusybox, startPodEnv } from "./harness/pod-env.js";
import { needsRoot } from "./harness/skip.js";
import { SUITE_TIMEOUT_MS } from "./harness/timeouts.js";

const BRIDGE = "berthkc0";
const SUBNET = "10.249.0.0/24";
const POD = "web";
const image = "docker.io/berth/busybox:kubectl";

interface Kubectl {
  path: string;
  minor: number;
}

/**
 * The newest kubectl on the machine: in PATH, or one of the Google Cloud CLI's versioned ones;
 * BERTH_TEST_KUBECTL names one instead.
 */
async function findKubectl(): Promise<Kubectl | undefined> {
  const dir = "/usr/lib/google-cloud-sdk/bin";
  const chosen = process.env.BERTH_TEST_KUBECTL;
  const candidates = chosen ? [chosen] : (process.env.PATH ?? "").split(":").map((d) => join(d, "kubectl"));
  if (!chosen && existsSync(dir)) {
    for (const f of await readdir(dir)) if (/^kubectl\.1\.\d+$/.test(f)) candidates.push(join(dir, f));
  }
  let best: Kubectl | undefined;
  for (const path of candidates.filter((p) => existsSync(p))) {
    const r = await run(path, ["version", "--client", "-o", "json"]).catch(() => undefined);
    if (r?.exitCode !== 0) continue; // not a working kubectl
    try {
      const minor = Number.parseInt(JSON.parse(r.stdout).clientVersion.minor, 10);
      if (Number.isInteger(minor) && (!best || minor > best.minor)) best = { path, minor };
    } catch {
      // not kubectl's JSON
    }
  }
  return best;
}

const kubectl = needsRoot() === false ? await findKubectl() : undefined;
const skip = needsRoot() || (kubectl ? undefined : "no kubectl on this machine");
/** kubectl 1.30+ speaks WebSocket (v5.channel.k8s.io) for exec/attach unless told not to. */
const transports = kubectl && kubectl.minor >= 30 ? (["spdy", "websocket"] as const) : (["spdy"] as const);
type Transport = (typeof transports)[number];

describe(`kubectl ${kubectl ? `1.${kubectl.minor}` : ""} against berthd's streaming server`, {
  skip,
  timeout: SUITE_TIMEOUT_MS,
}, () => {
  let dir = "";
  let berthd: BerthdProcess;
  let rt: ReturnType<typeof runtimeClient>;
  let api: FakeApiserver;
  let kubeconfig = "";
  let sandboxId = "";
  const containers: FakeContainer[] = [];
  const children = new Set<ChildProcess>();

  const env = (t: Transport) => ({
    ...process.env,
    KUBECONFIG: kubeconfig,
    KUBECTL_REMOTE_COMMAND_WEBSOCKETS: t === "websocket" ? "true" : "false",
    KUBECTL_PORT_FORWARD_WEBSOCKETS: "false",
  });

  /** Runs kubectl with `input` on its stdin (the runner's timeout only guards against a hang). */
  const kc = (t: Transport, args: string[], input?: string): Promise<RunResult> =>
    run(kubectl!.path, args, { env: env(t), input, timeoutMs: 120_000 });

  /**
   * kubectl `args` on a 33×101 pty reaching a shell: checks that the shell sees that size, then
   * a resize to 40×100 (SIGWINCH → kubectl → resize stream/channel → berthd), and leaves it with
   * `exit code`; resolves with kubectl's exit code.
   */
  const shellOnTerminal = async (t: Transport, args: string[], code: number): Promise<number | null> => {
    const term = await kubectlOnPty(kubectl!.path, args, env(t));
    children.add(term.child);
    try {
      // (typed again until the shell answers: what arrives before it runs may be lost)
      await term.until(/33 101/, () => term.write("stty size\r"));
      term.resize(40, 100);
      await term.until(/40 100/, () => term.write("stty size\r"));
      term.write(`exit ${code}\r`);
      return await term.exited;
    } finally {
      term.close();
      children.delete(term.child);
    }
  };

  const lastUpgrade = () => api.upgrades[api.upgrades.length - 1];
  const expectedUpgrade = (t: Transport) => (t === "websocket" ? "websocket" : "SPDY/3.1");

  const startContainer = async (
    name: string,
    command: string[],
    stdio: { stdin?: boolean; tty?: boolean } = {},
  ) => {
    const { containerId } = await rt.call<{ containerId: string }>("createContainer", {
      podSandboxId: sandboxId,
      config: ContainerConfig.fromPartial({
        metadata: { name },
        image: { image },
        command,
        logPath: `${name}.log`,
        ...stdio,
      }),
      sandboxConfig: podConfig(),
    });
    await rt.call("startContainer", { containerId });
    containers.push({ name, id: containerId, ...stdio });
    return containerId;
  };
  const podConfig = () =>
    PodSandboxConfig.fromPartial({
      metadata: { name: POD, namespace: "default", uid: "uid-kubectl-web" },
      hostname: POD,
      logDirectory: join(dir, "logs"),
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-kubectl-"));
    berthd = await startPodEnv({ dir, network: { name: "berth-kubectl", bridge: BRIDGE, subnet: SUBNET } });
    rt = runtimeClient(berthd.socket);
    await importBusybox(berthd, dir, image);
    sandboxId = (await rt.call<{ podSandboxId: string }>("runPodSandbox", { config: podConfig() }))
      .podSandboxId;
    await startContainer("httpd", [
      "/bin/sh",
      "-c",
      "echo index > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    api = await FakeApiserver.start(rt, [{ name: POD, sandboxId, containers }]);
    kubeconfig = await api.writeKubeconfig(join(dir, "kubeconfig"));
  });

  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    await api?.close();
    if (rt) await removeAllPods(rt);
    rt?.client.close();
    await berthd?.stop();
    await run("ip", ["link", "del", BRIDGE]).catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const t of transports) {
    it(`exec over ${t}: stdout, stderr and the exit code`, async () => {
      const r = await kc(t, ["exec", POD, "-c", "httpd", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
      assert.equal(r.stdout, "out\n");
      assert.match(r.stderr, /^err\n/);
      assert.equal(r.exitCode, 3, r.stderr);
      assert.equal(lastUpgrade()?.upgrade, expectedUpgrade(t));
    });

    it(`exec over ${t}: a command that cannot start is an error naming it`, async () => {
      const r = await kc(t, ["exec", POD, "-c", "httpd", "--", "/no/such/binary"]);
      assert.notEqual(r.exitCode, 0);
      assert.match(r.stderr, /\/no\/such\/binary/);
    });

    it(`exec -i over ${t}: stdin through cat, EOF ends it`, async () => {
      const input = "line one\nline two\n".repeat(2000);
      const r = await kc(t, ["exec", "-i", POD, "-c", "httpd", "--", "cat"], input);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, input);
    });

    it(`exec -it over ${t}: kubectl's terminal size and its resizes reach the process`, async () => {
      const code = await shellOnTerminal(t, ["exec", "-it", POD, "-c", "httpd", "--", "sh"], 5);
      assert.equal(code, 5);
      assert.equal(lastUpgrade()?.upgrade, expectedUpgrade(t));
    });

    it(`attach -i over ${t}: stdin in, output back; the container's exit ends it`, async () => {
      const id = await startContainer(
        `echoer-${t}`,
        ["/bin/sh", "-c", 'while read l; do echo got:$l; [ "$l" = quit ] && exit 0; done'],
        { stdin: true },
      );
      const r = await kc(t, ["attach", "-i", POD, "-c", `echoer-${t}`], "one\ntwo\nquit\n");
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /got:one\ngot:two\ngot:quit\n/);
      assert.equal((await waitExited(rt, id)).exitCode, 0);
      assert.equal(lastUpgrade()?.subresource, "attach");
      assert.equal(lastUpgrade()?.upgrade, expectedUpgrade(t));
    });

    it(`attach -it over ${t}: a shell on the container's terminal, resized through conmon`, async () => {
      const name = `shell-${t}`;
      const id = await startContainer(name, ["/bin/sh"], { stdin: true, tty: true });
      await shellOnTerminal(t, ["attach", "-it", POD, "-c", name], 4);
      assert.equal((await waitExited(rt, id)).exitCode, 4);
      assert.equal(lastUpgrade()?.upgrade, expectedUpgrade(t));
    });
  }

  /** kubectl port-forward POD :80 with `env`; two connections through it; the upgrades it made. */
  const portForward = async (env: NodeJS.ProcessEnv): Promise<SeenUpgrade[]> => {
    const seenBefore = api.upgrades.length;
    const child = spawn(kubectl!.path, ["port-forward", POD, ":80"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    try {
      let out = "";
      let errText = "";
      child.stderr.on("data", (b: Buffer) => (errText += b.toString()));
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.on("data", (b: Buffer) => {
          out += b.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 80/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once("exit", () => reject(new Error(`kubectl port-forward exited: ${errText}`)));
      });
      const [a, b] = await Promise.all([
        httpGet(`http://127.0.0.1:${port}/index.html`),
        httpGet(`http://127.0.0.1:${port}/index.html`),
      ]);
      assert.equal(a, "index\n");
      assert.equal(b, "index\n");
      return api.upgrades.slice(seenBefore);
    } finally {
      child.kill("SIGTERM");
      children.delete(child);
    }
  };

  it("port-forward over SPDY: two connections to the pod's httpd", async () => {
    const seen = await portForward(env("spdy"));
    assert.deepEqual(
      seen.map((u) => [u.subresource, u.upgrade]),
      [["portforward", "SPDY/3.1"]],
    );
  });

  it("port-forward as kubectl 1.31+ does by default: its WebSocket tunnel is refused, SPDY follows", {
    skip: kubectl && kubectl.minor >= 31 ? undefined : "kubectl older than 1.31",
  }, async () => {
    // The tunnel (SPDY inside WebSocket) is the API server's business; a kubelet refuses it.
    const seen = await portForward({ ...env("spdy"), KUBECTL_PORT_FORWARD_WEBSOCKETS: "true" });
    assert.deepEqual(
      seen.map((u) => u.upgrade),
      ["websocket", "SPDY/3.1"],
    );
  });
});

/** kubectl on a pseudo-terminal of 33×101 (its controlling terminal, so it gets SIGWINCH). */
async function kubectlOnPty(path: string, args: string[], env: NodeJS.ProcessEnv) {
  const n = native();
  const pty = n.openPty(33, 101);
  // setsid -c makes the pty kubectl's controlling terminal (resizes then signal it); -w waits
  // for kubectl and exits with its code.
  const child = spawn("setsid", ["-w", "-c", path, ...args], {
    env,
    stdio: [pty.slave, pty.slave, pty.slave],
  });
  close(pty.slave, () => {});
  const master = new net.Socket({ fd: n.startRelay(pty.master, false), readable: true, writable: true });
  let screen = "";
  master.on("data", (b: Buffer) => (screen += b.toString()));
  master.on("error", () => {});
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    exited,
    write: (s: string) => master.write(s),
    resize: (rows: number, cols: number) => n.resizePty(pty.master, rows, cols),
    /** Waits until the screen matches `re`, doing `retry` every 500 ms meanwhile. */
    until: async (re: RegExp, retry?: () => void) => {
      for (let i = 0; !re.test(screen); i++) {
        if (child.exitCode !== null || i > 600)
          throw new Error(
            `no ${re} from kubectl (exit ${child.exitCode}); screen: ${JSON.stringify(screen)}`,
          );
        if (retry && i % 10 === 0) retry();
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => {
      master.destroy(); // the relay thread then closes the pty master
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}
