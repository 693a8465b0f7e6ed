/** Memory and CPU time of a process from /proc: current RSS, peak (VmHWM), a poller, CPU time. */
import { readFile } from "node:fs/promises";

export interface MemStatus {
  /** VmRSS in KiB. */
  rssKiB: number;
  /** VmHWM (peak RSS over the process's life) in KiB. */
  hwmKiB: number;
}

export async function readMem(pid: number): Promise<MemStatus | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
}

/** CPU time (user and system, all threads) a process has used so far, in ms; undefined once it is gone. */
export async function readCpuMs(pid: number): Promise<{ userMs: number; systemMs: number } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Fields after the command name (which may contain spaces), from field 3 on.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const tick = 1000 / CLOCK_TICKS;
  return { userMs: Number(fields[11]) * tick, systemMs: Number(fields[12]) * tick };
}

/** sysconf(_SC_CLK_TCK): 100 on every Linux architecture Node supports. */
const CLOCK_TICKS = 100;

/** Polls VmRSS every `intervalMs` until stopped; `stop()` resolves the largest value seen (KiB). */
export class RssSampler {
  private max = 0;
  private samples = 0;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> = Promise.resolve();

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 50,
  ) {}

  start(): this {
    const tick = () => {
      this.inflight = readMem(this.pid).then((m) => {
        if (m) {
          this.samples++;
          if (m.rssKiB > this.max) this.max = m.rssKiB;
        }
      });
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    return this;
  }

  async stop(): Promise<{ maxRssKiB: number; samples: number }> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inflight;
    const last = await readMem(this.pid);
    if (last && last.rssKiB > this.max) this.max = last.rssKiB;
    return { maxRssKiB: this.max, samples: this.samples };
  }
}
