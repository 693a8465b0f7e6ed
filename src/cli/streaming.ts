/**
 * The CLI's interactive sessions: exec/attach on the caller's terminal (raw mode, resize on
 * SIGWINCH, detach keys) and port-forward from a local listener, over the runtime's streaming URLs.
 */
import { once } from "node:events";
import net from "node:net";
import { Transform, Writable } from "node:stream";
import { execOverSpdy, portForwardOverSpdy } from "../streaming/client.js";
import { EarlyOutput, type LogStreams, type StreamName } from "./early-output.js";
import { stripRuncNoise } from "./errors.js";

export interface InteractiveOptions {
  stdin: boolean;
  tty: boolean;
  /** Key sequence that ends the session without stopping the container (attach, run -it). */
  detachKeys?: Buffer | undefined;
  /** Called with runc's "not found"/"permission denied" errors seen on stderr. */
  onRuncError?: (message: string) => void;
  /** Reads the container's log so far: what it printed before the attach is spliced in front. */
  earlyLog?: (() => Promise<LogStreams>) | undefined;
  /** With earlyLog: kept up to date with how far the shown output reaches into the log. */
  reached?: Record<StreamName, number>;
}

/** The caller's terminal size now and after every resize; nothing when stdout is no terminal. */
async function* terminalSizes(): AsyncGenerator<{ width: number; height: number }> {
  const out = process.stdout;
  if (!out.isTTY) return;
  for (;;) {
    yield { width: out.columns, height: out.rows };
    await once(out, "resize");
  }
}

/**
 * Docker's --detach-keys syntax: comma-separated keys, `ctrl-X` for a control character
 * ("ctrl-p,ctrl-q" is the default).
 */
export function parseDetachKeys(spec: string): Buffer {
  const bytes: number[] = [];
  for (const part of spec.split(",")) {
    const k = part.trim().toLowerCase();
    const ctrl = /^ctrl-([a-z@[\\\]^_])$/.exec(k);
    if (ctrl) bytes.push(ctrl[1]!.toUpperCase().charCodeAt(0) & 0x1f);
    else if (k.length === 1) bytes.push(k.charCodeAt(0));
    else throw new Error(`invalid detach key "${part}": want ctrl-X or a single character`);
  }
  return Buffer.from(bytes);
}

/** Passes stdin on until `keys` is typed; then calls `onDetach` (the keys are not sent). */
export function detachFilter(keys: Buffer, onDetach: () => void): Transform {
  let matched = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const out: number[] = [];
      for (const b of chunk) {
        if (b === keys[matched]) {
          matched++;
          if (matched === keys.length) {
            if (out.length) this.push(Buffer.from(out));
            onDetach();
            return cb();
          }
          continue;
        }
        if (matched) out.push(...keys.subarray(0, matched));
        matched = b === keys[0] ? 1 : 0;
        if (!matched) out.push(b);
      }
      cb(null, Buffer.from(out));
    },
  });
}

/** stderr with runc's `time=… level=error msg=…` lines reduced to their message. */
function cleanStderr(onRuncError?: (m: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString("utf8");
      if (/level=(error|fatal) msg=/.test(text)) {
        const msg = stripRuncNoise(text).trim();
        onRuncError?.(msg);
        process.stderr.write(`berth: ${msg}\n`, () => cb());
      } else process.stderr.write(chunk, () => cb());
    },
  });
}

/** The terminal's echo of a NUL (`^@`) may come first in an attach: not the command's output. */
function trimNulEcho(chunk: Buffer): Buffer {
  return chunk.subarray(/^(?:\^@|\0)*/.exec(chunk.toString("latin1"))?.[0].length ?? 0);
}

/**
 * stdout of a terminal session: runc reports a command it cannot start on the terminal itself
 * (`ERRO[0000] exec failed: …`, coloured); that line becomes one of berth's on stderr.
 */
