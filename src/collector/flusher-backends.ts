/**
 * HTTP backends: Grafana Loki's push API (JSON), Elasticsearch's `_bulk` (only the refused
 * items are sent again) and OpenTelemetry's OTLP/HTTP logs (JSON encoding).
 */
import type { Schema } from "./config.js";
import { durationMs, type Flusher, map, type Params, post, str } from "./flushers.js";
import { type LogRecord, recordToJson } from "./record.js";

export const LOKI_SCHEMA: Schema = {
  URL: { type: "string", required: true },
  TenantID: { type: "string" },
  StaticLabels: { type: "map" },
  DynamicLabels: { type: "strings" },
  Timeout: { type: "string" },
};
export const ES_SCHEMA: Schema = {
  Addresses: { type: "strings", required: true },
  Index: { type: "string", required: true },
  Authentication: {
    type: "object",
    schema: {
      PlainText: { type: "object", schema: { Username: { type: "string" }, Password: { type: "string" } } },
    },
  },
  Timeout: { type: "string" },
};
export const OTLP_SCHEMA: Schema = {
  Endpoint: { type: "string", required: true },
  Headers: { type: "map" },
  Timeout: { type: "string" },
};

/** A record's line for text backends: the content alone, or all fields as JSON. */
const line = (r: LogRecord) => {
  const keys = Object.keys(r.fields);
  return keys.length === 1 && keys[0] === "content" ? r.fields["content"]! : JSON.stringify(r.fields);
};

/** Loki label names: [a-zA-Z_][a-zA-Z0-9_]* ("_pod_name_" → "pod_name"). */
const labelName = (t: string) => t.replace(/^_+|_+$/g, "").replace(/[^a-zA-Z0-9_]/g, "_") || "_";

export class LokiFlusher implements Flusher {
  private readonly timeoutMs: number;
  constructor(private readonly p: Params) {
    new URL(str(p, "URL"));
    this.timeoutMs = durationMs(str(p, "Timeout"), 30_000);
  }

  async send(records: LogRecord[], signal?: AbortSignal): Promise<undefined> {
    const dynamic = (this.p["DynamicLabels"] as string[] | undefined) ?? [
      "_namespace_",
      "_pod_name_",
      "_container_name_",
    ];
    const streams = new Map<string, { stream: Record<string, string>; values: Array<[string, string]> }>();
    for (const r of records) {
      const stream: Record<string, string> = { ...map(this.p, "StaticLabels") };
      for (const t of dynamic) {
        const v = t === "_source_" ? r.source : (r.tags[t] ?? r.fields[t]);
        if (v) stream[labelName(t)] = v;
      }
      const key = JSON.stringify(stream);
      let s = streams.get(key);
      if (!s) {
        s = { stream, values: [] };
        streams.set(key, s);
      }
      s.values.push([r.timeNs.toString(), line(r)]);
    }
    const headers: Record<string, string> = { "content-type": "application/json" };
    const tenant = str(this.p, "TenantID");
    if (tenant) headers["x-scope-orgid"] = tenant;
    await post(
      str(this.p, "URL"),
      JSON.stringify({ streams: [...streams.values()] }),
      headers,
      this.timeoutMs,
      signal,
    );
  }

  async close(): Promise<void> {}
}

/** `%{+yyyy.MM.dd}` (the record's date, UTC) and `%{tag._namespace_}` / `%{content.level}`. */
export function indexName(pattern: string, r: LogRecord): string {
  return pattern.replace(/%\{([^}]+)\}/g, (_, expr: string) => {
    if (expr.startsWith("+")) {
      const d = new Date(Number(r.timeNs / 1_000_000n));
      const pad = (n: number) => String(n).padStart(2, "0");
      return expr
        .slice(1)
        .replace("yyyy", String(d.getUTCFullYear()))
        .replace("MM", pad(d.getUTCMonth() + 1))
        .replace("dd", pad(d.getUTCDate()));
    }
    const [kind, name = ""] = expr.split(".", 2) as [string, string?];
    return (kind === "tag" ? r.tags[name] : r.fields[name]) ?? "";
  });
}

export class ElasticsearchFlusher implements Flusher {
  private next = 0;
  private readonly headers: Record<string, string> = { "content-type": "application/x-ndjson" };
  private readonly timeoutMs: number;

