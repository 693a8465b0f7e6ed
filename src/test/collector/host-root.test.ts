/**
 * berth-collector as a DaemonSet sees the node: in a mount namespace of its own where the host
 * paths the runtime gives (the pod log dir, berthd's root with the containers' writable
 * layers, a hostPath volume) are hidden under empty tmpfs mounts, and the host's `/` is bound
 * at a point of its own (`--host-root`, the manifest's /logtail_host). Container output, a file
 * in the writable layer and one on a bind mount must all arrive, with `__path__` as the
 * container sees it: only paths opened under the host root can be read. The namespace (and
 * every mount in it) goes away with the collector process.
 */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitExited } from "../harness/cri.js";
import { needsRoot } from "../harness/skip.js";
import { SUITE_TIMEOUT_MS } from "../harness/timeouts.js";
import { Collector, Env, numbered, Sink, seq, until } from "./env.js";

// Runs in the new namespace (slave propagation, as the manifest's HostToContainer): the host's
// `/` at $HOST_ROOT, then each of $HIDE (colon-separated) covered by an empty tmpfs.
const NAMESPACE_SCRIPT = `set -e
mount --rbind / "$HOST_ROOT"
IFS=:
for d in $HIDE; do mount -t tmpfs -o size=1m,mode=0755 berth-hidden "$d"; [ -z "$(ls -A "$d")" ]; done
unset IFS
exec "$@"`;

describe("berth-collector with the host root mounted elsewhere", {
  skip: needsRoot("mount namespaces"),
  timeout: SUITE_TIMEOUT_MS,
}, () => {
  const env = new Env();
  let col: Collector | undefined;
  let sink: Sink | undefined;

  before(async () => {
    await env.start();
  });

  after(async () => {
    await col?.kill("SIGKILL");
    await sink?.stop();
    await env.stop();
  });

  it("opens every host path from the runtime under --host-root", async () => {
    sink = new Sink();
    await sink.start();
    const logs = join(env.dir, "logs");
    const data = join(env.dir, "data-mount");
    const hostRoot = join(env.dir, "host-root");
    for (const d of [logs, data, hostRoot]) await mkdir(d, { recursive: true });
    col = new Collector(env, "host-root");
    col.wrapper = ["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c", NAMESPACE_SCRIPT, "sh"];
    col.extraEnv = { HOST_ROOT: hostRoot, HIDE: [logs, data, env.berthd.root].join(":") };
    col.args = ["--host-root", hostRoot];
    await col.writeConfig(
      "p.yaml",
      `inputs:
  - Type: input_container_stdio
    ContainerFilters: { K8sNamespaceRegex: ^hr$ }
  - Type: input_file
    FilePaths: [/logs/*.log, /data/*.log]
    EnableContainerDiscovery: true
    ContainerFilters: { K8sNamespaceRegex: ^hr$ }
flushers:
  - Type: flusher_http
    RemoteURL: ${sink.url}
`,
    );
    await col.start();
    const pod = await env.pod("hr", "hr");
    const c = await env.container(
      pod,
      "w",
      `${numbered(1000)}; mkdir -p /logs; (${numbered(700, "a-")}) > /logs/a.log; (${numbered(500, "b-")}) > /data/b.log; sleep 1000`,
      { mounts: [{ containerPath: "/data", hostPath: data }] },
    );
    const s = sink;
    await until("2200 records", () => s.records.length >= 2200, 60_000, col);
    assert.equal(await col.kill("SIGTERM"), 0, col.output.slice(-4000));
    assert.deepEqual(s.contents(c), seq(1000));
    const by = (p: string) =>
      s.records.filter((r) => r["__path__"] === p && r._container_id_ === c).map((r) => r.content);
    assert.deepEqual(by("/logs/a.log"), seq(700, "a-"));
    assert.deepEqual(by("/data/b.log"), seq(500, "b-"));
    assert.equal(s.records.length, 2200, "nothing else, nothing twice");
    await env.rt.call("stopContainer", { containerId: c, timeout: 0 });
    await waitExited(env.rt, c);
  });
});
