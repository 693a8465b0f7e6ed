/**
 * End to end, as root: a real runc container (busybox, `runc run -d`) for exec, and a pinned
 * network namespace with a TCP server inside for port-forward, both through StreamingServer and
 * our SPDY and WebSocket clients.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { MNT_DETACH, native } from "../common/native.js";
import { createPodNamespaces, type PodNamespacePaths, removePodNamespaces } from "../network/namespaces.js";
import { runcExec } from "../runtime/runc-exec.js";
import { cleanup, makeBundle, RUNC, skipReason, uniqueId } from "../runtime/testutil.js";
import { processesWithArgs } from "../test/harness/processes.js";
import { needsRoot } from "../test/harness/skip.js";
import { connectPortForward, ExecError, execOverSpdy } from "./client.js";
import { forwardInNetns, PORTFORWARD_HELPER } from "./portforward.js";
import type { ExecRequest } from "./remotecommand.js";
import { StreamingServer } from "./server.js";
import { collect, readAll } from "./testutil.js";
import { execOverWebSocket, portForwardOverWebSocket } from "./websocket/client.js";

async function poll(f: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await f()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return f();
}

/** The port-forward helper for port 9000, as it shows in /proc. */
const HELPER_9000 = [process.execPath, PORTFORWARD_HELPER, "9000"];

/** Whether no port-forward helper for port 9000 is left (polled a while: they exit asynchronously). */
const helpersGone = () => poll(async () => (await processesWithArgs(HELPER_9000)).length === 0, 5000);

/** Per test: a hang is cancelled well before the file-level timeout, so after() still cleans up. */
const T = { timeout: 30_000 };

const skip = skipReason() ?? needsRoot();

