/**
 * Registry authentication: WWW-Authenticate parsing, credentials from CRI AuthConfig or the
 * containerd-style hosts config, and a Bearer token cache (Docker token protocol + OAuth2
 * refresh-token grant for identity tokens).
 *
 * Tokens are cached per (realm, service, scope, credentials) — the credentials are part of the
 * key so two pulls with different pull secrets never share a token.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { invalidArgument, unauthenticated, unavailable } from "../../common/errors.js";
import { discard, type HttpPool } from "./http.js";

export interface Challenge {
  /** Lowercased auth scheme: "bearer", "basic", ... */
  scheme: string;
  /** Parameters with lowercased names: realm, service, scope, error... */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses one or more WWW-Authenticate header values (RFC 7235), e.g.
 *   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"
 *   Basic realm="Registry Realm", Bearer realm="https://x/token"
 * Quoted values may contain commas and backslash escapes. Malformed input yields what could be parsed.
 */
export function parseWwwAuthenticate(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (typeof header !== "string") return header.flatMap((h) => parseWwwAuthenticate(h));
  const s = header;
  const out: Challenge[] = [];
  let i = 0;
  const skipWs = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  const readToken = (re: RegExp): string => {
    const start = i;
    while (i < s.length && re.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let v = "";
    while (i < s.length && s[i] !== '"') {
      if (s[i] === "\\" && i + 1 < s.length) i++;
      v += s[i];
      i++;
    }
    i++; // closing quote
    return v;
  };
  while (i < s.length) {
    skipWs();
    while (i < s.length && (s[i] === "," || s[i] === " " || s[i] === "\t")) i++;
    const scheme = readToken(TOKEN_CHAR);
    if (scheme === "") {
      i++; // skip garbage
      continue;
    }
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    skipWs();
    // token68 form ("Negotiate abc=="): only directly after the scheme.
    const t68 = /^[0-9A-Za-z\-._~+/]+=*[ \t]*(?=,|$)/.exec(s.slice(i));
    if (t68 && (t68[0].trim().endsWith("=") || !t68[0].includes("="))) {
      ch.params["token68"] = t68[0].trim();
      i += t68[0].length;
      continue;
    }
    // auth-params: name=value pairs separated by commas, until the next scheme.
    for (;;) {
      const save = i;
      while (i < s.length && (s[i] === " " || s[i] === "\t" || s[i] === ",")) i++;
      const name = readToken(TOKEN_CHAR);
      skipWs();
      if (name === "" || s[i] !== "=") {
        i = save;
        break;
      }
      i++; // '='
      skipWs();
      const value = s[i] === '"' ? readQuoted() : readToken(TOKEN_CHAR);
      ch.params[name.toLowerCase()] = value;
      skipWs();
      if (s[i] !== ",") break;
    }
  }
  return out;
}

/** Credentials usable for one registry host. */
export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (docker `identitytoken`), exchanged with grant_type=refresh_token. */
  identityToken?: string;
  /** A ready bearer token (CRI `registry_token`), sent as-is. */
  registryToken?: string;
}

/**
 * CRI runtime.v1.AuthConfig. Field names as ts-proto generates them (camelCase); the snake_case
 * spellings of the proto are accepted too.
 */
export interface CriAuthConfig {
  username?: string;
  password?: string;
  /** base64("user:password") */
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
  server_address?: string;
  identity_token?: string;
  registry_token?: string;
}

/** `configs."host".auth` of the containerd-style hosts config. */
export interface HostAuthConfig {
  username?: string;
  password?: string;
  /** base64("user:password") */
  auth?: string;
  identitytoken?: string;
}

