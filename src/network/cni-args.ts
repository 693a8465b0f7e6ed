/** CNI_ARGS and runtimeConfig (capability args) building, pure functions. */
import { invalidArgument } from "../common/errors.js";
import type { CniPluginConfig } from "./cni-config.js";

export interface PodIdentity {
  /** Sandbox id: CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID. */
  podId: string;
  name: string;
  namespace: string;
  uid: string;
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  /** "tcp" | "udp" | "sctp", any case (CRI sends TCP/UDP/SCTP); default tcp. */
  protocol?: string;
  hostIP?: string;
}

/** The CRI's port mappings (protocol as the proto enum: 0 TCP, 1 UDP, 2 SCTP) for portmap. */
export function cniPortMappings(
  mappings:
    | ReadonlyArray<{ hostPort: number; containerPort: number; protocol: number; hostIp: string }>
    | undefined,
): PortMapping[] {
  return (mappings ?? []).map((m) => ({
    hostPort: m.hostPort,
    containerPort: m.containerPort,
    protocol: ["tcp", "udp", "sctp"][m.protocol] ?? "tcp",
    hostIP: m.hostIp,
  }));
}

/** Bits per second and bits, as the bandwidth plugin expects. */
export interface BandwidthLimits {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

function argValue(key: string, v: string): string {
  if (/[;=\0\n]/.test(v)) throw invalidArgument(`CNI_ARGS: ${key} contains ';', '=' or a control character`);
  return v;
}

/** `IgnoreUnknown=1;K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;K8S_POD_INFRA_CONTAINER_ID=…;K8S_POD_UID=…` */
export function buildCniArgs(pod: PodIdentity): string {
  return [
    ["IgnoreUnknown", "1"],
    ["K8S_POD_NAMESPACE", pod.namespace],
    ["K8S_POD_NAME", pod.name],
    ["K8S_POD_INFRA_CONTAINER_ID", pod.podId],
    ["K8S_POD_UID", pod.uid],
  ]
    .map(([k, v]) => `${k}=${argValue(k!, v!)}`)
    .join(";");
}

/** Parses CNI_ARGS back into pairs (for tests and fake plugins). */
export function parseCniArgs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(";")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) throw invalidArgument(`CNI_ARGS: malformed pair ${JSON.stringify(part)}`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

const PROTOCOLS = new Set(["tcp", "udp", "sctp"]);

function port(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw invalidArgument(`port mapping: invalid ${what} ${n}`);
  return n;
}

/**
 * Capability args for a pod: `portMappings` (mappings without a hostPort are dropped, as
 * CRI-O/containerd do) and `bandwidth` (only when a limit is set). Keys absent when empty.
 */
export function buildCapabilityArgs(opts: {
  portMappings?: readonly PortMapping[];
  bandwidth?: BandwidthLimits;
}): Record<string, unknown> {
  const caps: Record<string, unknown> = {};
  const pms = (opts.portMappings ?? [])
    .filter((m) => m.hostPort > 0)
    .map((m) => {
      const protocol = (m.protocol ?? "tcp").toLowerCase();
      if (!PROTOCOLS.has(protocol)) throw invalidArgument(`port mapping: unsupported protocol ${m.protocol}`);
      const out: Record<string, unknown> = {
        hostPort: port(m.hostPort, "hostPort"),
        containerPort: port(m.containerPort, "containerPort"),
        protocol,
      };
      if (m.hostIP !== undefined && m.hostIP !== "") out["hostIP"] = m.hostIP;
      return out;
    });
  if (pms.length > 0) caps["portMappings"] = pms;
  const bw = opts.bandwidth;
  if (bw !== undefined) {
    const out: Record<string, number> = {};
    for (const k of ["ingressRate", "ingressBurst", "egressRate", "egressBurst"] as const) {
      const v = bw[k];
      if (v === undefined) continue;
      if (!Number.isSafeInteger(v) || v < 0) throw invalidArgument(`bandwidth: invalid ${k} ${v}`);
      out[k] = v;
    }
    if (Object.keys(out).length > 0) caps["bandwidth"] = out;
  }
  return caps;
}

/**
 * The runtimeConfig for one plugin: only the capabilities it declares `true` (libcni's rule);
 * undefined when nothing applies, so the key is left out of the plugin's stdin.
 */
export function runtimeConfigFor(
  plugin: CniPluginConfig,
  capabilityArgs: Readonly<Record<string, unknown>>,
): Record<string, unknown> | undefined {
  const declared = plugin.capabilities ?? {};
  const rc: Record<string, unknown> = {};
  for (const [cap, value] of Object.entries(capabilityArgs)) {
    if (declared[cap] === true) rc[cap] = value;
  }
  return Object.keys(rc).length > 0 ? rc : undefined;
}
