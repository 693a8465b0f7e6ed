/**
 * The processes a runtime runs per pod, found in /proc: the per-container monitors (conmon for
 * berthd, containerd-shim-runc-v2 for containerd) by their command line naming the runtime's
 * temp dir, and their children (pause / the container's init). Memory as VmRSS and Pss.
 */
import { readdir, readFile } from "node:fs/promises";
import { basename } from "node:path";
import { readMem } from "./rss.js";

export interface ProcInfo {
  pid: number;
  ppid: number;
  argv: string[];
}

/** Every process we can read (kernel threads have an empty argv and are skipped). */
export async function listProcs(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const [cmdline, stat] = await Promise.all([
        readFile(`/proc/${pid}/cmdline`, "utf8"),
        readFile(`/proc/${pid}/stat`, "utf8"),
      ]);
      const argv = cmdline.split("\0");
      if (argv.at(-1) === "") argv.pop();
      if (argv.length === 0) continue;
      // "pid (comm) state ppid ...": fields after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      out.push({ pid, ppid, argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Processes whose argv[0] is `binary` (by basename) and one of whose arguments lies under `dir`. */
export function monitorsUnder(procs: readonly ProcInfo[], binary: string, dir: string): ProcInfo[] {
  return procs.filter(
    (p) =>
      basename(p.argv[0] ?? "") === binary &&
      p.argv.slice(1).some((a) => a === dir || a.startsWith(`${dir}/`)),
  );
}

export function childrenOf(procs: readonly ProcInfo[], parents: readonly ProcInfo[]): ProcInfo[] {
  const ids = new Set(parents.map((p) => p.pid));
  return procs.filter((p) => ids.has(p.ppid));
}

/** Pss (proportional set size: shared pages split among their users) in KiB. */
export async function readPssKiB(pid: number): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, "utf8");
    const m = /^Pss:\s+(\d+) kB/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface ProcMem {
  pid: number;
  command: string;
  rssKiB: number;
  pssKiB: number;
}

export async function procMem(p: ProcInfo): Promise<ProcMem | undefined> {
  const [mem, pss] = await Promise.all([readMem(p.pid), readPssKiB(p.pid)]);
  if (!mem) return undefined;
  return { pid: p.pid, command: p.argv.join(" ").slice(0, 200), rssKiB: mem.rssKiB, pssKiB: pss ?? 0 };
}

export async function procsMem(procs: readonly ProcInfo[]): Promise<ProcMem[]> {
  const all = await Promise.all(procs.map(procMem));
  return all.filter((m): m is ProcMem => m !== undefined);
}
