/**
 * What Berth keeps of a pod or container lives in its Docker labels (nothing beside them), so
 * that a restarted berthd rebuilds every answer from the engine alone.
 */
import { ContainerConfig, PodSandboxConfig } from "../../api/gen/runtime/v1/api.js";
import { internal } from "../../common/errors.js";

export const L = {
  kind: "io.berth.kind",
  sandboxId: "io.berth.sandbox-id",
  config: "io.berth.config",
  createdNs: "io.berth.created-ns",
  logPath: "io.berth.log-path",
  image: "io.berth.image",
  runtimeHandler: "io.berth.runtime-handler",
} as const;

export type Kind = "sandbox" | "container";

export function encodePodConfig(c: PodSandboxConfig): string {
  return Buffer.from(PodSandboxConfig.encode(c).finish()).toString("base64");
}

export function encodeContainerConfig(c: ContainerConfig): string {
  return Buffer.from(ContainerConfig.encode(c).finish()).toString("base64");
}

function label(labels: Record<string, string> | null | undefined, key: string, id: string): string {
  const v = labels?.[key];
  if (v === undefined) throw internal(`docker container ${id} has no ${key} label: not made by Berth`);
  return v;
}

export function podConfigOf(labels: Record<string, string> | null | undefined, id: string): PodSandboxConfig {
  return PodSandboxConfig.decode(Buffer.from(label(labels, L.config, id), "base64"));
}

export function containerConfigOf(
  labels: Record<string, string> | null | undefined,
  id: string,
): ContainerConfig {
  return ContainerConfig.decode(Buffer.from(label(labels, L.config, id), "base64"));
}

export function createdNsOf(labels: Record<string, string> | null | undefined): bigint {
  return BigInt(labels?.[L.createdNs] ?? "0");
}

/** Docker's RFC 3339 times ("0001-01-01T00:00:00Z" = never) as nanoseconds since the epoch. */
export function dockerTimeNs(t: string | undefined): bigint {
  if (!t || t.startsWith("0001-")) return 0n;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return 0n;
  const secs = BigInt(Math.floor(Date.parse(`${m[1]}${m[3]}`) / 1000));
  const frac = BigInt((m[2] ?? "").padEnd(9, "0").slice(0, 9) || "0");
  return secs * 1_000_000_000n + frac;
}

/** Docker's `filters` query parameter for Berth's objects of one kind. */
export function kindFilter(kind: Kind, extra: string[] = []): string {
  return JSON.stringify({ label: [`${L.kind}=${kind}`, ...extra] });
}

/** Docker container names as dockershim made them (k8s_<container>_<pod>_<ns>_<uid>_<attempt>). */
export function dockerName(container: string, pod: PodSandboxConfig["metadata"], attempt: number): string {
  const clean = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, "-");
  return `k8s_${clean(container)}_${clean(pod?.name ?? "")}_${clean(pod?.namespace ?? "")}_${clean(pod?.uid ?? "")}_${attempt}`;
}
