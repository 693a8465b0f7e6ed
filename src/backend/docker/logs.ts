/**
 * CRI-format container logs written by Berth from Docker's log API ("<RFC3339Nano> <stream>
 * <F|P> <text>" at the kubelet's path), so that ReopenContainerLog works. Docker keeps the
 * output itself (json-file) while berthd is down; a follower started over an existing file
 * resumes after the last line it holds (same timestamp: as many lines as the file has are
 * skipped), so nothing is lost or written twice.
 */

import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../../common/logger.js";
import type { DockerEngine } from "../../docker/engine.js";
import { demux, type Frame } from "../../docker/frames.js";
import { dockerTimeNs } from "./labels.js";

/** Where the file ends: the last line's time and how many lines carry it. */
export async function resumePoint(
  path: string,
): Promise<{ ts: string; ns: bigint; count: number } | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  const lines = text.split("\n").filter((l) => l !== "");
  const last = lines.at(-1);
  if (!last) return undefined;
  const ts = last.slice(0, last.indexOf(" "));
  const ns = dockerTimeNs(ts);
  let count = 0;
  for (
    let i = lines.length - 1;
    i >= 0 && dockerTimeNs(lines[i]?.slice(0, lines[i]?.indexOf(" "))) === ns;
    i--
  )
    count++;
  return { ts, ns, count };
}

/** One CRI log line from one Docker log message (its timestamp first, as `timestamps=1` gives it). */
export function criLine(
  stream: "stdout" | "stderr",
  message: string,
): { ns: bigint; line: string } | undefined {
  const sp = message.indexOf(" ");
  if (sp < 0) return undefined;
  const ts = message.slice(0, sp);
  const text = message.slice(sp + 1);
  const full = text.endsWith("\n");
  return {
    ns: dockerTimeNs(ts),
    line: `${ts} ${stream} ${full ? "F" : "P"} ${full ? text.slice(0, -1) : text}\n`,
  };
}

export class LogFollower {
  private fh: FileHandle | undefined;
  private writes: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  /** Settles when the engine has no more output for the container (it exited) or on close(). */
  readonly done: Promise<void>;
  /** Settles once the file exists (the kubelet may open it as soon as StartContainer returns). */
  readonly opened: Promise<void>;
  private markOpened: () => void = () => {};

  constructor(
    private readonly engine: DockerEngine,
    readonly containerId: string,
    readonly path: string,
    private readonly tty: boolean,
    logger: Logger,
  ) {
    this.opened = new Promise<void>((resolve) => {
      this.markOpened = resolve;
    });
    this.done = this.run().catch((err: unknown) => {
      if (!this.abort.signal.aborted)
        logger.warn({ id: containerId, err: (err as Error).message }, "container log follower failed");
    });
  }

  private async run(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const resume = await resumePoint(this.path);
    try {
      this.fh = await open(this.path, "a", 0o640);
    } finally {
      this.markOpened();
    }
    try {
      await this.copy(resume);
    } finally {
      await this.writes.catch(() => {});
      await this.fh?.close().catch(() => {});
      this.fh = undefined;
    }
  }

  private async copy(resume: Awaited<ReturnType<typeof resumePoint>>): Promise<void> {
    const res = await this.engine.call("GET", `/containers/${this.containerId}/logs`, {
      query: {
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        ...(resume && {
          since: `${resume.ns / 1_000_000_000n}.${String(resume.ns % 1_000_000_000n).padStart(9, "0")}`,
        }),
      },
      signal: this.abort.signal,
    });
    let skip = resume?.count ?? 0;
    const frames: AsyncIterable<Frame> = this.tty ? ttyFrames(res) : demux(res);
    for await (const f of frames) {
      if (f.stream === "stdin") continue;
      const l = criLine(f.stream, f.data.toString("utf8"));
      if (!l) continue;
      if (resume && l.ns < resume.ns) continue;
      if (resume && l.ns === resume.ns && skip > 0) {
        skip--;
        continue;
      }
      this.write(l.line);
    }
  }

  private write(line: string): void {
    this.writes = this.writes.then(async () => {
      await this.fh?.write(line);
    });
  }

  /** Closes the file and opens the path again (after the kubelet renamed it). */
  reopen(): Promise<void> {
    const next = this.writes.then(async () => {
      if (!this.fh) return; // the container's output has ended
      await this.fh.close();
      await mkdir(dirname(this.path), { recursive: true });
      this.fh = await open(this.path, "a", 0o640);
    });
    this.writes = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

/** A terminal's output has no frames: each line of the log stream is one message. */
async function* ttyFrames(stream: AsyncIterable<Buffer>): AsyncGenerator<Frame> {
  let rest = "";
  for await (const chunk of stream) {
    rest += chunk.toString("utf8");
    let nl = rest.indexOf("\n");
    while (nl >= 0) {
      yield { stream: "stdout", data: Buffer.from(rest.slice(0, nl + 1).replace(/\r\n$/, "\n")) };
      rest = rest.slice(nl + 1);
      nl = rest.indexOf("\n");
    }
  }
  if (rest !== "") yield { stream: "stdout", data: Buffer.from(rest) };
}
