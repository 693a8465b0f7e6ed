/**
 * `run -it` without losing what the container printed before the attach connected. The CRI
 * cannot attach to a container that has not started (containerd, CRI-O and berthd all refuse),
 * so `run` starts it, then attaches, and splices the container's log in front of the attached
 * stream: the log holds every byte from the start (the runtime writes a chunk to the log before
 * it sends it to attached clients), the attached stream a suffix of the same bytes.
 *
 * Where the attached stream starts is found by content: the last position in the log from which
 * the log and what was received so far agree. The runtime logs a chunk before it sends it on
 * (containerd: 0.4–10 ms before the CLI has it), and the log is read after the received bytes
 * came, so only a position with all of them after it, whose entry was logged before the first
 * of them arrived, will do: that rules out a later repetition of the same output. Repetitions
 * logged within the same millisecond, or a runtime that logs after sending, can still make the
 * splice land one repetition off (then the latest agreeing position is taken).
 *
 * A terminal's output is compared without the \r of its \r\n: containerd logs lines with Go's
 * ReadLine, which drops it (the attached stream has it); what is shown from the log gets it back.
 */
import { readFile } from "node:fs/promises";
import { Writable } from "node:stream";
import { CriLogDecoder } from "./logs.js";

export type StreamName = "stdout" | "stderr";

/**
 * Where `attached` (the bytes received so far) starts in `log`: the largest s < log.length from
 * which log[s:] and attached agree on their common length, and that `possible` allows (if none
 * is allowed, the largest agreeing s); undefined when none agrees (the log does not hold them:
 * it is off, or rotated). With nothing received, the whole log is new.
 */
export function attachPoint(
  log: Buffer,
  attached: Buffer,
  possible: (s: number) => boolean = () => true,
): number | undefined {
  if (attached.length === 0) return log.length;
  let latest: number | undefined;
  for (let s = log.length - 1; s >= 0; s--) {
    const n = Math.min(log.length - s, attached.length);
    if (log.compare(attached, 0, n, s, s + n) !== 0) continue;
    if (possible(s)) return s;
    latest ??= s;
  }
  return latest;
}

/** Where each log entry starts in its stream's bytes, and when it was logged (epoch ms). */
export type EntryTimes = { offset: number; ms: number }[];

/** When the entry holding byte `offset` was logged; undefined if unknown. */
export function loggedAt(entries: EntryTimes, offset: number): number | undefined {
  let at: number | undefined;
  for (const e of entries) {
    if (e.offset > offset) break;
    at = e.ms;
  }
  return at;
}

/**
 * A terminal's output for comparing with a log that may have lost the \r of each \r\n: without
 * those \r (and without a last \r whose \n has not arrived yet); `raw[i]` is where byte i of
 * `text` is in `b` (`raw[text.length]` is `b.length`).
 */
export function withoutCrOfCrlf(b: Buffer): { text: Buffer; raw: number[] } {
  const out: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0d && (i + 1 === b.length || b[i + 1] === 0x0a)) continue;
    out.push(b[i]!);
    raw.push(i);
  }
  raw.push(b.length);
  return { text: Buffer.from(out), raw };
}

/** Log text shown on a terminal: every \n that lost its \r gets it back. */
export function ttyNewlines(b: Buffer): Buffer {
  return Buffer.from(b.toString("latin1").replace(/(?<!\r)\n/g, "\r\n"), "latin1");
}

/** A container's output from its CRI log, per stream, and when each entry was logged. */
export type LogStreams = Record<StreamName, Buffer> & { entries?: Record<StreamName, EntryTimes> };

/** The container's output so far from its CRI log, per stream, byte for byte. */
export async function readLogStreams(path: string): Promise<LogStreams> {
  const text = await readFile(path, "latin1").catch(() => "");
  const d = new CriLogDecoder();
  const out: Record<StreamName, string> = { stdout: "", stderr: "" };
  const entries: Record<StreamName, EntryTimes> = { stdout: [], stderr: [] };
  for (const l of [...d.push(text), ...d.flush()]) {
    const ms = Date.parse(l.time);
    if (!Number.isNaN(ms)) entries[l.stream].push({ offset: out[l.stream].length, ms });
    out[l.stream] += l.text;
  }
  return {
    stdout: Buffer.from(out.stdout, "latin1"),
    stderr: Buffer.from(out.stderr, "latin1"),
    entries,
  };
}

/** How long to wait for the attached stream's first bytes before showing the log as it is. */
const QUIET_MS = 300;
/** After the first bytes arrive, how long to gather more before aligning (fewer ambiguities). */
const GATHER_MS = 30;

/**
 * Holds an attached session's output until it is aligned with the log, then passes it on.
 * `readLog` reads the log now; `sinks` are where the output goes (the terminal).
 */
export class EarlyOutput {
  private held: Record<StreamName, Buffer[]> = { stdout: [], stderr: [] };
  /** When each stream's first attached bytes arrived (epoch ms). */
  private firstAt: Partial<Record<StreamName, number>> = {};
  /** Bytes of each stream already shown from the log. */
  private shown: Record<StreamName, number> = { stdout: 0, stderr: 0 };
  private aligned = false;
  private abandoned = false;
  private aligning: Promise<void> | undefined;
  private quiet: NodeJS.Timeout;
  /**
   * Per stream, whether the last chunk passed on after the alignment ended in a \r that was
   * counted (its \n may open the next chunk). A \r ending the aligned bytes was not counted.
   */
  private endsInCr: Record<StreamName, boolean> = { stdout: false, stderr: false };
  /**
   * How far what was shown reaches into each stream's log, as compared (a terminal's without
   * the \r of its \r\n): where the rest of the log begins should the session end early.
   */
  readonly reached: Record<StreamName, number>;

