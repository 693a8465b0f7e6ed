/**
 * OCI Distribution v2 pull client.
 *
 * Every operation walks the endpoints from `resolveEndpoints` (mirrors first, then the registry),
 * authenticates on 401 (Bearer token / Basic), follows redirects manually (dropping Authorization
 * when the redirect leaves the registry's origin), and retries connection errors, 429 and 5xx with
 * exponential backoff. One keep-alive pool per client (`HttpPool`, Node's http/https) keeps up to
 * `connectionsPerOrigin` sockets per origin, so parallel layer downloads use parallel connections.
 *
 * Bounded in time: a connect timeout, a response-header timeout and a body idle timeout (no byte
 * for that long) each end a request, and a timeout is not retried (a registry that did not answer
 * for that long will not answer the next attempt either). An AbortSignal (the RPC's cancellation
 * or deadline) ends requests, body streams and backoff waits at once.
 */
import { PassThrough, type Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BerthError,
  dataLoss,
  invalidArgument,
  isBerthError,
  notFound,
  permissionDenied,
  resourceExhausted,
  unauthenticated,
  unavailable,
  unimplemented,
} from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { computeDigest, verifyBytes } from "../digest.js";
import {
  fetchReference,
  formatName,
  formatRef,
  type ImageRef,
  isDigest,
  validateDigest,
} from "../reference.js";
import { Authorizer, type Credentials, type CriAuthConfig, pullScope } from "./auth.js";
import { type RegistryEndpoint, type RegistryHostsConfig, resolveEndpoints } from "./hosts.js";
import {
  discard,
  dump,
  HttpPool,
  type HttpPoolOptions,
  type HttpResponse,
  HttpTimeoutError,
} from "./http.js";
import {
  baseMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1MediaType,
  MANIFEST_ACCEPT,
} from "./media-types.js";
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  parseImageConfig,
  parseIndex,
  parseManifest,
  sniffManifestMediaType,
} from "./oci.js";
import { defaultPlatform, formatPlatform, type Platform, selectPlatform } from "./platform.js";

export interface RegistryClientOptions {
  hosts?: RegistryHostsConfig;
  /** Sockets per origin (default 8). */
  connectionsPerOrigin?: number;
  /** Attempts per request for connection errors, 429 and 5xx (default 3). */
  attempts?: number;
  /** First backoff delay; doubles each retry (default 200 ms). */
  retryBaseDelayMs?: number;
  /** Largest manifest / index accepted (default 4 MiB). */
  maxManifestBytes?: number;
  userAgent?: string;
  /** Time to establish a connection (TCP and TLS; default 30 s). */
  connectTimeoutMs?: number;
  /** Time to wait for response headers (default 30 s). */
  headersTimeoutMs?: number;
  /** Longest gap between two body chunks (default 60 s). */
  bodyTimeoutMs?: number;
  /** Debug logs for retries and endpoint fallbacks. */
  logger?: Logger;
}

export interface PullOptions {
  /** CRI AuthConfig from the PullImage request. */
  auth?: CriAuthConfig;
  signal?: AbortSignal;
}

