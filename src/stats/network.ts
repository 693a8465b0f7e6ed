/**
 * Interface counters of a pod's network namespace. `/proc/<pid>/net/dev` shows the network
 * namespace of that process, so any process inside the pod (a container's init pid) will do;
 * with no such process, the pinned netns can be read through `nsenter --net=<path>`.
 *
 * As containerd's CRI plugin: loopback is left out, the default interface is eth0 (else the
 * first interface).
 */
import type { NetworkInterfaceUsage, NetworkUsage } from "../api/gen/runtime/v1/api.js";
import { run } from "../common/process.js";
import { readOptional } from "./cgroups.js";

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxErrors: bigint;
  txBytes: bigint;
  txErrors: bigint;
}

export const DEFAULT_INTERFACE = "eth0";

/**
 * Parses `/proc/net/dev`: two header lines, then `name: rx×8 tx×8` where rx is bytes packets
 * errs drop fifo frame compressed multicast and tx is bytes packets errs drop fifo colls carrier
 * compressed. Large counters can touch the colon (`eth0:123…`).
 */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === "" || name.includes("|")) continue; // header lines
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    if (f.length < 16 || !f.every((v) => /^\d+$/.test(v))) continue;
    const n = (i: number) => BigInt(f[i] ?? "0");
    out.push({ name, rxBytes: n(0), rxErrors: n(2), txBytes: n(8), txErrors: n(10) });
  }
  return out;
}

/** Interfaces of the netns of `pid`; undefined when the process is gone (or pid ≤ 0). */
export async function readNetDevOfPid(pid: number): Promise<InterfaceCounters[] | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const text = await readOptional(`/proc/${pid}/net/dev`);
  return text === undefined ? undefined : parseNetDev(text);
}

/**
 * Interfaces of a pinned netns (a pod without a running container): `cat /proc/self/net/dev`
 * run inside it by nsenter. Undefined when that fails (netns gone, no nsenter).
 */
export async function readNetDevOfNetns(
  nsPath: string,
  timeoutMs = 5000,
): Promise<InterfaceCounters[] | undefined> {
  try {
    const r = await run("nsenter", [`--net=${nsPath}`, "--", "cat", "/proc/self/net/dev"], {
      timeoutMs,
    });
    return r.exitCode === 0 ? parseNetDev(r.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** The netns counters seen by the first of `pids` still alive, else via `netnsPath`. */
export async function readPodNetDev(
  pids: readonly number[],
  netnsPath?: string,
): Promise<InterfaceCounters[] | undefined> {
  for (const pid of pids) {
    const r = await readNetDevOfPid(pid);
    if (r !== undefined) return r;
  }
  return netnsPath === undefined ? undefined : readNetDevOfNetns(netnsPath);
}

function toUsage(c: InterfaceCounters): NetworkInterfaceUsage {
  return {
    name: c.name,
    rxBytes: { value: c.rxBytes },
    rxErrors: { value: c.rxErrors },
    txBytes: { value: c.txBytes },
    txErrors: { value: c.txErrors },
  };
}

/** CRI NetworkUsage: every interface but lo; default eth0, else the first. */
export function networkUsage(ifaces: readonly InterfaceCounters[], timestampNs: bigint): NetworkUsage {
  const interfaces = ifaces.filter((i) => i.name !== "lo").map(toUsage);
  const defaultInterface = interfaces.find((i) => i.name === DEFAULT_INTERFACE) ?? interfaces[0];
  const out: NetworkUsage = { timestamp: timestampNs, interfaces };
  if (defaultInterface !== undefined) out.defaultInterface = defaultInterface;
  return out;
}
