/**
 * A Docker Engine API client: HTTP/1.1 over the engine's unix socket (node:http), every path
 * under the API version Berth speaks. The engine's version is checked before the first call
 * (and again after the engine was unreachable); errors come back typed: the engine's 4xx/5xx
 * as Berth's error codes, an engine that is down as Unavailable naming the endpoint.
 */
import { type ClientRequest, type IncomingMessage, request } from "node:http";
import type { Socket } from "node:net";
import {
  alreadyExists,
  type BerthError,
  errnoCode,
  failedPrecondition,
  internal,
  invalidArgument,
  isBerthError,
  notFound,
  permissionDenied,
  unauthenticated,
  unavailable,
} from "../common/errors.js";

/** Docker 20.10. Paths are versioned with it, so newer engines answer as 20.10 does. */
export const DOCKER_API_VERSION = "1.41";
export const DEFAULT_DOCKER_ENDPOINT = "unix:///var/run/docker.sock";

/** The socket path of a `unix://` endpoint (the only kind Berth connects to). */
export function socketPathOf(endpoint: string): string {
  const m = /^unix:\/\/(\/.+)$/.exec(endpoint);
  if (!m?.[1])
    throw invalidArgument(`docker endpoint "${endpoint}" must look like unix:///var/run/docker.sock`);
  return m[1];
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Raw body (a tarball for /images/load). */
  raw?: Buffer;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Compares dotted versions numerically ("1.9" < "1.41"). */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export class DockerEngine {
  readonly socketPath: string;
  private checked: Promise<{ version: string; apiVersion: string }> | undefined;

  constructor(readonly endpoint: string) {
    this.socketPath = socketPathOf(endpoint);
  }

  /** The engine's version, checked against the API version Berth needs (once, until it goes away). */
  version(): Promise<{ version: string; apiVersion: string }> {
    this.checked ??= this.raw("GET", "/version", {}, false)
      .then(async (res) => {
        const v = (await this.readJson(res)) as { Version?: string; ApiVersion?: string };
        const apiVersion = v.ApiVersion ?? "0";
        if (compareApiVersions(apiVersion, DOCKER_API_VERSION) < 0) {
          throw failedPrecondition(
            `Docker Engine at ${this.endpoint} speaks API ${apiVersion} (Docker ${v.Version ?? "?"}); Berth needs API ${DOCKER_API_VERSION} (Docker 20.10) or newer`,
          );
        }
        return { version: v.Version ?? "", apiVersion };
      })
      .catch((err: unknown) => {
        this.checked = undefined;
        throw err;
      });
    return this.checked;
  }

  /** A call answered with JSON (or nothing); `undefined` for an empty body. */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.call(method, path, opts);
    return (await this.readJson(res)) as T;
  }

  /** A call whose response body is a stream (logs, pull progress, stats, export). */
  call(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    return this.version().then(() => this.raw(method, path, opts, true));
  }

  /**
   * A hijacked connection (attach, exec start): the engine answers 101 and the socket carries
   * the process's stdio both ways.
   */
  async hijack(path: string, opts: RequestOptions = {}): Promise<Socket> {
    await this.version();
    return new Promise<Socket>((resolve, reject) => {
      const req = this.open("POST", path, opts, true, { Connection: "Upgrade", Upgrade: "tcp" });
      req.on("upgrade", (_res, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.on("response", (res) => {
        this.readJson(res).then(
          () => reject(internal(`docker ${path}: the engine did not upgrade the connection`)),
          reject,
        );
      });
      req.on("error", (err) => reject(this.connectionError(err)));
      this.sendBody(req, opts);
    });
  }

  private raw(
    method: string,
    path: string,
    opts: RequestOptions,
    versioned: boolean,
  ): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.open(method, path, opts, versioned, {});
      req.on("response", (res) => {
        const status = res.statusCode ?? 0;
        if (status < 400) {
          resolve(res);
          return;
        }
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          if (text.length < 64 * 1024) text += c;
        });
        res.on("end", () => reject(this.httpError(method, path, status, text)));
        res.on("error", (err) => reject(this.connectionError(err)));
      });
      req.on("error", (err) => reject(this.connectionError(err)));
      this.sendBody(req, opts);
    });
  }

  private open(
    method: string,
    path: string,
    opts: RequestOptions,
    versioned: boolean,
    extra: Record<string, string>,
  ): ClientRequest {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    const headers: Record<string, string> = { Host: "docker", ...extra, ...opts.headers };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (opts.raw !== undefined) headers["Content-Type"] = "application/x-tar";
    return request({
      socketPath: this.socketPath,
      method,
      path: `${versioned ? `/v${DOCKER_API_VERSION}` : ""}${path}${qs ? `?${qs}` : ""}`,
      headers,
      ...(opts.signal && { signal: opts.signal }),
    });
  }

  private sendBody(req: ClientRequest, opts: RequestOptions): void {
    if (opts.raw !== undefined) req.end(opts.raw);
    else if (opts.body !== undefined) req.end(JSON.stringify(opts.body));
    else req.end();
  }

  private async readJson(res: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    try {
      for await (const c of res) chunks.push(c as Buffer);
    } catch (err) {
      throw this.connectionError(err);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim() === "") return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw internal(`docker: unparsable answer ${JSON.stringify(text.slice(0, 200))}`);
    }
  }

  private connectionError(err: unknown): BerthError {
    if (isBerthError(err)) return err;
    const name = (err as Error).name;
    if (name === "AbortError") return unavailable("docker call aborted", err);
    this.checked = undefined;
    const code = errnoCode(err) ?? (err as Error).message;
    return unavailable(
      `Docker Engine at ${this.endpoint} is unreachable (${code}): is dockerd running?`,
      err,
    );
  }

  private httpError(method: string, path: string, status: number, text: string): BerthError {
    let message = text.trim();
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not JSON: the raw text
    }
    const what = `docker ${method} ${path.split("?")[0]}: ${message}`;
    if (status === 404) return notFound(what);
    if (status === 400) return invalidArgument(what);
    if (status === 401) return unauthenticated(what);
    if (status === 403) return permissionDenied(what);
    if (status === 409)
      return /already in use|already exists/.test(message) ? alreadyExists(what) : failedPrecondition(what);
    if (/unauthorized|authentication required|no basic auth/i.test(message)) return unauthenticated(what);
    if (/manifest unknown|not found|does not exist/i.test(message)) return notFound(what);
    return internal(what);
  }
}