export interface FetchedManifest {
  /** Digest of `bytes` (computed, never taken from the registry's word). */
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface ResolvedImage {
  /** Digest of the document the reference points at (index or manifest): the repo digest. */
  digest: string;
  /** The index / manifest list, when the reference pointed at one. */
  index?: FetchedManifest & { parsed: ImageIndex };
  /** The platform-specific image manifest. */
  manifest: FetchedManifest & { parsed: ImageManifest };
  /** Platform that was asked for. */
  platform: Platform;
}

export const DEFAULT_MAX_MANIFEST_BYTES = 4 << 20;
export const DEFAULT_MAX_CONFIG_BYTES = 8 << 20;
const MAX_REDIRECTS = 5;
const MAX_INDEX_DEPTH = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const GENERIC_CONTENT_TYPES = new Set(["", "application/json", "text/plain", "application/octet-stream"]);

type Response = HttpResponse;

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * `body` passed through, its errors replaced by `map(err)`; destroying the result destroys the
 * body (and so the connection).
 */
function typedErrors(body: Readable, map: (e: unknown) => Error): Readable {
  const out = new PassThrough();
  body.on("error", (e) => out.destroy(map(e)));
  out.on("close", () => {
    if (!body.readableEnded) discard(body);
  });
  body.pipe(out);
  return out;
}

function drain(res: Response): Promise<void> {
  return dump(res.body, 64 * 1024);
}

/** Reads the body, failing with resourceExhausted beyond `max` bytes. */
async function readLimited(res: Response, max: number, what: string): Promise<Buffer> {
  const cl = Number(header(res, "content-length"));
  if (Number.isFinite(cl) && cl > max) {
    discard(res.body);
    throw resourceExhausted(`${what} is ${cl} bytes, more than the ${max}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) {
      discard(res.body);
      throw resourceExhausted(`${what} is more than the ${max}-byte limit`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, n);
}

/** "MANIFEST_UNKNOWN: manifest unknown" from a registry error body, or "" */
async function registryErrorMessage(res: Response): Promise<string> {
  let text = "";
  try {
    text = (await readLimited(res, 16 * 1024, "error body")).toString("utf8");
  } catch {
    return "";
  }
  try {
    const o = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    if (Array.isArray(o.errors)) {
      return o.errors
        .map((e) => [e.code, e.message].filter((x) => typeof x === "string" && x !== "").join(": "))
        .filter((s) => s !== "")
        .join("; ");
    }
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200).replace(/\s+/g, " ");
}

function isAbort(e: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (e instanceof Error && e.name === "AbortError");
}

/** The signal's reason when it is a BerthError (the RPC's cancelled / deadline exceeded), else Aborted. */
function abortError(signal: AbortSignal | undefined, cause?: unknown): BerthError {
  const reason: unknown = signal?.reason;
  if (reason instanceof BerthError) return reason;
  return new BerthError("Aborted", "registry request aborted", { cause: reason ?? cause });
}

const TIMEOUTS = {
  connect: "connect timeout",
  headers: "response header timeout",
  body: "body idle timeout",
} as const;

/** Which of the client's timeouts `e` is, if any. */
function timeoutKind(e: unknown): string | undefined {
  for (let err = e, depth = 0; err instanceof Error && depth < 3; err = err.cause, depth++) {
    if (err instanceof HttpTimeoutError) return TIMEOUTS[err.kind];
  }
  return undefined;
}

function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  const inner = e.cause instanceof Error ? `: ${e.cause.message}` : "";
  return `${typeof code === "string" ? `${code} ` : ""}${e.message}${inner}`;
}

function retryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

export class RegistryClient {
  private readonly hosts: RegistryHostsConfig;
  private readonly poolOptions: HttpPoolOptions;
  private readonly pool: HttpPool;
  private insecurePool: HttpPool | undefined;
  /** https endpoints of insecure registries that turned out to speak plain http only. */
  private readonly plainHttpOnly = new Set<string>();
  private readonly authorizer: Authorizer;
  private readonly attempts: number;
  private readonly baseDelay: number;
  private readonly maxManifestBytes: number;
  private readonly userAgent: string;
  private readonly connectTimeout: number;
  private readonly headersTimeout: number;
  private readonly bodyTimeout: number;
  private readonly logger: Logger | undefined;

  constructor(opts: RegistryClientOptions = {}) {
    this.logger = opts.logger;
    this.hosts = opts.hosts ?? {};
    this.attempts = Math.max(1, opts.attempts ?? 3);
    this.baseDelay = opts.retryBaseDelayMs ?? 200;
    this.maxManifestBytes = opts.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.userAgent = opts.userAgent ?? "berth/0.1";
    this.connectTimeout = opts.connectTimeoutMs ?? 30_000;
    this.headersTimeout = opts.headersTimeoutMs ?? 30_000;
    this.bodyTimeout = opts.bodyTimeoutMs ?? 60_000;
    this.poolOptions = {
      connections: opts.connectionsPerOrigin ?? 8,
      keepAliveMs: 30_000,
      connectTimeoutMs: this.connectTimeout,
      headersTimeoutMs: this.headersTimeout,
      bodyTimeoutMs: this.bodyTimeout,
    };
    this.pool = new HttpPool(this.poolOptions);
    this.authorizer = new Authorizer({ pool: this.pool, userAgent: this.userAgent });
  }

  /** Binds an image repository and pull credentials: `session.getManifest("v1")`, `session.fetchBlob(desc)`. */
  session(ref: ImageRef, auth?: CriAuthConfig, signal?: AbortSignal): RegistrySession {
    return new RegistrySession(this, ref, { ...(auth ? { auth } : {}), ...(signal ? { signal } : {}) });
  }

  /**
   * Closes the connection pools: in-flight requests get `graceMs` to finish (requests of aborted
   * pulls are gone already), then every connection is destroyed.
   */
  async close(graceMs = 1000): Promise<void> {
    const pools = [this.pool, this.insecurePool].filter((p): p is HttpPool => p !== undefined);
    await Promise.all(pools.map((p) => p.close(graceMs)));
  }

  /**
   * Fetches the manifest or index `ref` points at (digest wins over tag). The digest is computed
   * from the bytes: it must equal `ref.digest` when fetching by digest, and the registry's
   * Docker-Content-Digest header when present (else dataLoss).
   */
  async getManifest(ref: ImageRef, opts: PullOptions = {}): Promise<FetchedManifest> {
    if (ref.digest !== undefined) validateDigest(ref.digest);
    const reference = fetchReference(ref);
    const what = `manifest ${formatRef(ref)}`;
    return this.withEndpoints(ref, opts, (ep, quick) =>
      this.exchange(
        ep,
        quick,
        pullScope(ref.path),
        new URL(`${ep.url}/${ref.path}/manifests/${reference}`),
        { accept: MANIFEST_ACCEPT },
        opts.signal,
        async (res) => {
          if (res.statusCode !== 200) throw await this.statusError(res, ep, what, "manifest unknown");
          const contentType = baseMediaType(header(res, "content-type"));
          if (isSchema1MediaType(contentType)) {
            await drain(res);
            throw unimplemented(
              `${what} uses Docker image manifest schema 1, which is not supported; re-push it with a current client`,
            );
          }
          if (!isIndexMediaType(contentType) && !isManifestMediaType(contentType)) {
            if (!GENERIC_CONTENT_TYPES.has(contentType)) {
              await drain(res);
              throw invalidArgument(
                `registry ${ep.host} returned unexpected content type ${JSON.stringify(contentType)} for ${what}`,
              );
            }
          }
          const bytes = await readLimited(res, this.maxManifestBytes, what);
          let mediaType = contentType;
          if (GENERIC_CONTENT_TYPES.has(contentType)) {
            mediaType = sniffManifestMediaType(bytes);
            if (isSchema1MediaType(mediaType)) {
              throw unimplemented(`${what} uses Docker image manifest schema 1, which is not supported`);
            }
            if (!isIndexMediaType(mediaType) && !isManifestMediaType(mediaType)) {
              throw invalidArgument(`${what} has unsupported media type ${JSON.stringify(mediaType)}`);
            }
          }
          const digest = computeDigest(bytes);
          if (ref.digest !== undefined) verifyBytes(bytes, ref.digest);
          const announced = header(res, "docker-content-digest")?.trim();
          if (announced && isDigest(announced)) {
            const computed = announced.startsWith("sha512:") ? computeDigest(bytes, "sha512") : digest;
            if (computed !== announced) {
              throw dataLoss(
                `digest mismatch for ${what}: registry ${ep.host} announced ${announced}, content is ${computed}`,
              );
            }
          }
          // Validate now so garbage never reaches the caller.
          if (isIndexMediaType(mediaType)) parseIndex(bytes, mediaType);
          else parseManifest(bytes, mediaType);
          return { digest: ref.digest ?? digest, mediaType, bytes };
        },
      ),
    );
  }

  /**
   * Resolves `ref` to the manifest for `platform` (default: this host): fetches the manifest or
   * index, picks the platform entry from an index and fetches that manifest (checking its size).
   */
  async resolveImage(
    ref: ImageRef,
    opts: PullOptions & { platform?: Platform } = {},
  ): Promise<ResolvedImage> {
    const platform = opts.platform ?? defaultPlatform();
    const top = await this.getManifest(ref, opts);
    let current = top;
    let index: ResolvedImage["index"];
    for (let depth = 0; depth < MAX_INDEX_DEPTH; depth++) {
      if (!isIndexMediaType(current.mediaType)) {
        const out: ResolvedImage = {
          digest: top.digest,
          manifest: { ...current, parsed: parseManifest(current.bytes, current.mediaType) },
          platform,
        };
        if (index !== undefined) out.index = index;
        return out;
      }
      const parsed = parseIndex(current.bytes, current.mediaType);
      index ??= { ...current, parsed };
      let desc: Descriptor;
      try {
        desc = selectPlatform(parsed.manifests, platform);
      } catch (e) {
        if (isBerthError(e, "NotFound")) {
          throw notFound(`${e.message} ${formatName(ref)}@${current.digest}`, e);
        }
        throw e;
      }
      const next = await this.getManifest({ domain: ref.domain, path: ref.path, digest: desc.digest }, opts);
      if (next.bytes.length !== desc.size) {
        throw dataLoss(
          `size mismatch for ${desc.digest}: index says ${desc.size} bytes, manifest is ${next.bytes.length}`,
        );
      }
      current = next;
    }
    throw invalidArgument(
      `${formatRef(ref)}: image indexes nested more than ${MAX_INDEX_DEPTH} deep (platform ${formatPlatform(platform)})`,
    );
  }

  /**
   * Starts downloading a blob and returns the body stream. The caller must verify it (pipe through
   * `DigestVerifier(desc.digest, desc.size)`) and consume or destroy it. Retries and mirror
   * fallback cover the start of the request only. A Content-Length that disagrees with
   * `desc.size` fails with dataLoss.
   */
  async fetchBlob(
    ref: ImageRef,
    desc: Pick<Descriptor, "digest" | "size">,
    opts: PullOptions = {},
  ): Promise<Readable> {
    validateDigest(desc.digest, "blob digest");
    const what = `blob ${desc.digest} of ${formatName(ref)}`;
    const { signal } = opts;
    return this.withEndpoints(ref, opts, (ep, quick) => {
      const url = new URL(`${ep.url}/${ref.path}/blobs/${desc.digest}`);
      return this.exchange(ep, quick, pullScope(ref.path), url, {}, signal, async (res) => {
        if (res.statusCode !== 200) throw await this.statusError(res, ep, what, "blob unknown");
        const cl = header(res, "content-length");
        if (cl !== undefined && Number(cl) !== desc.size) {
          discard(res.body);
          throw dataLoss(
            `size mismatch for ${desc.digest}: registry ${ep.host} sends ${cl} bytes, descriptor says ${desc.size}`,
          );
        }
        // Errors while the caller streams the body say what happened: aborted, timed out, cut off.
        return typedErrors(res.body, (e) => {
          if (isAbort(e, signal)) return abortError(signal, e);
          const timeout = timeoutKind(e);
          if (timeout !== undefined) return this.timeoutError(ep, url, timeout, e);
          return unavailable(`download of ${what} from ${ep.host} failed: ${describeError(e)}`, e);
        });
      });
    });
  }

  /** Downloads a small blob into memory and verifies digest and size (for configs). */
  async fetchBlobBuffer(
    ref: ImageRef,
    desc: Pick<Descriptor, "digest" | "size">,
    maxBytes: number,
    opts: PullOptions = {},
  ): Promise<Buffer> {
    if (desc.size > maxBytes) {
      throw resourceExhausted(
        `blob ${desc.digest} is ${desc.size} bytes, more than the ${maxBytes}-byte limit`,
      );
    }
    const stream = await this.fetchBlob(ref, desc, opts);
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > desc.size) break;
        chunks.push(chunk);
      }
    } catch (e) {
      if (isAbort(e, opts.signal)) throw abortError(opts.signal, e);
      if (isBerthError(e)) throw e;
      throw unavailable(`download of blob ${desc.digest} from ${ref.domain} failed: ${describeError(e)}`, e);
    } finally {
      discard(stream);
    }
    const buf = Buffer.concat(chunks);
    if (n > desc.size) {
      throw dataLoss(`size mismatch for ${desc.digest}: expected ${desc.size} bytes, got more than that`);
    }
    verifyBytes(buf, desc.digest, desc.size);
    return buf;
  }

  /** Fetches, verifies and parses an image config blob. */
  async fetchImageConfig(
    ref: ImageRef,
    desc: Pick<Descriptor, "digest" | "size">,
    opts: PullOptions = {},
  ): Promise<{ bytes: Buffer; config: ImageConfig }> {
    const bytes = await this.fetchBlobBuffer(ref, desc, DEFAULT_MAX_CONFIG_BYTES, opts);
    return { bytes, config: parseImageConfig(bytes) };
  }

  // ---- internals ----

  /**
   * Tries each endpoint in order; a plain-http fallback only after its https twin could not be
   * reached. Once the fallback worked, the https twin is skipped for the life of the client.
   */
  private async withEndpoints<T>(
    ref: ImageRef,
    opts: PullOptions,
    fn: (ep: RegistryEndpoint, quick: boolean) => Promise<T>,
  ): Promise<T> {
    const endpoints = resolveEndpoints(ref.domain, this.hosts, opts.auth);
    let lastErr: unknown;
    let prevErr: unknown;
    for (const [i, ep] of endpoints.entries()) {
      if (ep.fallback && !isBerthError(prevErr, "Unavailable")) continue;
      const hasFallback = endpoints[i + 1]?.fallback === true;
      if (hasFallback && this.plainHttpOnly.has(ep.url)) {
        prevErr = unavailable(`${ep.url} answered plain http before`);
        continue;
      }
      try {
        // An https endpoint with a plain-http twin gets one try: TLS-vs-HTTP failures are not transient.
        const result = await fn(ep, hasFallback);
        if (ep.fallback) {
          const twin = endpoints[i - 1];
          if (twin !== undefined) this.plainHttpOnly.add(twin.url);
        }
        return result;
      } catch (e) {
        if (isAbort(e, opts.signal) || isBerthError(e, "Aborted")) throw abortError(opts.signal, e);
        lastErr = e;
        prevErr = e;
        this.logger?.debug(
          { registry: ref.domain, endpoint: ep.url, err: (e as Error).message },
          "registry endpoint failed, trying the next one",
        );
      }
    }
    throw lastErr;
  }

  /**
   * One logical request to an endpoint, with auth, redirects and retries. `handle` runs inside the
   * retry loop: network errors while it reads the body are retried too; BerthErrors are final.
   */
  private async exchange<T>(
    ep: RegistryEndpoint,
    quick: boolean,
    scope: string,
    url: URL,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    handle: (res: Response) => Promise<T>,
  ): Promise<T> {
    const attempts = quick ? 1 : this.attempts;
    for (let attempt = 1; ; attempt++) {
      let res: Response | undefined;
      try {
        res = await this.authorized(ep, scope, url, headers, ep.credentials, signal);
        if (retryableStatus(res.statusCode) && attempt < attempts) {
          this.logger?.debug({ url: url.href, attempt, status: res.statusCode }, "registry busy, retrying");
          await drain(res);
          await this.backoff(attempt, signal);
          continue;
        }
        if (retryableStatus(res.statusCode)) {
          const msg = await registryErrorMessage(res);
          throw unavailable(
            `registry ${ep.host} answered HTTP ${res.statusCode} for ${url.pathname} after ${attempt} attempts` +
              (msg ? `: ${msg}` : ""),
          );
        }
        return await handle(res);
      } catch (e) {
        if (res !== undefined && !res.body.destroyed && !res.body.readableEnded) discard(res.body);
        if (isAbort(e, signal)) throw abortError(signal, e);
        if (isBerthError(e)) throw e;
        const timeout = timeoutKind(e);
        if (timeout !== undefined) throw this.timeoutError(ep, url, timeout, e);
        if (attempt >= attempts) {
          throw unavailable(`cannot reach registry ${ep.host} (${ep.url}): ${describeError(e)}`, e);
        }
        this.logger?.debug(
          { url: url.href, attempt, err: describeError(e) },
          "registry request failed, retrying",
        );
        await this.backoff(attempt, signal);
      }
    }
  }

  private timeoutError(ep: RegistryEndpoint, url: URL, kind: string, cause: unknown): BerthError {
    const ms =
      kind === "connect timeout"
        ? this.connectTimeout
        : kind === "body idle timeout"
          ? this.bodyTimeout
          : this.headersTimeout;
    const what =
      kind === "connect timeout"
        ? "could not be connected to"
        : kind === "body idle timeout"
          ? "stopped sending data"
          : "did not answer";
    return unavailable(
      `registry ${ep.host} ${what} within ${ms / 1000} s (${kind}) for ${url.pathname}`,
      cause,
    );
  }

  private async backoff(attempt: number, signal: AbortSignal | undefined): Promise<void> {
    const delay = this.baseDelay * 2 ** (attempt - 1);
    const jitter = Math.random() * delay * 0.2;
    try {
      await sleep(delay + jitter, undefined, signal ? { signal } : undefined);
    } catch (e) {
      throw abortError(signal, e);
    }
  }

  /** Sends with the best known Authorization; on 401 learns the challenge and retries once. */
  private async authorized(
    ep: RegistryEndpoint,
    scope: string,
    url: URL,
    headers: Record<string, string>,
    creds: Credentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    let auth = await this.authorizer.authorize(ep.host, scope, creds, signal);
    let res = await this.follow(ep, url, headers, auth, signal);
    if (res.statusCode === 401) {
      const challenge = res.headers["www-authenticate"];
      await drain(res);
      auth = await this.authorizer.onUnauthorized(ep.host, scope, creds, challenge, auth, signal);
      res = await this.follow(ep, url, headers, auth, signal);
      if (res.statusCode === 401) {
        const msg = await registryErrorMessage(res);
        throw unauthenticated(
          (creds
            ? `registry ${ep.host} rejected the credentials for ${scope}`
            : `registry ${ep.host} requires authentication for ${scope} and no credentials were provided`) +
            (msg ? ` (${msg})` : ""),
        );
      }
    }
    if (res.statusCode === 403) {
      const msg = await registryErrorMessage(res);
      throw permissionDenied(`registry ${ep.host} denied access to ${scope}${msg ? ` (${msg})` : ""}`);
    }
    return res;
  }

  /** GET following up to 5 redirects; Authorization is dropped for good once a redirect leaves the origin. */
  private async follow(
    ep: RegistryEndpoint,
    url: URL,
    headers: Record<string, string>,
    authorization: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    let current = url;
    let auth = authorization;
    for (let hop = 0; ; hop++) {
      const h: Record<string, string> = { ...headers, "user-agent": this.userAgent };
      if (auth !== undefined) h["authorization"] = auth;
      const res = await this.poolFor(current, ep).request(current, { method: "GET", headers: h, signal });
      if (!REDIRECT_STATUSES.has(res.statusCode)) return res;
      const location = header(res, "location");
      await drain(res);
      if (!location) throw unavailable(`registry ${ep.host} sent HTTP ${res.statusCode} without a Location`);
      if (hop >= MAX_REDIRECTS) throw unavailable(`too many redirects fetching ${url.href}`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw unavailable(
          `registry ${ep.host} redirected to an invalid location ${JSON.stringify(location)}`,
        );
      }
      if (next.protocol !== "http:" && next.protocol !== "https:") {
        throw unavailable(`registry ${ep.host} redirected to unsupported location ${next.protocol}`);
      }
      if (next.origin !== url.origin) auth = undefined;
      current = next;
    }
  }

  private poolFor(url: URL, ep: RegistryEndpoint): HttpPool {
    if (ep.skipVerify && url.protocol === "https:" && url.host.toLowerCase() === ep.host) {
      this.insecurePool ??= new HttpPool({ ...this.poolOptions, verifyTls: false });
      return this.insecurePool;
    }
    return this.pool;
  }

  private async statusError(
    res: Response,
    ep: RegistryEndpoint,
    what: string,
    unknown: string,
  ): Promise<BerthError> {
    const status = res.statusCode;
    const msg = await registryErrorMessage(res);
    const detail = msg ? ` (${msg})` : "";
    switch (status) {
      case 404:
        return notFound(`${unknown}: ${what} not found on ${ep.host}${detail}`);
      case 400:
        return invalidArgument(`registry ${ep.host} rejected the request for ${what}: HTTP 400${detail}`);
      case 401:
        return unauthenticated(`registry ${ep.host} requires authentication for ${what}${detail}`);
      case 403:
        return permissionDenied(`registry ${ep.host} denied access to ${what}${detail}`);
      default:
        return unavailable(`registry ${ep.host} answered HTTP ${status} for ${what}${detail}`);
    }
  }
}

/** A repository on a registry plus the credentials of one pull (see `RegistryClient.session`). */
export class RegistrySession {
  constructor(
    private readonly client: RegistryClient,
    readonly ref: ImageRef,
    private readonly opts: PullOptions,
  ) {}

  /** `reference` is a tag or a digest. */
  getManifest(reference: string): Promise<FetchedManifest> {
    const { domain, path } = this.ref;
    const target: ImageRef = isDigest(reference)
      ? { domain, path, digest: reference }
      : { domain, path, tag: reference };
    return this.client.getManifest(target, this.opts);
  }

  resolveImage(platform?: Platform): Promise<ResolvedImage> {
    return this.client.resolveImage(this.ref, { ...this.opts, ...(platform ? { platform } : {}) });
  }

  /** `signal` replaces the session's for this download (a layer download shared by several pulls). */
  fetchBlob(desc: Pick<Descriptor, "digest" | "size">, signal?: AbortSignal): Promise<Readable> {
    return this.client.fetchBlob(this.ref, desc, signal ? { ...this.opts, signal } : this.opts);
  }

  fetchBlobBuffer(desc: Pick<Descriptor, "digest" | "size">, maxBytes: number): Promise<Buffer> {
    return this.client.fetchBlobBuffer(this.ref, desc, maxBytes, this.opts);
  }
}