  constructor(private readonly p: Params) {
    const addrs = p["Addresses"] as string[];
    if (addrs.length === 0) throw new Error("Addresses: at least one is needed");
    for (const a of addrs) new URL(a);
    const plain = (
      p["Authentication"] as { PlainText?: { Username?: string; Password?: string } } | undefined
    )?.PlainText;
    if (plain) {
      this.headers["authorization"] =
        `Basic ${Buffer.from(`${plain.Username ?? ""}:${plain.Password ?? ""}`).toString("base64")}`;
    }
    this.timeoutMs = durationMs(str(p, "Timeout"), 30_000);
  }

  async send(records: LogRecord[], signal?: AbortSignal): Promise<LogRecord[] | undefined> {
    const addrs = this.p["Addresses"] as string[];
    const base = addrs[this.next++ % addrs.length]!.replace(/\/+$/, "");
    const body = records
      .map(
        (r) =>
          `${JSON.stringify({ index: { _index: indexName(str(this.p, "Index"), r) } })}\n${JSON.stringify(recordToJson(r))}\n`,
      )
      .join("");
    const answer = JSON.parse(await post(`${base}/_bulk`, body, this.headers, this.timeoutMs, signal)) as {
      errors?: boolean;
      items?: Array<Record<string, { status?: number }>>;
    };
    if (!answer.errors) return undefined;
    // Only the refused items again (a 4xx other than 429 would never succeed: dropped is not an
    // option either, so they are retried too and show in the logs).
    return records.filter((_, i) => {
      const item = answer.items?.[i];
      const status = item ? Object.values(item)[0]?.status : undefined;
      return status === undefined || status < 200 || status > 299;
    });
  }

  async close(): Promise<void> {}
}

type AnyValue = { stringValue: string };
const attrs = (o: Record<string, string>) =>
  Object.entries(o).map(([key, v]): { key: string; value: AnyValue } => ({ key, value: { stringValue: v } }));

const RESOURCE_KEYS: Record<string, string> = {
  _namespace_: "k8s.namespace.name",
  _pod_name_: "k8s.pod.name",
  _pod_uid_: "k8s.pod.uid",
  _container_name_: "k8s.container.name",
  _container_id_: "container.id",
  _image_name_: "container.image.name",
};

export class OtlpLogFlusher implements Flusher {
  private readonly url: string;
  private readonly timeoutMs: number;

  constructor(private readonly p: Params) {
    const u = new URL(str(p, "Endpoint"));
    if (u.pathname === "/" || u.pathname === "") u.pathname = "/v1/logs";
    this.url = u.toString();
    this.timeoutMs = durationMs(str(p, "Timeout"), 30_000);
  }

  async send(records: LogRecord[], signal?: AbortSignal): Promise<undefined> {
    const byResource = new Map<string, { resource: Record<string, string>; logs: unknown[] }>();
    const observed = (BigInt(Date.now()) * 1_000_000n).toString();
    for (const r of records) {
      const resource: Record<string, string> = {};
      const attributes: Record<string, string> = { "log.iostream": r.source };
      for (const [t, v] of Object.entries(r.tags)) {
        const k = RESOURCE_KEYS[t];
        if (k) resource[k] = v;
        else attributes[t] = v;
      }
      const { content, ...fields } = r.fields;
      Object.assign(attributes, fields);
      const key = JSON.stringify(resource);
      let g = byResource.get(key);
      if (!g) {
        g = { resource, logs: [] };
        byResource.set(key, g);
      }
      g.logs.push({
        timeUnixNano: r.timeNs.toString(),
        observedTimeUnixNano: observed,
        severityNumber: r.source === "stderr" ? 17 : 9,
        severityText: r.source === "stderr" ? "ERROR" : "INFO",
        body: { stringValue: content ?? "" },
        attributes: attrs(attributes),
      });
    }
    const body = {
      resourceLogs: [...byResource.values()].map((g) => ({
        resource: { attributes: attrs(g.resource) },
        scopeLogs: [{ scope: { name: "berth-collector" }, logRecords: g.logs }],
      })),
    };
    await post(
      this.url,
      JSON.stringify(body),
      { "content-type": "application/json", ...map(this.p, "Headers") },
      this.timeoutMs,
      signal,
    );
  }

  async close(): Promise<void> {}
}