  private readonly trimAttachPoint: (b: Buffer) => Buffer;
  private readonly tty: boolean;

  constructor(
    private readonly readLog: () => Promise<LogStreams>,
    private readonly sinks: Record<StreamName, Writable | undefined>,
    o: {
      /** Drops an artefact of the attach itself at its start (a terminal's echo of a NUL). */
      trimAttachPoint?: (b: Buffer) => Buffer;
      /** A terminal session: line ends compared and shown as a terminal's (see above). */
      tty?: boolean;
      /** The object `reached` is kept in (the caller reads it after a failed session). */
      reached?: Record<StreamName, number>;
    } = {},
  ) {
    this.reached = o.reached ?? { stdout: 0, stderr: 0 };
    this.trimAttachPoint = o.trimAttachPoint ?? ((b) => b);
    this.tty = o.tty ?? false;
    this.quiet = setTimeout(() => void this.showQuietLog(), QUIET_MS);
  }

  /**
   * The log as compared (a terminal's without the \r of its \r\n), and when the entry holding
   * each of its bytes was logged.
   */
  private async readComparable(): Promise<
    Record<StreamName, { text: Buffer; loggedAt: (i: number) => number | undefined }>
  > {
    const log = await this.readLog();
    const view = (name: StreamName) => {
      const entries = log.entries?.[name] ?? [];
      if (!this.tty) return { text: log[name], loggedAt: (i: number) => loggedAt(entries, i) };
      const { text, raw } = withoutCrOfCrlf(log[name]);
      return { text, loggedAt: (i: number) => loggedAt(entries, raw[i] ?? i) };
    };
    return { stdout: view("stdout"), stderr: view("stderr") };
  }

  /** Writes comparable log bytes to a sink, as the terminal would have shown them. */
  private showLog(name: StreamName, b: Buffer): void {
    if (b.length) this.sinks[name]?.write(this.tty ? ttyNewlines(b) : b);
  }

  /** The writable for one stream of the attached session. */
  stream(name: StreamName): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (this.aligned) {
          this.reached[name] += this.comparableLength(name, chunk);
          return this.sinks[name]?.write(chunk, () => cb()) ?? cb();
        }
        this.held[name].push(chunk);
        this.firstAt[name] ??= Date.now();
        this.aligning ??= new Promise<void>((r) => setTimeout(r, GATHER_MS)).then(() => this.align());
        cb();
      },
    });
  }

  /** The session ended: whatever it did not deliver, the log has. */
  async end(): Promise<void> {
    clearTimeout(this.quiet);
    if (this.aligning) await this.aligning;
    if (!this.aligned) await this.align();
  }

  /**
   * The session failed: nothing more is shown (no log once the quiet time is up); `reached`
   * then says what was, for the caller to show the rest of the log itself.
   */
  async abandon(): Promise<void> {
    this.abandoned = true;
    clearTimeout(this.quiet);
    await this.aligning;
  }

  /** Nothing arrived yet (a prompt printed before the attach): show the log as it is. */
  private async showQuietLog(): Promise<void> {
    if (this.aligned || this.aligning || this.abandoned) return;
    const log = await this.readComparable();
    if (this.aligned || this.aligning || this.abandoned) return;
    for (const name of ["stdout", "stderr"] as const) {
      this.showLog(name, log[name].text.subarray(this.shown[name]));
      this.shown[name] = log[name].text.length;
      this.reached[name] = this.shown[name];
    }
  }

  private async align(): Promise<void> {
    clearTimeout(this.quiet);
    const log = await this.readComparable();
    for (const name of ["stdout", "stderr"] as const) {
      const attached = Buffer.concat(this.held[name]);
      const comparable = this.tty ? withoutCrOfCrlf(attached) : undefined;
      const shown = this.shown[name];
      const { text, loggedAt } = log[name];
      const firstAt = this.firstAt[name] ?? Number.POSITIVE_INFINITY;
      const received = comparable?.text ?? attached;
      // The log was read after these bytes arrived and the runtime logs before it sends: the
      // attach point has all of them after it, and was logged before the first one came.
      const s = attachPoint(
        text,
        received,
        (p) => text.length - p >= received.length && (loggedAt(p) ?? 0) <= firstAt,
      );
      const sink = this.sinks[name];
      // The attached bytes end at s + their length in the log (after its end, if it lacks them).
      this.reached[name] = Math.max(shown, (s ?? text.length) + received.length);
      if (s === undefined) sink?.write(attached);
      else {
        if (s > shown) this.showLog(name, text.subarray(shown, s));
        const skip = comparable ? comparable.raw[Math.min(shown - s, comparable.text.length)]! : shown - s;
        const rest = s >= shown ? this.trimAttachPoint(attached) : attached.subarray(skip);
        if (rest.length) sink?.write(rest);
      }
      this.held[name] = [];
    }
    this.aligned = true;
  }

  /** A chunk's length as the log holds it: a terminal's \r\n counts one. */
  private comparableLength(name: StreamName, chunk: Buffer): number {
    if (!this.tty) return chunk.length;
    let n = chunk.length;
    if (this.endsInCr[name] && chunk[0] === 0x0a) n--;
    for (let i = chunk.indexOf(0x0d); i >= 0 && i + 1 < chunk.length; i = chunk.indexOf(0x0d, i + 1)) {
      if (chunk[i + 1] === 0x0a) n--;
    }
    this.endsInCr[name] = chunk.at(-1) === 0x0d;
    return n;
  }
}
