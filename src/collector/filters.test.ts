import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ContainerInfo } from "./container-info.js";
import { ContainerFilter } from "./filters.js";

const c = (over: Partial<ContainerInfo>): ContainerInfo => ({
  id: "c1",
  name: "app",
  podName: "web-1",
  namespace: "prod",
  podUid: "u1",
  podSandboxId: "p1",
  image: "busybox",
  labels: {},
  k8sLabels: {},
  env: {},
  logPath: "/x.log",
  state: "running",
  rootfs: "",
  mounts: [],
  ...over,
});

describe("ContainerFilter", () => {
  it("selects everything without rules", () => {
    assert.ok(new ContainerFilter().matches(c({})));
  });

  it("name regexes must all match", () => {
    const f = new ContainerFilter({
      K8sNamespaceRegex: "^prod$",
      K8sPodRegex: "^web-",
      K8sContainerRegex: "app",
    });
    assert.ok(f.matches(c({})));
    assert.ok(!f.matches(c({ namespace: "dev" })));
    assert.ok(!f.matches(c({ podName: "db-1" })));
  });

  it("include maps: exact values, ^…$ regexes, empty = any value; OR within a map", () => {
    const f = new ContainerFilter({ IncludeK8sLabel: { app: "web", tier: "^front.*$", canary: "" } });
    assert.ok(f.matches(c({ k8sLabels: { app: "web" } })));
    assert.ok(f.matches(c({ k8sLabels: { tier: "frontend" } })));
    assert.ok(f.matches(c({ k8sLabels: { canary: "whatever" } })));
    assert.ok(!f.matches(c({ k8sLabels: { app: "webx", tier: "back" } })));
    assert.ok(!f.matches(c({})));
  });

  it("kinds are ANDed and an exclude wins over an include", () => {
    const f = new ContainerFilter({
      IncludeEnv: { COLLECT: "yes" },
      IncludeContainerLabel: { team: "^(a|b)$" },
      ExcludeEnv: { SECRET: "" },
    });
    assert.ok(f.matches(c({ env: { COLLECT: "yes" }, labels: { team: "a" } })));
    assert.ok(!f.matches(c({ env: { COLLECT: "yes" }, labels: { team: "c" } })));
    assert.ok(!f.matches(c({ env: { COLLECT: "yes", SECRET: "1" }, labels: { team: "a" } })));
    const ex = new ContainerFilter({ ExcludeK8sLabel: { app: "^no.*$" }, ExcludeContainerLabel: { x: "1" } });
    assert.ok(!ex.matches(c({ k8sLabels: { app: "noisy" } })));
    assert.ok(!ex.matches(c({ labels: { x: "1" } })));
    assert.ok(ex.matches(c({ k8sLabels: { app: "quiet" } })));
  });

  it("a bad regex names its key; Go's (?P<name>) groups are accepted", () => {
    assert.throws(() => new ContainerFilter({ K8sPodRegex: "(" }), /K8sPodRegex: bad regex/);
    assert.throws(() => new ContainerFilter({ IncludeEnv: { A: "^(x$" } }), /IncludeEnv\.A: bad regex/);
    assert.ok(new ContainerFilter({ K8sPodRegex: "^(?P<n>web)-1$" }).matches(c({})));
  });
});
