/**
 * Runs a real berthd process for integration tests, on a private root, state dir and socket,
 * and gives a CRI client connected to it. `stop()` ends it and removes its directories.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CriClient } from "../api/client.js";
import { MNT_DETACH, native } from "../common/native.js";

export const BERTHD = new URL("../bin/berthd.js", import.meta.url).pathname;

export interface BerthdOptions {
  /** Extra TOML appended to the generated config. */
  toml?: string;
  /** Reuse these directories (to restart over the same state). */
  dir?: string;
}

export class BerthdProcess {
  private proc: ChildProcess | undefined;
  private logs: string[] = [];
  client: CriClient;

  private constructor(
    readonly dir: string,
    readonly socket: string,
    readonly root: string,
    readonly configPath: string,
  ) {
    this.client = new CriClient(socket);
  }

  static async start(opts: BerthdOptions = {}): Promise<BerthdProcess> {
    const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "berth-it-")));
    const configPath = join(dir, "berth.toml");
    if (!opts.dir) {
      await writeFile(
        configPath,
        `root = "${dir}/root"\nstate = "${dir}/state"\nlisten = "${dir}/state/berth.sock"\nlog_level = "debug"\n${opts.toml ?? ""}\n` +
          // Never the host's /etc/cni/net.d: a test sees only the networks it configures.
          (opts.toml?.includes("[cni]") ? "" : `[cni]\nconf_dirs = ["${dir}/net.d"]\n`),
      );
    }
    const b = new BerthdProcess(dir, join(dir, "state", "berth.sock"), join(dir, "root"), configPath);
    await b.launch();
    return b;
  }

  /** Output of the daemon so far (JSON log lines). */
  get output(): string {
    return this.logs.join("");
  }

  /** ms from the last launch's spawn to its first answered Version. */
  readyMs = 0;

  /** Starts berthd on this process's directories; resolves once its socket answers Version (polled every `pollMs`). */
  async launch(pollMs = 100): Promise<void> {
    const t0 = performance.now();
    const proc = spawn(process.execPath, [BERTHD, "--config", this.configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    proc.stdout?.on("data", (d: Buffer) => this.logs.push(d.toString()));
    proc.stderr?.on("data", (d: Buffer) => this.logs.push(d.toString()));
    const exited = new Promise<never>((_, reject) => {
      proc.once("exit", (code) => reject(new Error(`berthd exited (${code}) during start:\n${this.output}`)));
    });
    const deadline = Date.now() + 30_000;
    this.client.close();
    this.client = new CriClient(this.socket, { timeoutMs: 60_000 });
    for (;;) {
      const probe = new CriClient(this.socket, { timeoutMs: 1000 });
      try {
        await Promise.race([probe.version(), exited]);
        this.readyMs = performance.now() - t0;
        return;
      } catch (err) {
        if (proc.exitCode !== null || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, pollMs));
      } finally {
        probe.close();
      }
    }
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Stops and removes every pod through the runtime (a test that failed midway left some). */
  async removeAllPods(): Promise<void> {
    if (this.proc?.exitCode !== null || this.proc?.signalCode !== null) return;
    const { items } = await this.client.call("listPodSandbox", {});
    for (const p of items) {
      await this.client.call("stopPodSandbox", { podSandboxId: p.id }).catch(() => {});
      await this.client.call("removePodSandbox", { podSandboxId: p.id }).catch(() => {});
    }
  }

  /** Ends the daemon with `signal` and waits for it to exit; resolves its exit code. */
  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
    const done = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    proc.kill(signal);
    return done;
  }

  /** Ends the daemon (SIGKILL if SIGTERM has not done it within a minute) and removes its directories. */
  async stop(): Promise<void> {
    // Pods first: a pod's init and containers run under conmon and would outlive berthd.
    await this.removeAllPods().catch(() => {});
    this.client.close();
    let timer: NodeJS.Timeout | undefined;
    const stuck = await Promise.race([
      this.kill("SIGTERM").then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), 60_000);
      }),
    ]);
    clearTimeout(timer);
    if (stuck) await this.kill("SIGKILL");
    await unmountUnder(this.dir);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Detaches every mount at or below `dir`, deepest first (pinned namespaces, rootfs, shm). */
export async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points)
    await native()
      .umount2(p, MNT_DETACH)
      .catch(() => {});
}
