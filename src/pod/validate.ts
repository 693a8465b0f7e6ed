/**
 * Everything RunPodSandbox checks before it creates anything: a refused request leaves no
 * directory, mount, namespace or network behind. Values that end up in files (resolv.conf,
 * hosts, hostname) or in CNI_ARGS are refused if they could change those files' meaning.
 */
import { isIP } from "node:net";
import { isAbsolute } from "node:path";
import { NamespaceMode, type PodSandboxConfig, Protocol } from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import { checkList, checkName, checkStringMap, LIMITS } from "../common/limits.js";
import { buildCniArgs } from "../network/cni-args.js";
import { HOSTNAME_RE, planSysctls } from "../network/namespaces.js";

const DNS_SEARCH_RE = /^[A-Za-z0-9_.-]{1,253}$/;
const DNS_OPTION_RE = /^[A-Za-z0-9_.:+-]{1,253}$/;
/** resolv.conf allows 6 search domains in glibc < 2.26; Kubernetes allows 32. */
const MAX_DNS_SEARCHES = 32;
const PROTOCOLS: readonly Protocol[] = [Protocol.TCP, Protocol.UDP, Protocol.SCTP];
const POD_MODES: readonly NamespaceMode[] = [NamespaceMode.POD, NamespaceMode.CONTAINER, NamespaceMode.NODE];

export function isIpAddress(s: string): boolean {
  // A link-local IPv6 server may carry a zone ("fe80::1%eth0").
  const [addr, zone] = s.split("%");
  return (
    isIP(addr ?? "") !== 0 && (zone === undefined || (isIP(addr ?? "") === 6 && /^[\w.-]{1,15}$/.test(zone)))
  );
}

function checkMode(what: string, mode: NamespaceMode | undefined): NamespaceMode {
  const m = mode ?? NamespaceMode.POD;
  if (!POD_MODES.includes(m))
    throw invalidArgument(`pod ${what} namespace mode ${m} is not POD, CONTAINER or NODE`);
  return m;
}

export function validatePodConfig(config: PodSandboxConfig): void {
  const md = config.metadata;
  if (!md || md.name === "" || md.namespace === "" || md.uid === "") {
    throw invalidArgument("pod sandbox metadata needs name, namespace and uid");
  }
  checkName("pod name", md.name);
  checkName("pod namespace", md.namespace);
  checkName("pod uid", md.uid);
  // The identity goes into CNI_ARGS: what would break that list is refused now, not at CNI ADD.
  buildCniArgs({ podId: "0", name: md.name, namespace: md.namespace, uid: md.uid });
  if (config.hostname !== "" && !HOSTNAME_RE.test(config.hostname)) {
    throw invalidArgument(`invalid hostname ${JSON.stringify(config.hostname)}`);
  }
  if (config.logDirectory !== "") {
    checkName("log_directory", config.logDirectory, LIMITS.pathBytes);
    if (!isAbsolute(config.logDirectory)) {
      throw invalidArgument(`log_directory ${JSON.stringify(config.logDirectory)} must be an absolute path`);
    }
  }
  checkStringMap("pod labels", config.labels);
  checkStringMap("pod annotations", config.annotations);

  const dns = config.dnsConfig;
  if (dns) {
    for (const s of checkList("dns_config.servers", dns.servers)) {
      if (!isIpAddress(s)) throw invalidArgument(`DNS server ${JSON.stringify(s)} is not an IP address`);
    }
    for (const s of checkList("dns_config.searches", dns.searches, MAX_DNS_SEARCHES)) {
      if (!DNS_SEARCH_RE.test(s))
        throw invalidArgument(`DNS search domain ${JSON.stringify(s)} is not a domain name`);
    }
    for (const o of checkList("dns_config.options", dns.options)) {
      if (!DNS_OPTION_RE.test(o))
        throw invalidArgument(`DNS option ${JSON.stringify(o)} is not a resolv.conf option`);
    }
  }

  for (const m of checkList("port_mappings", config.portMappings)) {
    if (!PROTOCOLS.includes(m.protocol))
      throw invalidArgument(`port mapping: unknown protocol ${m.protocol}`);
    if (!Number.isInteger(m.containerPort) || m.containerPort < 1 || m.containerPort > 65535) {
      throw invalidArgument(`port mapping: invalid container port ${m.containerPort}`);
    }
    if (!Number.isInteger(m.hostPort) || m.hostPort < 0 || m.hostPort > 65535) {
      throw invalidArgument(`port mapping: invalid host port ${m.hostPort}`);
    }
    if (m.hostIp !== "" && !isIpAddress(m.hostIp)) {
      throw invalidArgument(`port mapping: host IP ${JSON.stringify(m.hostIp)} is not an IP address`);
    }
  }

  const linux = config.linux;
  const nsOpts = linux?.securityContext?.namespaceOptions;
  const hostNetwork = checkMode("network", nsOpts?.network) === NamespaceMode.NODE;
  const hostIpc = checkMode("ipc", nsOpts?.ipc) === NamespaceMode.NODE;
  checkMode("pid", nsOpts?.pid);
  const parent = linux?.cgroupParent ?? "";
  if (parent !== "") {
    checkName("cgroup_parent", parent, LIMITS.pathBytes);
    if (!parent.startsWith("/"))
      throw invalidArgument(`cgroup parent ${JSON.stringify(parent)} must be absolute`);
  }
  const sysctls = linux?.sysctls ?? {};
  checkList("sysctls", Object.keys(sysctls));
  planSysctls(sysctls, { net: !hostNetwork, ipc: !hostIpc, uts: !hostNetwork });
}
