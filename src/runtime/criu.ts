/**
 * Whether CRIU can work on this machine, asked once per binary (`criu check`), and what its
 * logs say when a dump or restore failed. Debian 12's CRIU 3.17 cannot even start on Linux
 * 6.13+: those kernels split the vvar mapping (a `[vvar_vclock]` area) and CRIU before 4.0
 * stops at "vdso: Unexpected rt vDSO area bounds".
 */
import { access, constants, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Runner, run } from "../common/process.js";

const INSTALLED_CRIU = "/opt/berth/criu/criu";
let defaultPath: Promise<string> | undefined;

/**
 * scripts/install-criu.sh's CRIU 4.1 where it is installed (Linux 6.13+), else Debian's;
 * looked up once, at the first checkpoint or restore.
 */
export function defaultCriuPath(): Promise<string> {
  defaultPath ??= access(INSTALLED_CRIU, constants.X_OK).then(
    () => INSTALLED_CRIU,
    () => "/usr/sbin/criu",
  );
  return defaultPath;
}

const verdicts = new Map<string, Promise<string | undefined>>();

/** undefined when `criuPath` passes `criu check`; otherwise what fails, in words. */
export function criuProblem(criuPath: string, runner: Runner = run): Promise<string | undefined> {
  let v = verdicts.get(criuPath);
  if (!v) {
    v = checkCriu(criuPath, runner);
    verdicts.set(criuPath, v);
    // A missing binary may be installed later: only a verdict on a present binary is kept.
    v.then((problem) => {
      if (problem?.includes("not installed")) verdicts.delete(criuPath);
    });
  }
  return v;
}

async function checkCriu(criuPath: string, runner: Runner): Promise<string | undefined> {
  try {
    await access(criuPath, constants.X_OK);
  } catch {
    return `CRIU is not installed (${criuPath} is not an executable; runtime.criu names it)`;
  }
  const version = await runner(criuPath, ["--version"], { timeoutMs: 10_000 }).catch(() => undefined);
  const v = /Version:\s*(\S+)/.exec(version?.stdout ?? "")?.[1] ?? "unknown version";
  const r = await runner(criuPath, ["check"], { timeoutMs: 30_000 });
  if (r.exitCode === 0) return undefined;
  const errors = errorLines(`${r.stdout}\n${r.stderr}`);
  const vdso = errors.some((l) => l.includes("vDSO area bounds") || l.includes("vdso symtable"));
  const kernel = (await readFile("/proc/sys/kernel/osrelease", "utf8").catch(() => "?")).trim();
  const why = vdso
    ? `: this kernel (${kernel}) maps a [vvar_vclock] area that CRIU before 4.0 does not know` +
      ` (scripts/install-criu.sh installs CRIU 4.1 as /opt/berth/criu/criu: set runtime.criu to it)`
    : "";
  return `CRIU ${v} (${criuPath}) cannot run on this machine${why}; \`criu check\` says: ${errors.slice(0, 4).join("; ") || `exit ${r.exitCode}`}`;
}

/** The `Error (...)` lines of a CRIU log, without their timestamps. */
export function errorLines(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => /\bError \(/.test(l))
    .map((l) => l.replace(/^\([\d.]+\)\s*/, "").trim());
}

/** The error lines of `<workDir>/<log>` (dump.log, restore.log); [] when there is none. */
export async function criuLogErrors(workDir: string, log: "dump.log" | "restore.log"): Promise<string[]> {
  const text = await readFile(join(workDir, log), "utf8").catch(() => "");
  // CRIU logs a failed RLIMIT_NOFILE raise as an error but goes on (root lacks CAP_SYS_RESOURCE here).
  return errorLines(text).filter((l) => !l.includes("RLIMIT_NOFILE"));
}
