/**
 * A private Docker Engine for tests and conformance: Debian's dockerd on its own socket, data
 * root, exec root and pidfile under a temp dir, with its own containerd (never the host's
 * /run/containerd), no bridge, no iptables. `stop()` ends both and removes everything.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerEngine } from "../docker/engine.js";
import { unmountUnder } from "./berthd-process.js";

export const DOCKERD = "/usr/sbin/dockerd";
export const CONTAINERD = "/usr/bin/containerd";

/** Why the Docker suites cannot run here, or false. */
export async function dockerMissing(): Promise<string | false> {
  for (const bin of [DOCKERD, CONTAINERD]) {
    try {
      await access(bin);
    } catch {
      return `${bin} is not installed (Debian docker.io)`;
    }
  }
  return process.getuid?.() === 0 ? false : "needs root (dockerd)";
}

export class DockerdProcess {
  private logs: string[] = [];

  private constructor(
    readonly dir: string,
    readonly endpoint: string,
    private readonly procs: ChildProcess[],
  ) {}

  get output(): string {
    return this.logs.join("");
  }

  static async start(): Promise<DockerdProcess> {
    const dir = await mkdtemp(join(tmpdir(), "berth-dockerd-"));
    const logs: string[] = [];
    const capture = (p: ChildProcess) => {
      p.stdout?.on("data", (d: Buffer) => logs.push(d.toString()));
      p.stderr?.on("data", (d: Buffer) => logs.push(d.toString()));
    };
    await writeFile(
      join(dir, "containerd.toml"),
      `version = 2\nroot = "${dir}/containerd-root"\nstate = "${dir}/containerd-state"\n` +
        `disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\naddress = "${dir}/containerd.sock"\n` +
        `[debug]\naddress = ""\n[metrics]\naddress = ""\n`,
    );
    const containerd = spawn(CONTAINERD, ["--config", join(dir, "containerd.toml")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    capture(containerd);
    await writeFile(join(dir, "daemon.json"), "{}\n");
    const endpoint = `unix://${dir}/docker.sock`;
    const dockerd = spawn(
      DOCKERD,
      [
        `--config-file=${dir}/daemon.json`,
        `--host=${endpoint}`,
        `--data-root=${dir}/data`,
        `--exec-root=${dir}/exec`,
        `--pidfile=${dir}/docker.pid`,
        `--containerd=${dir}/containerd.sock`,
        "--bridge=none",
        "--iptables=false",
        "--ip-masq=false",
        "--ip6tables=false",
        "--storage-driver=overlay2",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    capture(dockerd);
    const d = new DockerdProcess(dir, endpoint, [dockerd, containerd]);
    d.logs = logs;
    const engine = new DockerEngine(endpoint);
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await engine.version();
        return d;
      } catch (err) {
        if (dockerd.exitCode !== null || Date.now() > deadline) {
          await d.stop();
          throw new Error(`dockerd did not start: ${(err as Error).message}\n${d.output}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Stops dockerd (then its containerd) and removes the directory with every container. */
  async stop(): Promise<void> {
    const engine = new DockerEngine(this.endpoint);
    // Containers first (the engine would leave their shims and mounts behind).
    const list = await engine
      .json<Array<{ Id: string }>>("GET", "/containers/json", { query: { all: true } })
      .catch(() => []);
    for (const c of list ?? [])
      await engine.json("DELETE", `/containers/${c.Id}`, { query: { force: true } }).catch(() => {});
    for (const p of this.procs) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
      p.kill("SIGTERM");
      const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    await unmountUnder(this.dir);
    await rm(this.dir, { recursive: true, force: true });
  }
}
