/**
 * Loaded into berthd with `--import` (through NODE_OPTIONS, which refuses --cpu-prof) when the
 * pod benchmark runs with BENCH_BERTH_CPU_PROF=<dir>: samples berthd's CPU with the inspector's
 * profiler and writes `<dir>/berthd-<pid>.cpuprofile` (open in Chrome DevTools or speedscope)
 * when berthd exits. The in-thread inspector session answers synchronously, so 'exit' is enough.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env["BERTH_BENCH_CPU_PROF_DIR"];
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 500 });
  session.post("Profiler.start");
  process.on("exit", () => {
    session.post("Profiler.stop", (err, res) => {
      if (err || !res) return;
      writeFileSync(join(dir, `berthd-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
