/**
 * Flushers: where records go. `send` resolves once the sink has taken the batch (the HTTP
 * answer is 2xx, the file write returned, the TCP write was handed to the kernel) and rejects
 * otherwise; it may resolve with the records still to send (a partial success, e.g. bulk
 * items refused), which are retried alone. Checkpoints move only after a batch is taken.
 */
import { type FileHandle, open } from "node:fs/promises";
import { request } from "undici";
import type { Schema } from "./config.js";
import { ndjsonBuffer } from "./ndjson.js";
import type { LogRecord } from "./record.js";

export interface Flusher {
  /**
   * Resolves when taken; with a non-empty list, those records must be sent again. `signal`
   * aborts a send in flight (the pipeline stopping past its grace period).
   */
  send(records: LogRecord[], signal?: AbortSignal): Promise<LogRecord[] | undefined>;
  /** Sends records serialised as NDJSON (ndjsonBuffer's bytes), for flushers that send that. */
  sendNdjson?(ndjson: Buffer, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export type Params = Record<string, unknown>;
export const str = (p: Params, k: string, d = "") => (typeof p[k] === "string" ? (p[k] as string) : d);
export const map = (p: Params, k: string) => (p[k] as Record<string, string> | undefined) ?? {};

export const STDOUT_SCHEMA: Schema = { FileName: { type: "string" }, OnlyStdout: { type: "bool" } };
export const HTTP_SCHEMA: Schema = {
  RemoteURL: { type: "string", required: true },
  Headers: { type: "map" },
  Query: { type: "map" },
  Timeout: { type: "string" },
};

/** One JSON object per line, to a file (appended) or to our stdout. */
export class StdoutFlusher implements Flusher {
  private fh: Promise<FileHandle> | undefined;

  constructor(private readonly p: Params) {}

  async send(records: LogRecord[]): Promise<undefined> {
    await this.sendNdjson(ndjsonBuffer(records));
  }

  async sendNdjson(text: Buffer): Promise<void> {
    const file = str(this.p, "FileName");
    if (!file) {
      await new Promise<void>((resolve, reject) =>
        process.stdout.write(text, (e) => (e ? reject(e) : resolve())),
      );
      return;
    }
    this.fh ??= open(file, "a");
    const fh = await this.fh;
    for (let at = 0; at < text.length; ) at += (await fh.write(text, at)).bytesWritten;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await (await fh).close();
  }
}

/** "5s", "500ms", "1m" → ms. */
export function durationMs(text: string, dflt: number): number {
  if (!text) return dflt;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!m) throw new Error(`Timeout: want a duration like 5s or 500ms, got ${JSON.stringify(text)}`);
  return Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000);
}

/** POSTs `body`; a non-2xx answer rejects with its status and the start of its body. */
export async function post(
  url: string,
  body: string | Buffer,
  headers: Record<string, string>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string> {
  const res = await request(url, {
    method: "POST",
    body,
    headers,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal,
  });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode > 299) {
    throw new Error(`POST ${url}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  }
  return text;
}

/** NDJSON POST (iLogtail flusher_http with the custom JSON protocol). */
export class HttpFlusher implements Flusher {
  private readonly url: string;
  private readonly timeoutMs: number;

  constructor(private readonly p: Params) {
    const u = new URL(str(p, "RemoteURL"));
    for (const [k, v] of Object.entries(map(p, "Query"))) u.searchParams.append(k, v);
    this.url = u.toString();
    this.timeoutMs = durationMs(str(p, "Timeout"), 30_000);
  }

  async send(records: LogRecord[], signal?: AbortSignal): Promise<undefined> {
    await this.sendNdjson(ndjsonBuffer(records), signal);
  }

  async sendNdjson(ndjson: Buffer, signal?: AbortSignal): Promise<void> {
    await post(
      this.url,
      ndjson,
      { "content-type": "application/x-ndjson", ...map(this.p, "Headers") },
      this.timeoutMs,
      signal,
    );
  }

  async close(): Promise<void> {}
}
