/**
 * The collector bench's outside processes: Debian's rsyslogd with imfile as a peer on the same
 * pre-written files (pinned to the same core, output through omfile in a JSON template so it
 * escapes and writes each line as our flusher does), and the steady-state measurement: a file
 * appended at a fixed rate while berth-collector (the real binary) or rsyslogd follows it,
 * their CPU % and RSS read from /proc.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const RSYSLOGD = "/usr/sbin/rsyslogd";
const CORE = "1";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Per output line, what the template adds to the input line: `{"content":"` + `"}`. */
const TEMPLATE_OVERHEAD = 14;

function rsyslogConf(work: string, input: string, out: string, multilineStart?: string): string {
  const start = multilineStart ? ` startmsg.regex="${multilineStart}" escapeLF="off"` : "";
  return `global(workDirectory="${work}")
module(load="imfile" mode="inotify")
template(name="json" type="string" string="{\\"content\\":\\"%msg:::json%\\"}\\n")
ruleset(name="bench") { action(type="omfile" file="${out}" template="json") }
input(type="imfile" file="${input}" tag="bench" ruleset="bench" freshStartTail="off"${start})
`;
}

function launch(args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  return spawn("taskset", ["-c", CORE, ...args], { stdio: "ignore", env: env ?? process.env });
}

async function kill(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await done;
}

const sizeOf = async (path: string) => (await stat(path).catch(() => undefined))?.size ?? 0;

/**
 * rsyslogd reading `input` (`lines` lines, `bytes` bytes; multiline records start at
 * `multilineStart`, `records` of them) from its start: seconds from launch until its output has
 * every record. Undefined (with the reason) when it stalls short of that.
 */
export async function rsyslogRun(
  dir: string,
  input: string,
  file: { bytes: number; lines: number; records: number },
  multilineStart?: string,
): Promise<{ seconds: number } | { error: string }> {
  const work = join(dir, `rsyslog-${Date.now()}`);
  await mkdir(work);
  const out = join(work, "out.json");
  await writeFile(join(work, "rsyslog.conf"), rsyslogConf(work, input, out, multilineStart));
  // Every record: its bytes (multiline records keep their inner newlines, escaped as \n, one
  // more byte each) plus the template. imfile holds the last multiline record until the next
  // start line, which never comes: that one (a few KiB at most) is not waited for.
  const inner = file.lines - file.records;
  const expect = file.bytes + file.records * TEMPLATE_OVERHEAD + inner - (multilineStart ? 8 * 1024 : 0);
  const t0 = process.hrtime.bigint();
  const p = launch([RSYSLOGD, "-n", "-f", join(work, "rsyslog.conf"), "-i", join(work, "pid")]);
  try {
    let last = -1;
    let lastChange = Date.now();
    for (;;) {
      const size = await sizeOf(out);
      if (size >= expect) return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
      if (size !== last) [last, lastChange] = [size, Date.now()];
      if (p.exitCode !== null) return { error: `rsyslogd exited (${p.exitCode})` };
      if (Date.now() - lastChange > 10_000) return { error: `stalled at ${size} of ${expect} bytes` };
      await sleep(5);
    }
  } finally {
    await kill(p);
  }
}

export interface Steady {
  cpuPercent: number;
  rssMiB: number;
  /** Bytes the follower wrote out while measured (a check that it kept up). */
  outBytes: number;
}

/** utime + stime of a process (clock ticks) and its RSS (KiB). */
async function procStat(pid: number): Promise<{ ticks: number; rssKiB: number }> {
  const st = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rss = /VmRSS:\s+(\d+)/.exec(status);
  // Fields after "(comm) ": state is [0], utime is field 14 of stat → [11], stime [12].
  return { ticks: Number(st[11]) + Number(st[12]), rssKiB: Number(rss?.[1] ?? 0) };
}

const TICKS_PER_SECOND = 100;

/**
 * Appends `line(i)` to `input` at `mbps` MB/s for `seconds` while `follower` follows it (after
 * a warm-up second); CPU % over the measured span, the largest RSS seen.
 */
async function steady(
  follower: ChildProcess,
  input: string,
  out: string,
  line: (i: number) => string,
  mbps: number,
  seconds: number,
): Promise<Steady> {
  const tickMs = 50;
  const perTick = (mbps * 1e6 * tickMs) / 1000;
  let i = 0;
  let written = 0;
  const pid = follower.pid!;
  let first: { ticks: number; at: number; out: number } | undefined;
  let rssKiB = 0;
  const start = Date.now();
  const end = start + (seconds + 1) * 1000;
  for (let next = start; Date.now() < end; next += tickMs) {
    const parts: string[] = [];
    let n = 0;
    while (written + n < ((next - start + tickMs) / tickMs) * perTick) {
      const l = line(i++);
      parts.push(l);
      n += l.length;
    }
    await appendFile(input, parts.join(""));
    written += n;
    if (!first && Date.now() - start >= 1000) {
      first = { ticks: (await procStat(pid)).ticks, at: Date.now(), out: await sizeOf(out) };
    }
    if (first) rssKiB = Math.max(rssKiB, (await procStat(pid)).rssKiB);
    const wait = next + tickMs - Date.now();
    if (wait > 0) await sleep(wait);
  }
  const last = await procStat(pid);
  const secs = (Date.now() - first!.at) / 1000;
  return {
    cpuPercent: +((100 * (last.ticks - first!.ticks)) / TICKS_PER_SECOND / secs).toFixed(1),
    rssMiB: +(Math.max(rssKiB, last.rssKiB) / 1024).toFixed(1),
    outBytes: (await sizeOf(out)) - first!.out,
  };
}

/** berth-collector (dist/bin) following a file written at `mbps`, output to a file. */
export async function collectorSteady(
  dir: string,
  line: (i: number) => string,
  mbps: number,
  seconds: number,
): Promise<Steady> {
  const work = join(dir, `steady-collector-${Date.now()}`);
  await mkdir(work);
  const input = join(work, "app.log");
  const out = join(work, "out.json");
  await writeFile(input, "");
  await writeFile(
    join(work, "bench.yaml"),
    `inputs:\n  - Type: input_file\n    FilePaths: [${input}]\nflushers:\n  - Type: flusher_stdout\n    FileName: ${out}\n`,
  );
  const bin = join(import.meta.dirname, "..", "bin", "berth-collector.js");
  const p = launch([
    process.execPath,
    bin,
    "--config",
    join(work, "bench.yaml"),
    "--state-dir",
    join(work, "state"),
    "--runtime-endpoint",
    `unix://${join(work, "no-runtime.sock")}`,
  ]);
  try {
    await sleep(1000);
    return await steady(p, input, out, line, mbps, seconds);
  } finally {
    await kill(p);
  }
}

/** rsyslogd (imfile) following a file written at `mbps`. */
export async function rsyslogSteady(
  dir: string,
  line: (i: number) => string,
  mbps: number,
  seconds: number,
): Promise<Steady> {
  const work = join(dir, `steady-rsyslog-${Date.now()}`);
  await mkdir(work);
  const input = join(work, "app.log");
  const out = join(work, "out.json");
  await writeFile(input, "");
  await writeFile(join(work, "rsyslog.conf"), rsyslogConf(work, input, out));
  const p = launch([RSYSLOGD, "-n", "-f", join(work, "rsyslog.conf"), "-i", join(work, "pid")]);
  try {
    await sleep(1000);
    // taskset execs rsyslogd in place: the pid is rsyslogd's.
    return await steady(p, input, out, line, mbps, seconds);
  } finally {
    await kill(p);
  }
}

export const haveRsyslog = () => existsSync(RSYSLOGD);
