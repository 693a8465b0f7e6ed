import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bandwidthFromAnnotations, parseQuantity } from "./bandwidth.js";

describe("pod bandwidth annotations", () => {
  it("parses Kubernetes quantities", () => {
    assert.equal(parseQuantity("1000"), 1000);
    assert.equal(parseQuantity("10M"), 10_000_000);
    assert.equal(parseQuantity("1Gi"), 1024 ** 3);
    assert.equal(parseQuantity("1.5k"), 1500);
    assert.throws(() => parseQuantity("fast"), /not a quantity/);
    assert.throws(() => parseQuantity("-1M"), /not a quantity/);
  });

  it("maps the ingress/egress annotations to CNI bandwidth limits", () => {
    assert.equal(bandwidthFromAnnotations({ other: "x" }), undefined);
    const bw = bandwidthFromAnnotations({
      "kubernetes.io/ingress-bandwidth": "10M",
      "kubernetes.io/egress-bandwidth": "1M",
    });
    assert.equal(bw?.ingressRate, 10_000_000);
    assert.equal(bw?.egressRate, 1_000_000);
    assert.ok((bw?.ingressBurst ?? 0) > 0);
  });
});
