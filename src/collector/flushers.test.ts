/**
 * Flushers against real receivers: Debian's rsyslogd (started here on a loopback port with its
 * own config, writing what it parsed to a temp file) for syslog, and small HTTP servers that
 * speak just enough of Loki's push API, Elasticsearch's _bulk and OTLP/HTTP for the others.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Rsyslog } from "../test/collector/rsyslog.js";
import { ElasticsearchFlusher, indexName, LokiFlusher, OtlpLogFlusher } from "./flusher-backends.js";
import { formatSyslog, SyslogFlusher } from "./flusher-syslog.js";
import type { LogRecord } from "./record.js";
import { parseRfc3339Ns } from "./record.js";

const TAGS = {
  _container_name_: "app",
  _pod_name_: "web-1",
  _namespace_: "prod",
  _pod_uid_: "uid-1",
  _image_name_: "busybox",
  _container_id_: "c1",
};
const T0 = parseRfc3339Ns("2026-12-06T03:23:46.123456789Z")!;
const rec = (content: string, source = "stdout", i = 0): LogRecord => ({
  timeNs: T0 + BigInt(i),
  source,
  fields: { content },
  tags: { ...TAGS },
});

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("flusher_syslog with rsyslogd", () => {
  const rsyslog = new Rsyslog();
  before(async () => {
    await rsyslog.start();
  });
  after(async () => {
    await rsyslog.stop();
  });
  const received = () => rsyslog.received();

  it("delivers RFC 5424 with octet counting: multi-line and special characters intact, in order", async () => {
    const f = new SyslogFlusher({ Address: `tcp://127.0.0.1:${rsyslog.port}`, Hostname: "node-1" });
    const records = Array.from({ length: 1000 }, (_, i) => rec(`line-${i}`, i % 2 ? "stderr" : "stdout", i));
    records.push(rec('multi\nline "quoted" ] \\ ünïcode', "stdout", 1000));
    await f.send(records.slice(0, 500));
    await f.send(records.slice(500));
    await until("1001 messages", () => received().length >= 1001);
    const lines = received();
    assert.equal(lines.length, 1001);
    lines.slice(0, 1000).forEach((l, i) => {
      const [app, msgid, pri, , sd, msg] = l.split("|");
      assert.deepEqual(
        [app, msgid, pri, msg],
        ["app", i % 2 ? "stderr" : "stdout", i % 2 ? "11" : "14", `line-${i}`],
      );
      assert.match(
        sd!,
        /^\[berth@32473 namespace="prod" pod="web-1" pod_uid="uid-1" container="app" container_id="c1" image="busybox"\]$/,
      );
    });
    assert.equal(lines[1000]!.split("|").slice(5).join("|"), 'multi\\nline \\"quoted\\" ] \\\\ ünïcode');
    assert.match(lines[0]!.split("|")[3]!, /^2026-12-06T03:23:46\.123456/);
    await f.close();
  });

  it("a connected flusher notices rsyslogd going away, fails while it is down, reconnects after", async () => {
    const f = new SyslogFlusher({ Address: `127.0.0.1:${rsyslog.port}` });
    await f.send([rec("before-restart")]);
    await until("the first message", () => received().at(-1)?.includes("before-restart") === true);
    await rsyslog.kill();
    await new Promise((r) => setTimeout(r, 200));
    await assert.rejects(f.send([rec("while-down")]));
    await rsyslog.launch();
    await f.send([rec("after-restart")]);
    await until("the message", () => received().at(-1)?.includes("after-restart") === true);
    await f.close();
  });

  it("formats without tags or fields as '-' structured data", () => {
    const m = formatSyslog(
      { timeNs: T0, source: "", fields: { content: "x" }, tags: {} },
      { host: "h", app: "", facility: 1 },
    );
    assert.equal(m, "<14>1 2026-12-06T03:23:46.123456Z h berth-collector - - - x");
  });
});

describe("HTTP backends", () => {
  let server: Server;
  let base: string;
  const bodies: Array<{ url: string; headers: IncomingMessage["headers"]; body: string }> = [];
  let answer: (url: string, body: string, res: ServerResponse) => void = (_u, _b, res) => res.end("{}");

  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        bodies.push({ url: req.url ?? "", headers: req.headers, body });
        answer(req.url ?? "", body, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
  });

  it("flusher_loki: streams by labels, nanosecond timestamps, tenant header", async () => {
    bodies.length = 0;
    const f = new LokiFlusher({
      URL: `${base}/loki/api/v1/push`,
      TenantID: "t1",
      StaticLabels: { cluster: "c" },
    });
    await f.send([
      rec("a", "stdout", 0),
      rec("b", "stdout", 1),
      { ...rec("c"), tags: { ...TAGS, _pod_name_: "web-2" } },
    ]);
    const b = bodies[0]!;
    assert.equal(b.url, "/loki/api/v1/push");
    assert.equal(b.headers["x-scope-orgid"], "t1");
    const push = JSON.parse(b.body);
    assert.equal(push.streams.length, 2);
    assert.deepEqual(push.streams[0].stream, {
      cluster: "c",
      namespace: "prod",
      pod_name: "web-1",
      container_name: "app",
    });
    assert.deepEqual(push.streams[0].values, [
      [T0.toString(), "a"],
      [(T0 + 1n).toString(), "b"],
    ]);
  });

  it("flusher_elasticsearch: _bulk with dated index; only refused items are sent again", async () => {
    bodies.length = 0;
    answer = (_u, body, res) => {
      const docs = body.split("\n").filter((_, i) => i % 2 === 1 && _ !== "");
      const items = docs.map((d) => ({
        index: { status: JSON.parse(d).content === "b" && bodies.length === 1 ? 429 : 201 },
      }));
      res.end(JSON.stringify({ errors: items.some((i) => i.index.status !== 201), items }));
    };
    const f = new ElasticsearchFlusher({
      Addresses: [base],
      Index: "logs-%{tag._namespace_}-%{+yyyy.MM.dd}",
      Authentication: { PlainText: { Username: "u", Password: "p" } },
    });
    const rest = await f.send([rec("a"), rec("b"), rec("c")]);
    assert.deepEqual(
      rest?.map((r) => r.fields["content"]),
      ["b"],
    );
    assert.equal(await f.send(rest!), undefined);
    const lines = bodies[0]!.body.split("\n");
    assert.deepEqual(JSON.parse(lines[0]!), { index: { _index: "logs-prod-2026.12.06" } });
    assert.equal(JSON.parse(lines[1]!)._time_, "2026-12-06T03:23:46.123456789Z");
    assert.equal(bodies[0]!.headers.authorization, `Basic ${Buffer.from("u:p").toString("base64")}`);
    assert.equal(bodies[0]!.url, "/_bulk");
    assert.equal(indexName("x-%{content.level}", { ...rec(""), fields: { level: "warn" } }), "x-warn");
    answer = (_u, _b, res) => res.end("{}");
  });

  it("flusher_otlp_log: resource per container, body and attributes, /v1/logs", async () => {
    bodies.length = 0;
    const f = new OtlpLogFlusher({ Endpoint: base, Headers: { "x-key": "k" } });
    await f.send([{ ...rec("hello", "stderr"), fields: { content: "hello", level: "e" } }]);
    const b = bodies[0]!;
    assert.equal(b.url, "/v1/logs");
    assert.equal(b.headers["x-key"], "k");
    const doc = JSON.parse(b.body);
    const rl = doc.resourceLogs[0];
    assert.deepEqual(
      rl.resource.attributes.find((a: { key: string }) => a.key === "k8s.pod.name"),
      { key: "k8s.pod.name", value: { stringValue: "web-1" } },
    );
    const lr = rl.scopeLogs[0].logRecords[0];
    assert.equal(lr.timeUnixNano, T0.toString());
    assert.deepEqual(lr.body, { stringValue: "hello" });
    assert.equal(lr.severityText, "ERROR");
    assert.ok(lr.attributes.some((a: { key: string }) => a.key === "level"));
  });

  it("a non-2xx answer rejects (the pipeline retries)", async () => {
    answer = (_u, _b, res) => res.writeHead(500).end("boom");
    await assert.rejects(new LokiFlusher({ URL: `${base}/x` }).send([rec("a")]), /HTTP 500: boom/);
    answer = (_u, _b, res) => res.end("{}");
  });
});
