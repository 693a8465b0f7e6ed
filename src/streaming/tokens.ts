/**
 * Single-use tokens for pending streaming requests (the kubelet streaming server's requestCache):
 * the CRI Exec/Attach/PortForward RPC stores its request and hands out a URL with the token; the
 * HTTP request on that URL takes it out again. Tokens are 32 random bytes (base64url, 43 chars),
 * expire after `ttlMs` (default 1 minute) and the cache holds at most `maxSize` pending requests.
 */
import { randomBytes } from "node:crypto";
import { resourceExhausted } from "../common/errors.js";

export interface TokenCacheOptions {
  /** Lifetime of a token, ms. Default 60 000. */
  ttlMs?: number;
  /** Pending requests at most; put() throws ResourceExhausted beyond. Default 1000. */
  maxSize?: number;
  /** Clock (ms), injectable for tests. Default Date.now. */
  now?: () => number;
}

interface Entry<T> {
  value: T;
  expires: number;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

export class TokenCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly ttlMs: number;
  private readonly maxSize: number;
  private readonly now: () => number;

  constructor(opts: TokenCacheOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.maxSize = opts.maxSize ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Pending (not yet expired or taken) requests. */
  get size(): number {
    this.prune();
    return this.entries.size;
  }

  /** Stores `value` and returns its token. Throws ResourceExhausted when the cache is full. */
  put(value: T): string {
    this.prune();
    if (this.entries.size >= this.maxSize) {
      throw resourceExhausted(`maximum number of in-flight streaming requests (${this.maxSize}) exceeded`);
    }
    let token: string;
    do token = randomBytes(32).toString("base64url");
    while (this.entries.has(token));
    this.entries.set(token, { value, expires: this.now() + this.ttlMs });
    return token;
  }

  /** Removes and returns the request for `token`; undefined if unknown, taken or expired. */
  take(token: string): T | undefined {
    if (!TOKEN_RE.test(token)) return undefined;
    const e = this.entries.get(token);
    if (!e) return undefined;
    this.entries.delete(token);
    if (this.now() >= e.expires) return undefined;
    return e.value;
  }

  clear(): void {
    this.entries.clear();
  }

  private prune(): void {
    const now = this.now();
    // Map iteration is insertion order and the TTL is fixed, so expired entries come first.
    for (const [k, e] of this.entries) {
      if (now < e.expires) break;
      this.entries.delete(k);
    }
  }
}