function cleanTtyStdout(onRuncError?: (m: string) => void): Writable {
  let first = true;
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (first) {
        chunk = trimNulEcho(chunk);
        if (chunk.length === 0) return cb();
        first = false;
        // biome-ignore lint/suspicious/noControlCharactersInRegex: runc's colour codes
        const m = /^(?:\x1b\[\d+m)?ERRO(?:\x1b\[0m)?\[\d+\] (.*?)\s*$/s.exec(chunk.toString("utf8"));
        if (m) {
          onRuncError?.(m[1] ?? "");
          process.stderr.write(`berth: ${m[1]}\n`, () => cb());
          return;
        }
      }
      process.stdout.write(chunk, () => cb());
    },
  });
}

/** Runs an exec/attach URL on this process's stdio; resolves with the exit code, or "detached". */
export async function runInteractive(url: string, o: InteractiveOptions): Promise<number | "detached"> {
  const stdin = process.stdin;
  const raw = o.tty && o.stdin && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const abort = new AbortController();
  let detached = false;
  let input: NodeJS.ReadableStream | undefined;
  if (o.stdin) {
    input = o.detachKeys
      ? stdin.pipe(
          detachFilter(o.detachKeys, () => {
            detached = true;
            abort.abort();
          }),
        )
      : stdin;
  }
  const stdout: Writable = o.tty ? cleanTtyStdout(o.onRuncError) : process.stdout;
  const stderr = o.tty ? undefined : cleanStderr(o.onRuncError);
  const early = o.earlyLog
    ? new EarlyOutput(
        o.earlyLog,
        { stdout, stderr },
        o.tty ? { trimAttachPoint: trimNulEcho, tty: true, reached: o.reached } : { reached: o.reached },
      )
    : undefined;
  try {
    const code = await execOverSpdy(url, {
      ...(input ? { stdin: input as unknown as import("node:stream").Readable } : {}),
      stdout: early?.stream("stdout") ?? stdout,
      signal: abort.signal,
      ...(o.tty
        ? { tty: true, resize: terminalSizes() }
        : { stderr: early?.stream("stderr") ?? (stderr as Writable) }),
    }).catch(async (err: unknown) => {
      if (detached) return 0;
      // The caller shows the rest of the log (from early.reached): the log must not come twice.
      await early?.abandon();
      throw err;
    });
    await early?.end();
    return detached ? "detached" : code;
  } finally {
    if (raw) stdin.setRawMode(false);
    if (o.stdin) stdin.destroy(); // let the process exit
  }
}

/** A parsed `[LOCAL:]REMOTE` port argument. */
export function parsePortPair(s: string): { local: number; remote: number } {
  const m = /^(?:(\d+):)?(\d+)$/.exec(s);
  const valid = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;
  if (m) {
    const remote = Number(m[2]);
    const local = m[1] === undefined ? remote : Number(m[1]);
    if (valid(local) && valid(remote) && remote > 0) return { local, remote };
  }
  throw new Error(`invalid port ${JSON.stringify(s)}: want [LOCAL:]REMOTE`);
}

/**
 * Listens on 127.0.0.1:<local> for each pair and forwards every accepted connection to the
 * pod's <remote> port through a fresh URL from `newUrl` (one session a connection, as each URL
 * is single-use). Resolves with the servers once all listen.
 */
export async function forwardPorts(
  pairs: { local: number; remote: number }[],
  newUrl: (remote: number) => Promise<string>,
  log: (s: string) => void,
): Promise<net.Server[]> {
  const servers: net.Server[] = [];
  for (const { local, remote } of pairs) {
    const server = net.createServer({ allowHalfOpen: true }, (sock) => {
      sock.on("error", () => {});
      void (async () => {
        try {
          const fc = await portForwardOverSpdy(await newUrl(remote), remote);
          fc.stream.on("error", () => sock.destroy());
          sock.pipe(fc.stream);
          fc.stream.pipe(sock);
          void fc.error.then((e) => {
            if (e !== "") {
              log(`port-forward ${remote}: ${e}`);
              sock.destroy();
            }
          });
        } catch (err) {
          log(`port-forward ${remote}: ${(err as Error).message}`);
          sock.destroy();
        }
      })();
    });
    server.listen(local, "127.0.0.1");
    await once(server, "listening");
    const addr = server.address() as net.AddressInfo;
    log(`Forwarding from 127.0.0.1:${addr.port} -> ${remote}`);
    servers.push(server);
  }
  return servers;
}