describe("streaming end to end (runc + netns)", { skip, timeout: 300_000 }, () => {
  let dir = "";
  let runtimeRoot = "";
  let nsDir = "";
  const id = uniqueId("berth-stream");
  const podId = uniqueId("berth-pf");
  let ns: PodNamespacePaths = {};
  let tcpServer: ChildProcess | undefined;
  let server: StreamingServer;

  const execReq = (cmd: string[], o: Partial<ExecRequest> = {}): ExecRequest => ({
    containerId: id,
    cmd,
    tty: false,
    stdin: false,
    stdout: true,
    stderr: true,
    ...o,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-stream-"));
    runtimeRoot = join(dir, "runc-root");
    nsDir = join(dir, "ns");
    const bundle = await makeBundle(dir, id, ["sleep", "100000"]);
    const runc = spawn(RUNC, ["--root", runtimeRoot, "run", "-d", "--bundle", bundle, id], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    runc.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    const [code] = (await once(runc, "exit")) as [number];
    assert.equal(code, 0, `runc run: ${err}`);

    ns = await createPodNamespaces({ dir: nsDir, id: podId, net: true, ipc: false, uts: false });
    // An uppercasing TCP server on 127.0.0.1:9000 inside the pod's netns; it says "|bye" and
    // closes at the client's FIN, or once it got "quit" (WebSocket channels cannot half-close).
    const script = `
      const net = require("node:net");
      net.createServer({ allowHalfOpen: true }, (s) => {
        s.on("data", (b) => {
          s.write(b.toString().toUpperCase());
          if (b.toString().includes("quit")) s.end("|bye");
        });
        s.on("end", () => {
          if (!s.writableEnded) s.end("|bye");
        });
      }).listen(9000, "127.0.0.1", () => console.log("ready"));`;
    tcpServer = spawn("nsenter", [`--net=${ns.net}`, process.execPath, "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const [first] = (await once(tcpServer.stdout!, "data")) as [Buffer];
    assert.equal(first.toString().trim(), "ready");

    server = new StreamingServer({
      handlers: {
        exec: (req, io) =>
          runcExec(
            {
              runtimePath: RUNC,
              runtimeRoot,
              containerId: req.containerId,
              processSpec: {
                args: req.cmd,
                env: ["PATH=/bin", "HOME=/"],
                cwd: "/",
                user: { uid: 0, gid: 0 },
              },
              tty: req.tty,
            },
            io,
          ),
        portForward: (_req, c) =>
          forwardInNetns({ netnsPath: ns.net!, port: c.port, stream: c.stream, signal: c.signal }),
      },
    });
    await server.start();
  });

  after(async () => {
    await server?.close().catch(() => {});
    if (tcpServer?.pid) tcpServer.kill("SIGKILL");
    await cleanup({ runtimeRoot, ids: [id] }).catch(() => {});
    await removePodNamespaces(ns).catch(() => {});
    if (nsDir) {
      for (let i = 0; i < 4; i++)
        await native()
          .umount2(nsDir, MNT_DETACH)
          .catch(() => {});
    }
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
  });

  it("echo hi → stdout, exit 0", T, async () => {
    const out = collect();
    const err = collect();
    const code = await execOverSpdy(server.execUrl(execReq(["echo", "hi"])), {
      stdout: out.w,
      stderr: err.w,
    });
    assert.equal(code, 0);
    assert.equal(out.text(), "hi\n");
    assert.equal(err.text(), "");
  });

  it("sh -c 'exit 3' → exit code 3 on the error stream; stderr is separate", T, async () => {
    const out = collect();
    const err = collect();
    const code = await execOverSpdy(server.execUrl(execReq(["sh", "-c", "echo oops >&2; exit 3"])), {
      stdout: out.w,
      stderr: err.w,
    });
    assert.equal(code, 3);
    assert.equal(out.text(), "");
    assert.equal(err.text(), "oops\n");
  });

  it("stdin through cat", T, async () => {
    const out = collect();
    const data = `${"line of text\n".repeat(20_000)}end\n`;
    const code = await execOverSpdy(server.execUrl(execReq(["cat"], { stdin: true, stderr: false })), {
      stdin: Readable.from([Buffer.from(data)]),
      stdout: out.w,
    });
    assert.equal(code, 0);
    assert.equal(out.text(), data);
  });

  it("exec in a missing container → error", T, async () => {
    const url = server.execUrl({ ...execReq(["true"]), containerId: "no-such-container" });
    await assert.rejects(
      execOverSpdy(url, { stdout: collect().w, stderr: collect().w }),
      (e: unknown) =>
        e instanceof ExecError && /exec in container no-such-container: .*does not exist/.test(e.message),
    );
  });

  /** Starts `sleep <n>` through exec, drops the client, and checks the process and our fds are gone. */
  const disconnectKills = async (seconds: string, tty: boolean) => {
    const argv = ["sleep", seconds];
    const fdsBefore = (await readdir("/proc/self/fd")).length;
    const out = new PassThrough();
    const ac = new AbortController();
    const started = once(out, "data");
    const url = server.execUrl(
      execReq(["sh", "-c", `echo started; exec sleep ${seconds}`], { tty, stderr: !tty }),
    );
    const p = execOverSpdy(url, {
      stdout: out,
      stderr: tty ? undefined : collect().w,
      tty,
      signal: ac.signal,
    });
    p.catch(() => {});
    await started;
    assert.ok(await poll(async () => (await processesWithArgs(argv)).length === 1, 5000), "sleep is running");
    ac.abort();
    await assert.rejects(p);
    assert.ok(await poll(async () => (await processesWithArgs(argv)).length === 0, 5000), "sleep was killed");
    assert.ok(
      await poll(async () => (await readdir("/proc/self/fd")).length <= fdsBefore, 5000),
      "the session's pipes, pty and relay fds are closed",
    );
  };

  it("client disconnect mid-run kills the exec'd process", T, () => disconnectKills("7777", false));

  for (const transport of ["SPDY", "WebSocket"] as const) {
    it(`tty over ${transport}: the command runs on a terminal; resizes reach it (stty size)`, T, async () => {
      const out = collect();
      // Waits (boundedly) for the size to arrive: the resize goes through runc's SIGWINCH handler.
      // Only then `tty`: runc 1.1's `exec -t` starts the process while it is still setting the
      // terminal up, so a first write can miss ONLCR and a first stty can fail (seen under load).
      const script =
        'i=0; while [ "$(stty size 2>/dev/null)" != "33 101" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; tty; stty size; exit 4';
      const url = server.execUrl(execReq(["sh", "-c", script], { tty: true, stderr: false }));
      const resize = Readable.from([{ width: 101, height: 33 }]);
      const code =
        transport === "SPDY"
          ? await execOverSpdy(url, { stdout: out.w, tty: true, resize })
          : await execOverWebSocket(url, { protocols: ["v5.channel.k8s.io"], stdout: out.w, resize });
      assert.equal(code, 4);
      assert.match(out.text(), /^\/dev\/pts\/\d+\r\n/, "stdout is a terminal (CRLF line ends)");
      assert.match(out.text(), /\r\n33 101\r\n$/);
    });
  }

  it("tty: stdin reaches the process through the terminal", T, async () => {
    const out = collect();
    const stdin = new PassThrough();
    const code = await execOverSpdy(
      server.execUrl(
        execReq(["sh", "-c", "read line; echo got:$line"], { tty: true, stdin: true, stderr: false }),
      ),
      { stdin, stdout: out.w, tty: true, onReady: () => stdin.write("hello\n") },
    );
    assert.equal(code, 0);
    assert.match(out.text(), /got:hello\r\n$/);
  });

  it("concurrent sessions, with and without a terminal, keep their streams apart", T, async () => {
    const sessions = [0, 1, 2, 3, 4, 5].map(async (n) => {
      const tty = n % 2 === 1;
      const out = collect();
      const stdin = new PassThrough();
      const url = server.execUrl(
        execReq(["sh", "-c", `read x; echo $x-${n}; exit ${n}`], { tty, stdin: true, stderr: false }),
      );
      const code = await execOverSpdy(url, {
        stdin,
        stdout: out.w,
        tty,
        onReady: () => stdin.write(`in${n}\n`),
      });
      return { code, out: out.text().replace(/\r/g, "") };
    });
    const results = await Promise.all(sessions);
    results.forEach((r, n) => {
      assert.equal(r.code, n);
      // a terminal echoes the input line back before the output
      assert.equal(r.out, n % 2 === 1 ? `in${n}\nin${n}-${n}\n` : `in${n}-${n}\n`);
    });
  });

  it("tty: client disconnect kills the process and leaves no fd behind", T, () =>
    disconnectKills("8888", true),
  );

  it("port-forward into the pod netns: two concurrent connections, both directions, errors", T, async () => {
    const session = await connectPortForward(server.portForwardUrl({ podSandboxId: podId, port: [] }));
    try {
      const a = session.open(9000);
      const b = session.open(9000);
      a.stream.write("first ");
      b.stream.write("second ");
      // interleave: both are open at once
      const ra = readAll(a.stream);
      const rb = readAll(b.stream);
      await new Promise((r) => setTimeout(r, 100));
      a.stream.end("a");
      b.stream.end("b");
      assert.deepEqual(await Promise.all([ra, rb]), ["FIRST A|bye", "SECOND B|bye"]);
      assert.equal(await a.error, "");
      assert.equal(await b.error, "");

      const refused = session.open(9001);
      assert.match(await refused.error, /error forwarding port 9001 to pod .*ECONNREFUSED/);
    } finally {
      session.close();
    }
    // no helper left behind
    assert.ok(await helpersGone(), "helpers exited");
  });

  it("port-forward: 4 MiB each way through one connection", T, async () => {
    const session = await connectPortForward(server.portForwardUrl({ podSandboxId: podId, port: [] }));
    try {
      const a = session.open(9000);
      const data = Buffer.alloc(4 << 20, "abcdefgh");
      const got = readAll(a.stream);
      for (let off = 0; off < data.length; off += 100_000) {
        if (!a.stream.write(data.subarray(off, off + 100_000))) await once(a.stream, "drain");
      }
      a.stream.end();
      const text = await got;
      assert.equal(text.length, data.length + 4);
      assert.equal(text, `${data.toString().toUpperCase()}|bye`);
      assert.equal(await a.error, "");
    } finally {
      session.close();
    }
  });

  it("port-forward: closing the session kills a helper with an open connection", T, async () => {
    const session = await connectPortForward(server.portForwardUrl({ podSandboxId: podId, port: [9000] }));
    const a = session.open(9000);
    a.stream.write("x");
    assert.equal((await once(a.stream, "data"))[0].toString(), "X");
    assert.equal((await processesWithArgs(HELPER_9000)).length, 1);
    session.close();
    assert.ok(await helpersGone(), "helper killed");
  });

  it("WebSocket v5: stdin through cat, the close signal ends it, non-zero exit code", T, async () => {
    const out = collect();
    const err = collect();
    const data = `${"websocket line\n".repeat(20_000)}end\n`;
    const code = await execOverWebSocket(
      server.execUrl(execReq(["sh", "-c", "cat; echo done >&2; exit 5"], { stdin: true })),
      {
        protocols: ["v5.channel.k8s.io"],
        stdin: Readable.from([Buffer.from(data)]),
        stdout: out.w,
        stderr: err.w,
      },
    );
    assert.equal(code, 5);
    assert.equal(out.text(), data);
    assert.equal(err.text(), "done\n");
  });

  it("WebSocket v4: stdin through head | cat, exit code 0 and non-zero", T, async () => {
    const out = collect();
    const code = await execOverWebSocket(
      server.execUrl(execReq(["sh", "-c", "head -n 2 | cat; exit 4"], { stdin: true, stderr: false })),
      { protocols: ["v4.channel.k8s.io"], stdin: Readable.from([Buffer.from("one\ntwo\n")]), stdout: out.w },
    );
    assert.equal(code, 4);
    assert.equal(out.text(), "one\ntwo\n");
    const hi = collect();
    const ok = await execOverWebSocket(server.execUrl(execReq(["echo", "hi"])), {
      protocols: ["v4.channel.k8s.io"],
      stdout: hi.w,
    });
    assert.equal(ok, 0);
    assert.equal(hi.text(), "hi\n");
  });

  it(
    "WebSocket port-forward into the pod netns: data both ways, the pod closing, a refused port",
    T,
    async () => {
      const url = `${server.portForwardUrl({ podSandboxId: podId, port: [] })}?port=9000&port=9001`;
      const pf = await portForwardOverWebSocket(url, [9000, 9001]);
      try {
        const [open, refused] = pf.ports;
        const got = readAll(open!.data);
        open!.input.write("hello quit");
        // the server closes after "quit"; once both ports are done the socket closes normally
        assert.equal(await pf.closed, 1000);
        assert.equal(await got, "HELLO QUIT|bye");
        assert.equal(await open!.error, "");
        assert.match(await refused!.error, /error forwarding port 9001 to pod .*ECONNREFUSED/);
      } finally {
        pf.close();
      }
      assert.ok(await helpersGone(), "helpers exited");
    },
  );

  it("WebSocket port-forward: closing the socket kills the helper", T, async () => {
    const url = `${server.portForwardUrl({ podSandboxId: podId, port: [9000] })}`;
    const pf = await portForwardOverWebSocket(url, [9000]);
    try {
      pf.ports[0]!.input.write("x");
      assert.equal((await once(pf.ports[0]!.data, "data"))[0].toString(), "X");
      assert.equal((await processesWithArgs(HELPER_9000)).length, 1);
    } finally {
      pf.close();
    }
    assert.equal(await pf.closed, 1000);
    assert.ok(await helpersGone(), "helper killed");
  });
});