/** Decodes base64 "user:password"; throws invalidArgument if malformed. */
export function decodeBasicAuth(auth: string): { username: string; password: string } {
  const text = Buffer.from(auth.trim(), "base64").toString("utf8");
  const i = text.indexOf(":");
  if (i <= 0) throw invalidArgument('invalid auth: expected base64 of "username:password"');
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

/** Credentials from a CRI AuthConfig or hosts-config auth; undefined when nothing is set. */
export function toCredentials(a: CriAuthConfig | HostAuthConfig | undefined): Credentials | undefined {
  if (a === undefined) return undefined;
  const cri = a as CriAuthConfig;
  const host = a as HostAuthConfig;
  const c: Credentials = {};
  if (a.username) c.username = a.username;
  if (a.password) c.password = a.password;
  if (a.auth && !c.username) Object.assign(c, decodeBasicAuth(a.auth));
  const identityToken = cri.identityToken || cri.identity_token || host.identitytoken;
  if (identityToken) c.identityToken = identityToken;
  const registryToken = cri.registryToken || cri.registry_token;
  if (registryToken) c.registryToken = registryToken;
  return Object.keys(c).length > 0 ? c : undefined;
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

/** "repository:library/busybox:pull" */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export interface AuthorizerOptions {
  /** Sends the token requests. */
  pool: HttpPool;
  userAgent?: string;
  /** Clock, for tests. */
  now?: () => number;
}

const DEFAULT_TOKEN_TTL_S = 60;
const MAX_TOKEN_RESPONSE = 1 << 20;

/**
 * Chooses the Authorization header for registry requests. One instance per RegistryClient;
 * remembers which scheme each registry host asked for so later requests authenticate up front.
 */
export class Authorizer {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;

  constructor(private readonly opts: AuthorizerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Header to send up front for `host`, or undefined to go anonymous (and wait for a 401). */
  async authorize(
    host: string,
    scope: string,
    creds: Credentials | undefined,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const ch = this.challenges.get(host);
    if (ch === undefined) return undefined;
    if (ch.scheme === "basic") {
      return creds?.username !== undefined
        ? basicAuthorization(creds.username, creds.password ?? "")
        : undefined;
    }
    return `Bearer ${(await this.token(ch, scope, creds, false, signal)).token}`;
  }

  /**
   * Handles a 401: learns the challenge and returns the header to retry with. Throws
   * unauthenticated when retrying cannot help (no credentials for Basic, rejected registry token...).
   * `sent` is the Authorization header of the rejected request.
   */
  async onUnauthorized(
    host: string,
    scope: string,
    creds: Credentials | undefined,
    wwwAuthenticate: string | string[] | undefined,
    sent: string | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const all = parseWwwAuthenticate(wwwAuthenticate);
    const ch = all.find((c) => c.scheme === "bearer") ?? all.find((c) => c.scheme === "basic");
    if (ch === undefined) {
      throw unauthenticated(
        `registry ${host} requires authentication but offered no supported scheme` +
          (all.length > 0
            ? ` (got ${all.map((c) => c.scheme).join(", ")})`
            : " (no WWW-Authenticate header)"),
      );
    }
    if (creds?.registryToken) {
      throw unauthenticated(`registry ${host} rejected the provided registry token for ${scope}`);
    }
    this.challenges.set(host, ch);
    if (ch.scheme === "basic") {
      if (creds?.username === undefined) {
        throw unauthenticated(
          `registry ${host} requires authentication (Basic) and no credentials were provided`,
        );
      }
      const header = basicAuthorization(creds.username, creds.password ?? "");
      if (sent === header)
        throw unauthenticated(`registry ${host} rejected the username/password for ${scope}`);
      return header;
    }
    return `Bearer ${(await this.token(ch, scope, creds, true, signal)).token}`;
  }

  private cacheKey(ch: Challenge, scope: string, creds: Credentials | undefined): string {
    const who = creds
      ? createHash("sha256")
          .update(JSON.stringify([creds.username ?? "", creds.password ?? "", creds.identityToken ?? ""]))
          .digest("hex")
          .slice(0, 32)
      : "anonymous";
    return JSON.stringify([ch.params["realm"] ?? "", ch.params["service"] ?? "", scope, who]);
  }

  private async token(
    ch: Challenge,
    scope: string,
    creds: Credentials | undefined,
    refresh: boolean,
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    const key = this.cacheKey(ch, scope, creds);
    const cached = this.tokens.get(key);
    if (cached !== undefined && !refresh && cached.expiresAt > this.now()) return cached;
    if (refresh) this.tokens.delete(key);
    let p = this.inflight.get(key);
    if (p === undefined) {
      // Shared by concurrent callers, so not tied to one caller's AbortSignal (timeouts bound it).
      p = this.fetchToken(ch, scope, creds).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const t = await (signal ? raceAbort(p, signal) : p);
    this.tokens.set(key, t);
    return t;
  }

  private async fetchToken(
    ch: Challenge,
    scope: string,
    creds: Credentials | undefined,
  ): Promise<CachedToken> {
    const realm = ch.params["realm"];
    let url: URL;
    try {
      url = new URL(realm ?? "");
    } catch {
      throw unauthenticated(`registry bearer challenge has an invalid realm ${JSON.stringify(realm ?? "")}`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw unauthenticated(`registry bearer challenge has an unsupported realm ${url.href}`);
    }
    const service = ch.params["service"];
    const scopes = [scope];
    const challengeScope = ch.params["scope"];
    if (challengeScope && challengeScope !== scope) scopes.push(challengeScope);

    const headers: Record<string, string> = { accept: "application/json" };
    if (this.opts.userAgent) headers["user-agent"] = this.opts.userAgent;
    let method: "GET" | "POST" = "GET";
    let body: string | undefined;
    if (creds?.identityToken) {
      method = "POST";
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: creds.identityToken,
        client_id: "berth",
        scope: scopes.join(" "),
      });
      if (service) form.set("service", service);
      body = form.toString();
      headers["content-type"] = "application/x-www-form-urlencoded";
    } else {
      if (service) url.searchParams.set("service", service);
      for (const s of scopes) url.searchParams.append("scope", s);
      if (creds?.username !== undefined)
        headers["authorization"] = basicAuthorization(creds.username, creds.password ?? "");
    }

    const res = await this.opts.pool.request(url, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await readText(res.body, MAX_TOKEN_RESPONSE);
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw unauthenticated(
        creds
          ? `token server ${url.origin} rejected the credentials for ${scopes.join(" ")} (HTTP ${res.statusCode})`
          : `token server ${url.origin} refused anonymous access to ${scopes.join(" ")} (HTTP ${res.statusCode}); credentials required`,
      );
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw unavailable(`token server ${url.origin} answered HTTP ${res.statusCode} for ${scopes.join(" ")}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw unavailable(`token server ${url.origin} returned a non-JSON response`);
    }
    const o = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<string, unknown>;
    const token = typeof o["token"] === "string" && o["token"] ? o["token"] : o["access_token"];
    if (typeof token !== "string" || token === "") {
      throw unavailable(`token server ${url.origin} returned no token`);
    }
    const ttl =
      typeof o["expires_in"] === "number" && o["expires_in"] > 0 ? o["expires_in"] : DEFAULT_TOKEN_TTL_S;
    // Renew a little early so a token does not expire in flight.
    const margin = Math.min(10, ttl / 2);
    return { token, expiresAt: this.now() + (ttl - margin) * 1000 };
  }
}

async function readText(body: Readable, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) {
      discard(body);
      throw unavailable(`response larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
