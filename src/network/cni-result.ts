/** Parsing CNI results (0.1.0/0.2.0 `ip4`/`ip6`, 0.3.x/0.4.0/1.x `interfaces` + `ips`). */
import { internal } from "../common/errors.js";

export interface CniInterface {
  name: string;
  mac?: string;
  /** The netns path for interfaces inside the container, absent for host-side ones. */
  sandbox?: string;
}

export interface CniIpConfig {
  /** CIDR, e.g. 10.88.0.5/16 or fd00::5/64. */
  address: string;
  gateway?: string;
  /** Index into interfaces. */
  interface?: number;
}

export interface CniResult {
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIpConfig[];
  /** The result as the plugin returned it: what is cached and passed on as prevResult. */
  raw: Record<string, unknown>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** Validates and normalises a plugin's ADD result; `what` names it in errors. */
export function parseCniResult(value: unknown, what: string): CniResult {
  if (!isObject(value)) throw internal(`${what}: result is not a JSON object`);
  const cniVersion = str(value["cniVersion"]) ?? "";
  const interfaces: CniInterface[] = [];
  const ips: CniIpConfig[] = [];
  const rawIfs = value["interfaces"];
  if (rawIfs !== undefined) {
    if (!Array.isArray(rawIfs)) throw internal(`${what}: result "interfaces" is not an array`);
    for (const i of rawIfs) {
      if (!isObject(i) || str(i["name"]) === undefined)
        throw internal(`${what}: result has an interface without a name`);
      const itf: CniInterface = { name: i["name"] as string };
      const mac = str(i["mac"]);
      if (mac !== undefined) itf.mac = mac;
      const sandbox = str(i["sandbox"]);
      if (sandbox !== undefined) itf.sandbox = sandbox;
      interfaces.push(itf);
    }
  }
  const rawIps = value["ips"];
  if (rawIps !== undefined) {
    if (!Array.isArray(rawIps)) throw internal(`${what}: result "ips" is not an array`);
    for (const ip of rawIps) {
      if (!isObject(ip)) throw internal(`${what}: result "ips" has a non-object entry`);
      const address = str(ip["address"]);
      if (address === undefined || !isCidr(address)) {
        throw internal(`${what}: result has an invalid IP address ${JSON.stringify(ip["address"])}`);
      }
      const cfg: CniIpConfig = { address };
      const gw = str(ip["gateway"]);
      if (gw !== undefined) cfg.gateway = gw;
      const idx = ip["interface"];
      if (typeof idx === "number" && Number.isInteger(idx) && idx >= 0) cfg.interface = idx;
      ips.push(cfg);
    }
  }
  // Legacy 0.1.0 / 0.2.0: { ip4: { ip, gateway }, ip6: { ip, gateway } }.
  for (const key of ["ip4", "ip6"]) {
    const legacy = value[key];
    if (!isObject(legacy)) continue;
    const address = str(legacy["ip"]);
    if (address === undefined || !isCidr(address)) throw internal(`${what}: result ${key}.ip is invalid`);
    const cfg: CniIpConfig = { address };
    const gw = str(legacy["gateway"]);
    if (gw !== undefined) cfg.gateway = gw;
    ips.push(cfg);
  }
  return { cniVersion, interfaces, ips, raw: value };
}

const V4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

export function isIPv4(s: string): boolean {
  return V4_RE.test(s);
}

function isCidr(s: string): boolean {
  const slash = s.lastIndexOf("/");
  if (slash < 0) return false;
  const ip = s.slice(0, slash);
  const len = Number(s.slice(slash + 1));
  if (!Number.isInteger(len) || s.slice(slash + 1) === "") return false;
  if (isIPv4(ip)) return len >= 0 && len <= 32;
  return ip.includes(":") && /^[0-9A-Fa-f:.]+$/.test(ip) && len >= 0 && len <= 128;
}

/**
 * The pod's IPs (without prefix length): addresses on the sandbox interface `ifName` (or not
 * tied to an interface), IPv4 first then IPv6, duplicates removed. The first is the primary.
 */
export function podIPs(result: CniResult, ifName = "eth0"): string[] {
  const chosen = result.ips.filter((ip) => {
    if (ip.interface === undefined) return true;
    const itf = result.interfaces[ip.interface];
    return itf === undefined || (itf.name === ifName && itf.sandbox !== undefined);
  });
  const bare = chosen.map((ip) => ip.address.slice(0, ip.address.lastIndexOf("/")));
  const v4 = bare.filter(isIPv4);
  const v6 = bare.filter((a) => !isIPv4(a));
  return [...new Set([...v4, ...v6])];
}
