/**
 * Berth's side of the benchmark: a real berthd (debug logs, so per-layer unpack times are
 * recorded) on a fresh root for every cold pull, through the test harness's BerthdProcess.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BerthdProcess } from "../tools/berthd-process.js";
import type { RuntimeDriver, RuntimeInstance } from "./measure.js";
import { type Cleanup, pidsWithArg, removeTree, withTimeout } from "./util.js";

/** Preload that CPU-profiles berthd (node --cpu-prof is not allowed in NODE_OPTIONS; --import is). */
const CPU_PROFILE_PRELOAD = fileURLToPath(new URL("./cpu-profile-preload.js", import.meta.url));

export interface StartBerthdOptions {
  /** Write a V8 CPU profile of berthd (berthd-<pid>.cpuprofile) into this dir when it exits. */
  cpuProfDir?: string;
}

/** A berthd (debug logs) on a fresh temp dir (`dir` on the instance); `toml` is extra config. */
export async function startBerthd(
  cleanup: Cleanup,
  toml: string,
  opts: StartBerthdOptions = {},
): Promise<RuntimeInstance & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "berth-bench-"));
  const configPath = join(dir, "berth.toml");
  await writeFile(
    configPath,
    `root = "${dir}/root"\nstate = "${dir}/state"\nlisten = "${dir}/state/berth.sock"\nlog_level = "debug"\n${toml}\n`,
  );
  let proc: BerthdProcess | undefined;
  const stop = cleanup.add(`berthd in ${dir}`, async () => {
    if (proc) {
      const p = proc;
      p.client.close();
      try {
        await withTimeout(p.kill("SIGTERM"), 15_000, "berthd exit after SIGTERM");
      } catch {
        await withTimeout(p.kill("SIGKILL"), 10_000, "berthd exit after SIGKILL");
      }
    } else {
      // Start failed midway: the harness may have left the process running.
      for (const pid of await pidsWithArg(configPath)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
    }
    await removeTree(dir);
  });
  try {
    // BerthdProcess spawns berthd synchronously inside start() with our environment, so the
    // profiling preload goes in through NODE_OPTIONS for that one spawn only.
    const saved = process.env["NODE_OPTIONS"];
    let starting: Promise<BerthdProcess>;
    if (opts.cpuProfDir) {
      process.env["NODE_OPTIONS"] = `${saved ?? ""} --import=${CPU_PROFILE_PRELOAD}`.trim();
      process.env["BERTH_BENCH_CPU_PROF_DIR"] = opts.cpuProfDir;
    }
    try {
      starting = BerthdProcess.start({ dir });
    } finally {
      if (opts.cpuProfDir) {
        if (saved === undefined) delete process.env["NODE_OPTIONS"];
        else process.env["NODE_OPTIONS"] = saved;
        delete process.env["BERTH_BENCH_CPU_PROF_DIR"];
      }
    }
    proc = await withTimeout(starting, 45_000, "berthd start");
  } catch (err) {
    await stop(); // never leave a half-started berthd behind
    throw err;
  }
  const started = proc;
  const pid = started.pid;
  if (pid === undefined) throw new Error("berthd has no pid");
  const instance: RuntimeInstance & { dir: string } = {
    client: started.client,
    pid,
    output: () => started.output,
    stop,
    dir,
    restart: async (beforeStart) => {
      await withTimeout(started.kill("SIGTERM"), 30_000, "berthd exit after SIGTERM");
      await beforeStart?.();
      await withTimeout(started.launch(5), 60_000, "berthd restart");
      instance.client = started.client;
      instance.pid = started.pid ?? 0;
      return started.readyMs;
    },
  };
  return instance;
}

interface LogLine {
  msg?: string;
  ms?: number;
  bytes?: number;
  layer?: string;
  time?: string;
}

/** Per-layer unpack times and the whole pull as berthd logged them. */
function pullDetails(output: string): Record<string, unknown> {
  const layers: Array<{ layer: string; ms: number; bytes: number; at: string }> = [];
  let pulledMs: number | undefined;
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      continue;
    }
    if (parsed.msg === "layer unpacked") {
      layers.push({
        layer: parsed.layer ?? "",
        ms: parsed.ms ?? 0,
        bytes: parsed.bytes ?? 0,
        at: parsed.time ?? "",
      });
    } else if (parsed.msg === "image pulled") {
      pulledMs = parsed.ms;
    }
  }
  return { layersUnpacked: layers, imagePulledMs: pulledMs };
}

/** `toml`: extra berthd config (BENCH_BERTH_TOML). */
export function berthDriver(cleanup: Cleanup, toml = ""): RuntimeDriver {
  return {
    name: "berth",
    notes: [
      "fresh berthd root per cold run",
      "log_level debug (per-layer times)",
      toml.trim() ? `extra config: ${toml.trim()}` : "max_concurrent_downloads = 3 (default)",
    ],
    start: () => startBerthd(cleanup, toml),
    version: async (i) => {
      const v = await i.client.version();
      return `${v.runtimeName} ${v.runtimeVersion}`;
    },
    details: pullDetails,
  };
}
