/**
 * `npm run bench:collector`: berth-collector's reading path on one core (the npm script pins
 * it with taskset): pre-written log files are read, assembled, processed and serialised to a
 * null sink (flusher_stdout into /dev/null) through the same Source/Pipeline code the agent
 * runs. Cases: CRI single-line, CRI lines with regex parsing, raw multiline (stack traces).
 * Prints MB/s (of file bytes) and records/s per case; writes bench-results/collector.json.
 *
 * With Debian's rsyslogd installed, it reads the same files (imfile, omfile with a JSON
 * template) on the same core, and both follow a file written at a steady 10 MB/s for their
 * CPU % and RSS (collector-peers.ts).
 *
 * Environment: BENCH_COLLECTOR_MB (size of each file, default 64), BENCH_COLLECTOR_RUNS
 * (default 3; the median is reported), BENCH_COLLECTOR_CASES (names to run, comma-separated
 * substrings), BENCH_COLLECTOR_STEADY_SECONDS (default 10; 0 skips the steady part).
 */
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointStore } from "../collector/checkpoint.js";
import { parsePipeline } from "../collector/config.js";
import type { ContainerSource } from "../collector/discovery.js";
import { DEFAULT_TAIL_OPTIONS } from "../collector/file-tail.js";
import { lineDecoder } from "../collector/line-format.js";
import { Pipeline, SCHEMAS } from "../collector/pipeline.js";
import { multilineOptions } from "../collector/processors.js";
import { Source } from "../collector/source.js";
import { createLogger } from "../common/logger.js";
import { collectorSteady, haveRsyslog, rsyslogRun, rsyslogSteady } from "./collector-peers.js";

const MB = Number(process.env["BENCH_COLLECTOR_MB"] ?? 64);
const RUNS = Number(process.env["BENCH_COLLECTOR_RUNS"] ?? 3);

interface Case {
  name: string;
  format: "cri" | "raw";
  processors: string;
  multiline?: Record<string, unknown>;
  /** The same grouping for rsyslog imfile (startmsg.regex, POSIX ERE); none: no peer run. */
  peerMultiline?: string;
  /** rsyslog has no equivalent of the processors: no peer run. */
  noPeer?: boolean;
  /** Read through the JS path even where the native one applies (BERTH_COLLECTOR_NATIVE=0). */
  jsPath?: boolean;
  line(i: number): string;
}

const TS = "2026-12-06T03:23:46.123456789Z";
const LINE_BYTES = 512;
/** Pads a line (without its newline) with a filler field to LINE_BYTES bytes in all. */
const pad = (s: string) => `${s} pad=${"x".repeat(Math.max(0, LINE_BYTES - s.length - 6))}\n`;
const crireq = (i: number) =>
  pad(`${TS} stdout F GET /api/v1/items/${i} 200 1532 bytes in 12 ms user=alice trace=${i.toString(16)}`);
const CASES: Case[] = [
  {
    name: "cri single-line",
    format: "cri",
    processors: "",
    line: crireq,
  },
  {
    name: "cri single-line, JS path",
    format: "cri",
    processors: "",
    noPeer: true,
    jsPath: true,
    line: crireq,
  },
  {
    name: "cri + regex parse",
    format: "cri",
    processors: `processors:
  - Type: processor_parse_regex_native
    Regex: (\\S+) (\\S+) (\\d+) (\\d+) bytes in (\\d+) ms (.*)
    Keys: [method, path, status, size, ms, rest]
`,
    noPeer: true,
    line: crireq,
  },
  {
    name: "raw multiline (5-line traces)",
    format: "raw",
    processors: "",
    multiline: { StartPattern: "\\d{4}-\\d\\d-\\d\\d .*" },
    peerMultiline: "^[0-9]{4}-[0-9][0-9]-[0-9][0-9] ",
    line: (i) =>
      i % 5 === 0
        ? pad(`2026-12-06 03:23:46 ERROR request ${i} failed: java.lang.IllegalStateException`)
        : pad(`    at com.example.Service.handle(Service.java:${i % 997})`),
  },
];

/** What input_container_stdio tags each record with. */
const TAGS: Record<string, string> = {
  _container_name_: "web",
  _pod_name_: "web-7d9c8b6f5-x2x9q",
  _namespace_: "default",
  _pod_uid_: "0f5f3c1e-8d2a-4c1b-9d7e-1a2b3c4d5e6f",
  _image_name_: "registry.example.com/web:1.4.2",
  _container_id_: "4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081",
};

async function writeCase(path: string, c: Case): Promise<{ bytes: number; lines: number }> {
  const fh = await open(path, "w");
  let bytes = 0;
  let lines = 0;
  const target = MB * 1024 * 1024;
  while (bytes < target) {
    const parts: string[] = [];
    for (let k = 0; k < 10_000; k++) parts.push(c.line(lines++));
    const chunk = parts.join("");
    await fh.write(chunk);
    bytes += Buffer.byteLength(chunk);
  }
  await fh.close();
  return { bytes, lines };
}

interface Run {
  seconds: number;
  /** CPU time (user + system) the collector's process spent: the figure a loaded machine spoils least. */
  cpuSeconds: number;
  records: number;
}

