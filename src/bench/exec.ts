/**
 * Exec benchmark, run inside the pod benchmark on one running container per runtime: the same
 * client drives each runtime's CRI and streaming server (SPDY, v4.channel.k8s.io).
 *
 *   ExecSync      ExecSync `true`
 *   Exec          Exec RPC + upgrade + `true` + exit status (streamed, no TTY)
 *   Exec (TTY)    the same on a terminal
 *   cat           32 MiB through stdin → `cat` → stdout, MiB/s
 *
 * Baseline for berth: `runc exec` of `true` run directly (what any runtime has to pay).
 * Iterations alternate between the runtimes, so load drift hits both.
 */
import { spawn } from "node:child_process";
import { Readable, Writable } from "node:stream";
import type { CriClient } from "../api/client.js";
import { execOverSpdy } from "../streaming/client.js";

export const EXEC_KINDS = ["execSync", "exec", "execTty", "runcExec"] as const;
export type ExecKind = (typeof EXEC_KINDS)[number];
export const EXEC_LABELS: Record<ExecKind, string> = {
  execSync: "ExecSync `true`",
  exec: "Exec `true` (SPDY, no TTY)",
  execTty: "Exec `true` (SPDY, TTY)",
  runcExec: "runc exec `true` (direct)",
};
const CAT_BYTES = 32 * 1024 * 1024;

export interface ExecBenchResult {
  /** Client-side wall time per kind, ms. */
  ms: Partial<Record<ExecKind, number[]>>;
  /** Throughput of `cat` per run, MiB/s. */
  catMiBps: number[];
}

export interface ExecTarget {
  name: string;
  client: CriClient;
  containerId: string;
  /** berth only: runc's root, for the direct `runc exec` baseline. */
  runcRoot?: string;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function execSyncTrue(t: ExecTarget): Promise<void> {
  const r = await t.client.call("execSync", {
    containerId: t.containerId,
    cmd: ["true"],
    timeout: 30n,
  });
  if (r.exitCode !== 0) throw new Error(`${t.name}: ExecSync true exited ${r.exitCode}`);
}

async function streamed(t: ExecTarget, cmd: string[], tty: boolean, stdin?: Readable): Promise<number> {
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      cb();
    },
  });
  const { url } = await t.client.call("exec", {
    containerId: t.containerId,
    cmd,
    tty,
    stdin: stdin !== undefined,
    stdout: true,
    stderr: !tty,
  });
  const code = await execOverSpdy(url, {
    stdout: sink,
    ...(tty ? { tty: true } : { stderr: sink }),
    ...(stdin ? { stdin } : {}),
  });
  if (code !== 0) throw new Error(`${t.name}: exec ${cmd.join(" ")} exited ${code}`);
  return bytes;
}

function runcExecTrue(root: string, id: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn("/usr/sbin/runc", ["--root", root, "exec", id, "true"], { stdio: "ignore" });
    p.once("error", reject);
    p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`runc exec exited ${code}`))));
  });
}

async function timeOnce(t: ExecTarget, kind: ExecKind): Promise<number | undefined> {
  try {
    return await timeKind(t, kind);
  } catch (err) {
    throw new Error(`${t.name} ${EXEC_LABELS[kind]}: ${(err as Error).message}`);
  }
}

async function timeKind(t: ExecTarget, kind: ExecKind): Promise<number | undefined> {
  const t0 = nowMs();
  switch (kind) {
    case "execSync":
      await execSyncTrue(t);
      break;
    case "exec":
      await streamed(t, ["true"], false);
      break;
    case "execTty":
      await streamed(t, ["true"], true);
      break;
    case "runcExec":
      if (!t.runcRoot) return undefined;
      await runcExecTrue(t.runcRoot, t.containerId);
      break;
  }
  return nowMs() - t0;
}

async function catOnce(t: ExecTarget): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  const input = Readable.from(
    (function* () {
      for (let n = 0; n < CAT_BYTES; n += chunk.length) yield chunk;
    })(),
  );
  const t0 = nowMs();
  const bytes = await streamed(t, ["cat"], false, input);
  const s = (nowMs() - t0) / 1000;
  if (bytes !== CAT_BYTES) throw new Error(`${t.name}: cat returned ${bytes} bytes of ${CAT_BYTES}`);
  return CAT_BYTES / 1024 / 1024 / s;
}

/** `iterations` timed runs of each kind (after one untimed) and `catRuns` throughput runs. */
export async function runExecBench(
  targets: ExecTarget[],
  iterations: number,
  catRuns: number,
  check: () => void,
): Promise<Map<string, ExecBenchResult>> {
  const results = new Map<string, ExecBenchResult>(targets.map((t) => [t.name, { ms: {}, catMiBps: [] }]));
  for (const t of targets) for (const kind of EXEC_KINDS) await timeOnce(t, kind); // warm-up
  for (let i = 0; i < iterations; i++) {
    const order = i % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const r = results.get(t.name)!;
      for (const kind of EXEC_KINDS) {
        check();
        const v = await timeOnce(t, kind);
        if (v === undefined) continue;
        const samples = r.ms[kind] ?? [];
        samples.push(v);
        r.ms[kind] = samples;
      }
    }
  }
  for (let i = 0; i < catRuns; i++) {
    const order = i % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      check();
      results.get(t.name)!.catMiBps.push(await catOnce(t));
    }
  }
  return results;
}
