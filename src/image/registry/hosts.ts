/**
 * Registry host resolution from a containerd-style config (CRI plugin `registry.mirrors` /
 * `registry.configs`): the ordered list of endpoints to try for an image domain.
 *
 *  - Each mirror endpoint of `mirrors[domain]` (else `mirrors["*"]`) in order, then the registry
 *    itself (docker.io → https://registry-1.docker.io). The repository path is kept, so a docker.io
 *    mirror is asked for /v2/library/busybox/...
 *  - Loopback registries (localhost, 127.0.0.0/8, ::1) use plain http by default.
 *  - Other registries use https; with `configs[host].insecure` they are tried with https without
 *    certificate verification, then (only if that could not connect) plain http.
 *  - Credentials: `configs[endpointHost].auth` for each endpoint; a CRI AuthConfig given with the pull
 *    applies to the image's own registry only, or, when it names a `server_address`, to the endpoint
 *    with that host. Credentials never go to another host.
 */
import { invalidArgument } from "../../common/errors.js";
import { DEFAULT_DOMAIN, isLoopbackHost } from "../reference.js";
import { type Credentials, type CriAuthConfig, type HostAuthConfig, toCredentials } from "./auth.js";

export interface RegistryMirror {
  endpoints: string[];
}

export interface RegistryHostConfig {
  insecure?: boolean;
  auth?: HostAuthConfig;
}

export interface RegistryHostsConfig {
  mirrors?: Record<string, RegistryMirror>;
  configs?: Record<string, RegistryHostConfig>;
}

export interface RegistryEndpoint {
  /** API base without trailing slash, including the /v2 prefix: "https://registry-1.docker.io/v2". */
  url: string;
  /** host[:port] of the endpoint (what credentials and auth challenges are keyed by). */
  host: string;
  scheme: "http" | "https";
  /** https without certificate verification (insecure registry). */
  skipVerify: boolean;
  /** A mirror rather than the image's own registry. */
  mirror: boolean;
  /** Plain-http fallback: only tried when the previous (https) endpoint could not be reached. */
  fallback: boolean;
  credentials?: Credentials;
}

/** The host actually serving a registry domain: docker.io → registry-1.docker.io. */
export function registryApiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === "index.docker.io" ? "registry-1.docker.io" : domain;
}

/** Lowercased host[:port] of a server address such as "https://index.docker.io/v1/" or "quay.io". */
export function normalizeServerAddress(address: string): string {
  let a = address.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(a)) a = `https://${a}`;
  let host: string;
  try {
    host = new URL(a).host.toLowerCase();
  } catch {
    throw invalidArgument(`invalid registry server address ${JSON.stringify(address)}`);
  }
  return host === "index.docker.io" || host === "registry-1.docker.io" ? DEFAULT_DOMAIN : host;
}

function sameRegistry(a: string, b: string): boolean {
  const norm = (h: string) => (h === "index.docker.io" || h === "registry-1.docker.io" ? DEFAULT_DOMAIN : h);
  return norm(a.toLowerCase()) === norm(b.toLowerCase());
}

function apiBase(u: URL): string {
  let path = u.pathname.replace(/\/+$/, "");
  if (!path.endsWith("/v2")) path += "/v2";
  return `${u.protocol}//${u.host}${path}`;
}

/** Ordered endpoints to try for images of `domain`. */
export function resolveEndpoints(
  domain: string,
  config: RegistryHostsConfig = {},
  criAuth?: CriAuthConfig,
): RegistryEndpoint[] {
  const configs = config.configs ?? {};
  const mirrors = config.mirrors ?? {};
  const apiHost = registryApiHost(domain);
  const criCreds = toCredentials(criAuth);
  const criServer = criAuth ? criAuth.serverAddress || criAuth.server_address : undefined;
  const criHost = criServer ? normalizeServerAddress(criServer) : undefined;

  const credentialsFor = (host: string, isUpstream: boolean): Credentials | undefined => {
    if (criCreds !== undefined) {
      if (criHost !== undefined ? sameRegistry(criHost, host) : isUpstream) return criCreds;
    }
    const cfg = configs[host] ?? (isUpstream ? (configs[domain] ?? configs[apiHost]) : undefined);
    return toCredentials(cfg?.auth);
  };
  const insecureFor = (host: string, isUpstream: boolean): boolean =>
    (configs[host]?.insecure ??
      (isUpstream ? (configs[domain]?.insecure ?? configs[apiHost]?.insecure) : false)) === true;

  const out: RegistryEndpoint[] = [];
  const push = (ep: Omit<RegistryEndpoint, "credentials">, creds: Credentials | undefined) => {
    if (out.some((e) => e.url === ep.url)) return;
    out.push(creds === undefined ? ep : { ...ep, credentials: creds });
  };

  /** Adds the endpoint(s) for a host given without scheme: http for loopback, https (+ fallback) else. */
  const addImplicit = (u: URL, mirror: boolean, isUpstream: boolean) => {
    const host = u.host.toLowerCase();
    const creds = credentialsFor(host, isUpstream);
    const base = (scheme: "http" | "https") => apiBase(new URL(`${scheme}://${host}${u.pathname}`));
    if (isLoopbackHost(host)) {
      push({ url: base("http"), host, scheme: "http", skipVerify: false, mirror, fallback: false }, creds);
    } else if (insecureFor(host, isUpstream)) {
      push({ url: base("https"), host, scheme: "https", skipVerify: true, mirror, fallback: false }, creds);
      push({ url: base("http"), host, scheme: "http", skipVerify: false, mirror, fallback: true }, creds);
    } else {
      push({ url: base("https"), host, scheme: "https", skipVerify: false, mirror, fallback: false }, creds);
    }
  };

  const mirror =
    mirrors[domain] ?? (domain === DEFAULT_DOMAIN ? mirrors[apiHost] : undefined) ?? mirrors["*"];
  for (const raw of mirror?.endpoints ?? []) {
    const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
    let u: URL;
    try {
      u = new URL(hasScheme ? raw : `https://${raw}`);
    } catch {
      throw invalidArgument(`invalid registry mirror endpoint ${JSON.stringify(raw)} for ${domain}`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw invalidArgument(`registry mirror endpoint ${JSON.stringify(raw)} must be http or https`);
    }
    const host = u.host.toLowerCase();
    const isUpstream = sameRegistry(host, apiHost) || sameRegistry(host, domain);
    if (!hasScheme) {
      addImplicit(u, !isUpstream, isUpstream);
      continue;
    }
    const scheme = u.protocol === "http:" ? "http" : "https";
    push(
      {
        url: apiBase(u),
        host,
        scheme,
        skipVerify: scheme === "https" && insecureFor(host, isUpstream),
        mirror: !isUpstream,
        fallback: false,
      },
      credentialsFor(host, isUpstream),
    );
  }
  addImplicit(new URL(`https://${apiHost}`), false, true);
  return out;
}