async function runOnce(dir: string, path: string, c: Case): Promise<Run> {
  const log = createLogger("warn");
  const checkpoints = new CheckpointStore(join(dir, `state-${Date.now()}`));
  await checkpoints.load();
  const none: ContainerSource = { subscribe: () => () => {}, current: () => new Map() };
  const cfg = parsePipeline(
    join(dir, "bench.yaml"),
    `inputs:\n  - Type: input_file\n    FilePaths: [${path}]\n${c.processors}flushers:\n  - Type: flusher_stdout\n    FileName: /dev/null\n`,
    SCHEMAS,
  )!;
  const pipeline = new Pipeline(cfg, { containers: none, checkpoints, log, readIntervalMs: 10 });
  let records = 0;
  const serialised = c.jsPath ? undefined : pipeline.deliverNdjson;
  const src = new Source(
    {
      key: "bench",
      path,
      tail: {
        ...DEFAULT_TAIL_OPTIONS,
        decode: lineDecoder(c.format),
        multiline: multilineOptions(c.multiline),
      },
      tags: TAGS,
    },
    {
      checkpoints,
      log,
      readIntervalMs: 10,
      deliver: (r) => {
        records += r.length;
        return pipeline.deliver(r);
      },
      deliverNdjson: serialised
        ? (b) => {
            records += b.count;
            return serialised(b);
          }
        : undefined,
    },
  );
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  src.start();
  src.finish();
  await src.finished;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await pipeline.stop();
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, records };
}

/** berth-collector and rsyslogd side by side, one row per case, then the steady figures. */
function printTable(results: Array<Record<string, unknown>>): void {
  const row = (cells: string[]) => console.log(cells.map((c, i) => c.padEnd(i === 0 ? 32 : 16)).join(" "));
  console.log("");
  row(["case", "berth MiB/s", "berth MiB/CPU-s", "rsyslogd MiB/s"]);
  for (const r of results.filter((x) => x["case"] && !x["peer"])) {
    const peer = results.find((x) => x["peer"] && x["case"] === r["case"]);
    row([
      String(r["case"]),
      String(r["mibPerSecond"]),
      String(r["mibPerCpuSecond"]),
      peer ? String(peer["mibPerSecond"]) : "-",
    ]);
  }
  for (const r of results.filter((x) => x["steady"])) {
    row([`steady ${r["mbps"]} MB/s: ${r["steady"]}`, `${r["cpuPercent"]}% CPU`, `${r["rssMiB"]} MiB RSS`]);
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "berth-bench-collector-"));
  const results: Array<Record<string, unknown>> = [];
  try {
    const only = process.env["BENCH_COLLECTOR_CASES"];
    for (const c of CASES.filter((k) => !only || only.split(",").some((o) => k.name.includes(o)))) {
      const path = join(dir, `${c.name.replace(/\W+/g, "_")}.log`);
      const { bytes, lines } = await writeCase(path, c);
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++) runs.push(await runOnce(dir, path, c));
      runs.sort((a, b) => a.seconds - b.seconds);
      const med = runs[Math.floor(runs.length / 2)]!;
      const mbps = bytes / 1024 / 1024 / med.seconds;
      results.push({
        case: c.name,
        fileMiB: +(bytes / 1048576).toFixed(1),
        lines,
        records: med.records,
        seconds: +med.seconds.toFixed(3),
        mibPerSecond: +mbps.toFixed(1),
        recordsPerSecond: Math.round(med.records / med.seconds),
        cpuSeconds: +med.cpuSeconds.toFixed(3),
        mibPerCpuSecond: +(bytes / 1048576 / med.cpuSeconds).toFixed(1),
      });
      console.log(
        `${c.name.padEnd(32)} ${(bytes / 1048576).toFixed(0)} MiB, ${med.records} records: ${mbps.toFixed(1)} MiB/s, ${Math.round(med.records / med.seconds)} records/s, ${(bytes / 1048576 / med.cpuSeconds).toFixed(1)} MiB per CPU-second (median of ${RUNS})`,
      );
      if (haveRsyslog() && !c.noPeer) {
        const peer: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const r = await rsyslogRun(dir, path, { bytes, lines, records: med.records }, c.peerMultiline);
          if ("error" in r) {
            console.log(`  rsyslogd imfile: ${r.error}`);
            break;
          }
          peer.push(r.seconds);
        }
        if (peer.length === RUNS) {
          const secs = peer.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
          const peerMbps = bytes / 1048576 / secs;
          results.push({
            case: c.name,
            peer: "rsyslogd imfile",
            seconds: +secs.toFixed(3),
            mibPerSecond: +peerMbps.toFixed(1),
          });
          console.log(
            `  rsyslogd imfile (same file, same core): ${peerMbps.toFixed(1)} MiB/s (median of ${RUNS})`,
          );
        }
      }
      await rm(path);
    }
    const steadyMbps = 10;
    const steadySecs = Number(process.env["BENCH_COLLECTOR_STEADY_SECONDS"] ?? 10);
    const steadyCase = CASES[0]!;
    if (steadySecs > 0) {
      const ours = await collectorSteady(dir, steadyCase.line, steadyMbps, steadySecs);
      results.push({ steady: "berth-collector", mbps: steadyMbps, ...ours });
      console.log(
        `steady ${steadyMbps} MB/s for ${steadySecs} s, berth-collector: ${ours.cpuPercent}% CPU, ${ours.rssMiB} MiB RSS (wrote ${(ours.outBytes / 1e6).toFixed(0)} MB)`,
      );
      if (haveRsyslog()) {
        const peer = await rsyslogSteady(dir, steadyCase.line, steadyMbps, steadySecs);
        results.push({ steady: "rsyslogd imfile", mbps: steadyMbps, ...peer });
        console.log(
          `steady ${steadyMbps} MB/s for ${steadySecs} s, rsyslogd imfile: ${peer.cpuPercent}% CPU, ${peer.rssMiB} MiB RSS (wrote ${(peer.outBytes / 1e6).toFixed(0)} MB)`,
        );
      }
    }
    printTable(results);
    await mkdir("bench-results", { recursive: true });
    await writeFile(
      join("bench-results", "collector.json"),
      `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
