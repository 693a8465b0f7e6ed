/**
 * The registry client's HTTP/1.1 transport, on Node's own http/https modules: their parser is
 * built into Node, so a pull loads no extra client library (undici cost berthd ~9 MiB for good
 * and ~30 MiB more at a pull's peak). Keep-alive pools per origin, at most `connections` sockets
 * each, and three timeouts: connect (TCP and TLS), response headers, and body idle (no byte for
 * that long); each fails the request with an `HttpTimeoutError`.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";

export interface HttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

export interface HttpPoolOptions {
  /** Sockets per origin. */
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Idle keep-alive sockets are closed after this long. */
  keepAliveMs: number;
  /** false: accept any TLS certificate (insecure registries). */
  verifyTls?: boolean;
}

export interface HttpRequest {
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal | undefined;
}

export type HttpTimeout = "connect" | "headers" | "body";

export class HttpTimeoutError extends Error {
  constructor(readonly kind: HttpTimeout) {
    super(`${kind} timeout`);
    this.name = "HttpTimeoutError";
  }
}

export class HttpPool {
  private readonly http: http.Agent;
  private readonly https: https.Agent;
  private active = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly opts: HttpPoolOptions) {
    const agent = { keepAlive: true, maxSockets: opts.connections, timeout: opts.keepAliveMs };
    this.http = new http.Agent(agent);
    this.https = new https.Agent({ ...agent, rejectUnauthorized: opts.verifyTls !== false });
  }

  /** Resolves at the response headers; the body is the caller's to read or destroy. */
  request(url: URL, req: HttpRequest): Promise<HttpResponse> {
    const secure = url.protocol === "https:";
    const { connectTimeoutMs, headersTimeoutMs, bodyTimeoutMs } = this.opts;
    return new Promise<HttpResponse>((resolve, reject) => {
      const out = (secure ? https : http).request(url, {
        method: req.method,
        headers: req.headers,
        agent: secure ? this.https : this.http,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      this.active++;
      let timer: NodeJS.Timeout | undefined;
      let answered = false;
      const arm = (kind: HttpTimeout, ms: number) => {
        clearTimeout(timer);
        timer = setTimeout(() => out.destroy(new HttpTimeoutError(kind)), ms);
      };
      out.once("socket", (socket) => {
        if (out.reusedSocket || !socket.connecting) return arm("headers", headersTimeoutMs);
        arm("connect", connectTimeoutMs);
        socket.once(secure ? "secureConnect" : "connect", () => arm("headers", headersTimeoutMs));
      });
      out.once("response", (res) => {
        clearTimeout(timer);
        answered = true;
        res.setTimeout(bodyTimeoutMs, () => res.destroy(new HttpTimeoutError("body")));
        res.once("close", () => this.end());
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      out.once("close", () => {
        clearTimeout(timer);
        // No response: the request failed (its 'error' rejected) and is over.
        if (!answered) this.end();
      });
      // Not once: a socket error after the response (a cut-off body) reaches the request too.
      out.on("error", reject);
      out.end(req.body);
    });
  }

  /** Waits up to `graceMs` for requests in flight, then closes every socket. */
  async close(graceMs: number): Promise<void> {
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        t.unref();
        this.idle = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.http.destroy();
    this.https.destroy();
  }

  private end(): void {
    if (--this.active === 0) this.idle?.();
  }
}

/** Abandons a response body (and its connection). */
export function discard(body: Readable): void {
  body.on("error", () => {});
  body.destroy();
}

/** Reads and drops a body of at most `limit` bytes so its connection is reused; a longer one is cut off. */
export async function dump(body: Readable, limit: number): Promise<void> {
  let n = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) break;
    }
  } catch {
    // only the connection was wanted back
  } finally {
    if (!body.readableEnded) discard(body);
  }
}
