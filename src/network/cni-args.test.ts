import assert from "node:assert/strict";
import { test } from "node:test";
import { isBerthError } from "../common/errors.js";
import { pluginStdin } from "./cni.js";
import { buildCapabilityArgs, buildCniArgs, parseCniArgs, runtimeConfigFor } from "./cni-args.js";

const pod = { podId: "abc123", name: "web-0", namespace: "default", uid: "u-1" };

test("CNI_ARGS carries the Kubernetes pod identity with IgnoreUnknown first", () => {
  const s = buildCniArgs(pod);
  assert.equal(
    s,
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1",
  );
  assert.deepEqual(parseCniArgs(s), {
    IgnoreUnknown: "1",
    K8S_POD_NAMESPACE: "default",
    K8S_POD_NAME: "web-0",
    K8S_POD_INFRA_CONTAINER_ID: "abc123",
    K8S_POD_UID: "u-1",
  });
});

test("CNI_ARGS rejects values that would break the key=value;… syntax", () => {
  for (const name of ["a;b", "a=b", "a\nb"]) {
    assert.throws(
      () => buildCniArgs({ ...pod, name }),
      (e) => isBerthError(e, "InvalidArgument"),
    );
  }
  assert.throws(
    () => parseCniArgs("novalue"),
    (e) => isBerthError(e, "InvalidArgument"),
  );
});

test("capability args: port mappings normalised, hostPort 0 dropped, bandwidth only when set", () => {
  const caps = buildCapabilityArgs({
    portMappings: [
      { hostPort: 8080, containerPort: 80, protocol: "TCP" },
      { hostPort: 0, containerPort: 81 },
      { hostPort: 5353, containerPort: 53, protocol: "UDP", hostIP: "127.0.0.1" },
      { hostPort: 9000, containerPort: 9000, hostIP: "" },
    ],
    bandwidth: { ingressRate: 1_000_000, egressBurst: 2048 },
  });
  assert.deepEqual(caps, {
    portMappings: [
      { hostPort: 8080, containerPort: 80, protocol: "tcp" },
      { hostPort: 5353, containerPort: 53, protocol: "udp", hostIP: "127.0.0.1" },
      { hostPort: 9000, containerPort: 9000, protocol: "tcp" },
    ],
    bandwidth: { ingressRate: 1_000_000, egressBurst: 2048 },
  });
  assert.deepEqual(
    buildCapabilityArgs({ portMappings: [{ hostPort: 0, containerPort: 1 }], bandwidth: {} }),
    {},
  );
  assert.throws(
    () => buildCapabilityArgs({ portMappings: [{ hostPort: 1, containerPort: 70000 }] }),
    (e) => isBerthError(e, "InvalidArgument"),
  );
  assert.throws(
    () => buildCapabilityArgs({ portMappings: [{ hostPort: 1, containerPort: 1, protocol: "icmp" }] }),
    /unsupported protocol/,
  );
  assert.throws(() => buildCapabilityArgs({ bandwidth: { ingressRate: -1 } }), /invalid ingressRate/);
});

test("runtimeConfig holds only the capabilities a plugin declares true", () => {
  const caps = {
    portMappings: [{ hostPort: 1, containerPort: 2, protocol: "tcp" }],
    bandwidth: { ingressRate: 5 },
  };
  assert.equal(runtimeConfigFor({ type: "bridge" }, caps), undefined);
  assert.deepEqual(runtimeConfigFor({ type: "portmap", capabilities: { portMappings: true } }, caps), {
    portMappings: caps.portMappings,
  });
  assert.equal(runtimeConfigFor({ type: "portmap", capabilities: { portMappings: false } }, caps), undefined);
  assert.equal(runtimeConfigFor({ type: "bandwidth", capabilities: { bandwidth: true } }, {}), undefined);
});

test("plugin stdin: plugin conf + list name/cniVersion + runtimeConfig + prevResult", () => {
  const net = { name: "n1", cniVersion: "1.0.0" };
  const plugin = {
    type: "portmap",
    capabilities: { portMappings: true },
    snat: true,
    prevResult: { stale: 1 },
  };
  const prev = { cniVersion: "1.0.0", ips: [] };
  const caps = { portMappings: [{ hostPort: 1, containerPort: 2, protocol: "tcp" }] };
  assert.deepEqual(pluginStdin(net, plugin, caps, prev), {
    type: "portmap",
    capabilities: { portMappings: true },
    snat: true,
    name: "n1",
    cniVersion: "1.0.0",
    runtimeConfig: { portMappings: caps.portMappings },
    prevResult: prev,
  });
  const first = pluginStdin(net, { type: "bridge", cniVersion: "0.3.1", name: "other" }, caps, undefined);
  assert.deepEqual(first, { type: "bridge", cniVersion: "1.0.0", name: "n1" });
  assert.equal("prevResult" in pluginStdin(net, plugin, caps, undefined), false);
});
