/**
 * Pod traffic shaping from kubelet's annotations `kubernetes.io/ingress-bandwidth` and
 * `kubernetes.io/egress-bandwidth` (Kubernetes quantities such as "10M" or "1Gi", in bits per
 * second), passed to the CNI bandwidth plugin, as containerd and CRI-O do.
 */
import { invalidArgument } from "../common/errors.js";
import type { BandwidthLimits } from "../network/cni-args.js";

const SUFFIXES: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
  Pi: 1024 ** 5,
};

/** A Kubernetes quantity ("10M", "1.5Gi", "1000") as a whole number. */
export function parseQuantity(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/.exec(text.trim());
  if (!m) throw invalidArgument(`"${text}" is not a quantity (e.g. 10M, 1Gi)`);
  return Math.round(Number(m[1]) * (SUFFIXES[m[2] ?? ""] ?? 1));
}

/** Burst as the CNI bandwidth plugin's users usually set it: unlimited in practice. */
const BURST = 2 ** 31 - 1;

export function bandwidthFromAnnotations(annotations: Record<string, string>): BandwidthLimits | undefined {
  const ingress = annotations["kubernetes.io/ingress-bandwidth"];
  const egress = annotations["kubernetes.io/egress-bandwidth"];
  if (ingress === undefined && egress === undefined) return undefined;
  const out: BandwidthLimits = {};
  if (ingress !== undefined) {
    out.ingressRate = parseQuantity(ingress);
    out.ingressBurst = BURST;
  }
  if (egress !== undefined) {
    out.egressRate = parseQuantity(egress);
    out.egressBurst = BURST;
  }
  return out;
}
