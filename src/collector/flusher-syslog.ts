/**
 * RFC 5424 syslog over TCP with octet counting (RFC 6587 §3.4.1): `<len> <PRI>1 TIMESTAMP
 * HOST APP - MSGID [berth@32473 …] MSG`, so a message may hold newlines. One connection,
 * reopened after an error; a batch is taken when the kernel has taken its bytes (plain TCP
 * syslog has no acknowledgement: a receiver that dies with unread bytes loses them).
 */
import { connect, type Socket } from "node:net";
import { hostname } from "node:os";
import type { Schema } from "./config.js";
import { type Flusher, type Params, str } from "./flushers.js";
import { formatRfc3339Ns, type LogRecord } from "./record.js";

export const SYSLOG_SCHEMA: Schema = {
  Address: { type: "string", required: true },
  Hostname: { type: "string" },
  AppName: { type: "string" },
  Facility: { type: "int" },
  Severity: { type: "int" },
};

const SD_ID = "berth@32473";
const TAG_PARAMS: Array<[string, string]> = [
  ["_namespace_", "namespace"],
  ["_pod_name_", "pod"],
  ["_pod_uid_", "pod_uid"],
  ["_container_name_", "container"],
  ["_container_id_", "container_id"],
  ["_image_name_", "image"],
];

const sdEscape = (v: string) => v.replace(/["\\\]]/g, "\\$&");
const header = (v: string, max: number) => {
  const s = v.replace(/[^\x21-\x7e]/g, "_").slice(0, max);
  return s === "" ? "-" : s;
};

/** One RFC 5424 message (without its octet count). */
export function formatSyslog(
  r: LogRecord,
  opts: { host: string; app: string; facility: number; severity?: number },
): string {
  const sev = opts.severity ?? (r.source === "stderr" ? 3 : 6);
  const ts = formatRfc3339Ns(r.timeNs).replace(/(\.\d{6})\d{3}Z$/, "$1Z");
  const app = opts.app || r.tags["_container_name_"] || "berth-collector";
  const sd = TAG_PARAMS.filter(([t]) => r.tags[t]).map(([t, n]) => ` ${n}="${sdEscape(r.tags[t]!)}"`);
  const { content, ...rest } = r.fields;
  const extra = Object.entries(rest).map(
    ([k, v]) => ` ${header(k, 32).replace(/[="]/g, "_")}="${sdEscape(v)}"`,
  );
  const data = sd.length + extra.length > 0 ? `[${SD_ID}${sd.join("")}${extra.join("")}]` : "-";
  return `<${opts.facility * 8 + sev}>1 ${ts} ${header(opts.host, 255)} ${header(app, 48)} - ${header(r.source || "-", 32)} ${data} ${content ?? ""}`;
}

export class SyslogFlusher implements Flusher {
  private sock: Socket | undefined;
  private readonly host: string;
  private readonly port: number;

  constructor(private readonly p: Params) {
    const addr = str(p, "Address").replace(/^tcp:\/\//, "");
    const m = /^(.*):(\d+)$/.exec(addr);
    if (!m)
      throw new Error(`Address: want host:port or tcp://host:port, got ${JSON.stringify(str(p, "Address"))}`);
    this.host = m[1]!.replace(/^\[|\]$/g, "");
    this.port = Number(m[2]);
  }

  private connect(): Promise<Socket> {
    if (this.sock && !this.sock.destroyed) return Promise.resolve(this.sock);
    return new Promise((resolve, reject) => {
      const s = connect({ host: this.host, port: this.port });
      s.setNoDelay(true);
      s.once("connect", () => {
        this.sock = s;
        s.on("error", () => s.destroy());
        s.on("close", () => {
          if (this.sock === s) this.sock = undefined;
        });
        s.on("data", () => {});
        resolve(s);
      });
      s.once("error", (err) => {
        s.destroy();
        reject(err);
      });
    });
  }

  async send(records: LogRecord[]): Promise<undefined> {
    const opts = {
      host: str(this.p, "Hostname", hostname()),
      app: str(this.p, "AppName"),
      facility: typeof this.p["Facility"] === "number" ? (this.p["Facility"] as number) : 1,
      severity: typeof this.p["Severity"] === "number" ? (this.p["Severity"] as number) : undefined,
    };
    const frames = records.map((r) => {
      const msg = Buffer.from(formatSyslog(r, opts), "utf8");
      return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
    });
    const sock = await this.connect();
    await new Promise<void>((resolve, reject) => {
      sock.write(Buffer.concat(frames), (err) => {
        if (err) {
          sock.destroy();
          reject(err);
        } else resolve();
      });
    });
  }

  async close(): Promise<void> {
    const s = this.sock;
    this.sock = undefined;
    if (s) await new Promise<void>((resolve) => s.end(() => resolve()));
  }
}
