/**
 * The per-pod files bind-mounted into every container of the pod: /etc/resolv.conf (from the
 * CRI DNSConfig, else the host's), /etc/hosts and /etc/hostname.
 */
import { readFile } from "node:fs/promises";
import type { DNSConfig } from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import { isIpAddress } from "./validate.js";

export async function resolvConf(
  dns: DNSConfig | undefined,
  hostResolvConf = "/etc/resolv.conf",
): Promise<string> {
  if (!dns || (dns.servers.length === 0 && dns.searches.length === 0 && dns.options.length === 0)) {
    try {
      return await readFile(hostResolvConf, "utf8");
    } catch {
      return "";
    }
  }
  for (const s of dns.servers) {
    if (!isIpAddress(s)) throw invalidArgument(`DNS server "${s}" is not an IP address`);
  }
  const lines: string[] = [];
  if (dns.searches.length) lines.push(`search ${dns.searches.join(" ")}`);
  for (const s of dns.servers) lines.push(`nameserver ${s}`);
  if (dns.options.length) lines.push(`options ${dns.options.join(" ")}`);
  return `${lines.join("\n")}\n`;
}

export function hostsFile(hostname: string, podIps: string[]): string {
  const lines = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "fe00::0\tip6-mcastprefix",
    "fe00::1\tip6-allnodes",
    "fe00::2\tip6-allrouters",
  ];
  for (const ip of podIps) lines.push(`${ip}\t${hostname}`);
  return `${lines.join("\n")}\n`;
}
