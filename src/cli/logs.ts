/**
 * `berth logs`: the container's CRI log file (`<RFC 3339 time> <stdout|stderr> <P|F> <text>`),
 * rotated files first (`NAME.log.*`, gzip too), stderr lines to stderr, --tail, --since,
 * --timestamps, and -f following the file across rotations until the container exits.
 */

import { type FileHandle, open, readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { ContainerState } from "../api/gen/runtime/v1/api.js";
import type { Command, CommandContext } from "./context.js";
import { str } from "./context.js";
import { UsageError } from "./errors.js";
import { resolveContainer } from "./resolve.js";

export interface LogLine {
  time: string;
  stream: "stdout" | "stderr";
  /** The line's text; ends with "\n" unless the log ended inside a partial line. */
  text: string;
}

/** Decodes CRI log text incrementally: partial (P) records are joined until their F record. */
export class CriLogDecoder {
  private rest = "";
  private partial = new Map<string, LogLine>();

  /** Feeds more bytes of the file; returns the lines completed by them. */
  push(chunk: string): LogLine[] {
    const text = this.rest + chunk;
    const lines = text.split("\n");
    this.rest = lines.pop() ?? "";
    const out: LogLine[] = [];
    for (const line of lines) {
      const m = /^(\S+) (stdout|stderr) (P|F) (.*)$/s.exec(line); // s: content may hold \r (tty output)
      if (!m) continue;
      const stream = m[2] as "stdout" | "stderr";
      const prev = this.partial.get(stream);
      const joined = { time: prev?.time ?? m[1]!, stream, text: (prev?.text ?? "") + m[4] };
      if (m[3] === "P") this.partial.set(stream, joined);
      else {
        this.partial.delete(stream);
        out.push({ ...joined, text: `${joined.text}\n` });
      }
    }
    return out;
  }

  /** What is left at the end of a file (a line cut by rotation or still being written). */
  flush(): LogLine[] {
    const out = [...this.partial.values()];
    this.partial.clear();
    return out;
  }
}

/** Decodes a whole CRI log text (as the old `decodeCriLog`, stdout and stderr together). */
export function decodeCriLog(text: string): string {
  const d = new CriLogDecoder();
  return [...d.push(text.endsWith("\n") ? text : `${text}\n`), ...d.flush()].map((l) => l.text).join("");
}

/** --since: a duration ("90s", "5m", "1h30m") before now, or an RFC 3339 time; as epoch ms. */
export function parseSince(s: string, now = Date.now()): number {
  const dur = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(s);
  if (dur && s !== "") {
    const [, h, m, sec] = dur;
    return now - ((Number(h ?? 0) * 60 + Number(m ?? 0)) * 60 + Number(sec ?? 0)) * 1000;
  }
  const t = Date.parse(s);
  if (Number.isNaN(t))
    throw new UsageError(`invalid --since "${s}": want a duration (10s, 5m, 1h) or an RFC 3339 time`);
  return t;
}

/** The rotated files of `path` (NAME.log.<suffix>), oldest first. */
async function rotated(path: string): Promise<string[]> {
  const dir = dirname(path);
  const base = `${basename(path)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(base) && !n.endsWith(".tmp"))
    .sort()
    .map((n) => join(dir, n));
}

async function readLog(path: string): Promise<string> {
  const buf = await readFile(path);
  return path.endsWith(".gz") ? gunzipSync(buf).toString("utf8") : buf.toString("utf8");
}

interface Printer {
  print(lines: LogLine[]): void;
}

function printer(ctx: CommandContext, sinceMs: number | undefined): Printer {
  const stamps = ctx.flags["timestamps"] === true;
  return {
    print(lines) {
      let out = "";
      let err = "";
      for (const l of lines) {
        if (sinceMs !== undefined && Date.parse(l.time) < sinceMs) continue;
        const text = stamps ? `${l.time} ${l.text}` : l.text;
        if (l.stream === "stderr") {
          if (out) process.stdout.write(out);
          out = "";
          err += text;
        } else {
          if (err) process.stderr.write(err);
          err = "";
          out += text;
        }
      }
      if (out) process.stdout.write(out);
      if (err) process.stderr.write(err);
    },
  };
}

/** Follows `path` from `offset` across rotations until `done()` says the container ended. */
async function follow(path: string, offset: number, p: Printer, done: () => Promise<boolean>): Promise<void> {
  const decoder = new CriLogDecoder();
  let fh: FileHandle | undefined;
  let ino = -1;
  let pos = offset;
  const buf = Buffer.alloc(64 * 1024);
  const drain = async () => {
    if (!fh) return;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      p.print(decoder.push(buf.toString("utf8", 0, bytesRead)));
    }
  };
  const reopen = async () => {
    const st = await stat(path).catch(() => undefined);
    if (!st) return; // between a rename and the reopen
    if (st.ino !== ino) {
      await drain(); // the rest of the rotated file
      await fh?.close();
      const first = ino === -1;
      fh = await open(path, "r");
      ino = (await fh.stat()).ino;
      if (!first) pos = 0;
    } else if (st.size < pos) pos = 0; // truncated
  };
  let lastCheck = 0;
  let ended = false;
  try {
    for (;;) {
      await reopen();
      await drain();
      if (ended) break;
      if (Date.now() - lastCheck > 300) {
        lastCheck = Date.now();
        // one more pass after the container ended: what it wrote last, possibly after a reopen
        ended = await done();
        continue;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    p.print(decoder.flush());
  } finally {
    await fh?.close();
  }
}

/** Prints (and with `follow`, follows) a container's log; used by `logs` and `run`. */
export async function showLog(
  ctx: CommandContext,
  containerId: string,
  o: { follow: boolean; tail?: number | undefined; sinceMs?: number | undefined },
): Promise<void> {
  const status = async () =>
    (
      await ctx.client.call("containerStatus", {
        containerId,
      })
    ).status;
  const st = await status();
  const path = st?.logPath ?? "";
  if (!path) throw new UsageError(`container ${containerId.slice(0, 13)} has no log path`);
  const p = printer(ctx, o.sinceMs);
  // What is there now: rotated files, then the current one up to its present size.
  const decoder = new CriLogDecoder();
  let lines: LogLine[] = [];
  for (const f of await rotated(path)) {
    const d = new CriLogDecoder();
    lines.push(...d.push(await readLog(f)), ...d.flush());
  }
  let size = 0;
  try {
    const text = await readFile(path);
    // Only whole lines: a following reader picks up the rest.
    const end = o.follow ? text.lastIndexOf(0x0a) + 1 : text.length;
    size = end;
    lines.push(...decoder.push(text.toString("utf8", 0, end)));
    if (!o.follow) lines.push(...decoder.flush());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (o.sinceMs !== undefined) lines = lines.filter((l) => Date.parse(l.time) >= o.sinceMs!);
  if (o.tail !== undefined) lines = o.tail === 0 ? [] : lines.slice(-o.tail);
  p.print(lines);
  if (!o.follow) return;
  await follow(path, size, p, async () => {
    const s = await status().catch(() => undefined);
    return (
      s === undefined ||
      s.state === ContainerState.CONTAINER_EXITED ||
      s.state === ContainerState.CONTAINER_UNKNOWN
    );
  });
}

export const logs: Command = async (ctx) => {
  const ref = ctx.args[0];
  if (!ref) throw new UsageError("missing CONTAINER");
  const tailFlag = str(ctx.flags, "tail");
  const tail =
    tailFlag === undefined || tailFlag === "-1" || tailFlag === "all" ? undefined : Number(tailFlag);
  if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0))
    throw new UsageError(`invalid --tail "${tailFlag}": want a number of lines`);
  const since = str(ctx.flags, "since");
  const c = await resolveContainer(ctx, ref);
  await showLog(ctx, c.id, {
    follow: ctx.flags["follow"] === true,
    tail,
    sinceMs: since === undefined ? undefined : parseSince(since),
  });
};
