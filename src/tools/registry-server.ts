/**
 * A real registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1 with
 * storage in a fresh temp dir, plus push helpers for tests and benchmarks. No assertions here.
 *
 * `tokenAuth: true` runs the registry with `auth.token` and starts a token server in this process
 * (node:http on 127.0.0.1) issuing RS256 JWTs signed by a throw-away key whose self-signed
 * certificate (made with the `openssl` CLI) is both the registry's `rootcertbundle` and the JWT's
 * `x5c` header. Policy:
 *   - user `berth` / password `secret` (Basic on the token request) gets every requested action;
 *   - a wrong username/password gets HTTP 401 from the token server;
 *   - anonymous requests get a token with NO access (so the registry answers 401), unless
 *     `anonymousPull: true`, which grants anonymous `pull` only.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, createSign, randomBytes } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, get as httpGet, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { Agent, type Dispatcher, request } from "undici";

const execFileAsync = promisify(execFile);

export const REGISTRY_BINARY = "/usr/bin/docker-registry";
export const TOKEN_USER = "berth";
export const TOKEN_PASSWORD = "secret";
const TOKEN_SERVICE = "berth-test-registry";
const TOKEN_ISSUER = "berth-test-token-issuer";

export interface PushAuth {
  username: string;
  password: string;
}

export interface TestDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface StartRegistryOptions {
  tokenAuth?: boolean;
  /** With tokenAuth: give anonymous clients pull access (default: no access). */
  anonymousPull?: boolean;
  /** Path of the registry binary (default /usr/bin/docker-registry). */
  binary?: string;
}

export interface RegistryHandle {
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** "127.0.0.1:PORT", the domain to use in image references. */
  host: string;
  port: number;
  /** Temp dir holding config, storage (and token keys). */
  dir: string;
  /** Credentials granting everything, when tokenAuth is on. */
  auth?: PushAuth;
  /** Token server, when tokenAuth is on. */
  tokenServer?: { url: string; readonly requests: number; readonly rejected: number };
  stop(): Promise<void>;
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  liveChildren.add(child);
  child.once("exit", () => liveChildren.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort if a test process dies without calling stop(): never leave registries behind.
    process.once("exit", () => {
      for (const c of liveChildren) c.kill("SIGKILL");
    });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function probe(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = httpGet(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.once("error", () => resolve(undefined));
    req.once("timeout", () => {
      req.destroy();
      resolve(undefined);
    });
  });
}

function registryConfig(dir: string, port: number, token?: { realm: string; certPath: string }): string {
  const lines = [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "data")}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString("hex")}`,
  ];
  if (token) {
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${token.realm}`,
      `    service: ${TOKEN_SERVICE}`,
      `    issuer: ${TOKEN_ISSUER}`,
      `    rootcertbundle: ${token.certPath}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

// ---- token server ----

interface TokenServer {
  server: Server;
  url: string;
  stats: { requests: number; rejected: number };
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

async function startTokenServer(
  dir: string,
  anonymousPull: boolean,
): Promise<TokenServer & { certPath: string }> {
  const keyPath = join(dir, "token-key.pem");
  const certPath = join(dir, "token-cert.pem");
  await execFileAsync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "2",
    "-subj",
    "/CN=berth-test-token-issuer",
  ]);
  const key = await readFile(keyPath, "utf8");
  const certPem = await readFile(certPath, "utf8");
  const certDerB64 = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
  const stats = { requests: 0, rejected: 0 };

  const server = createHttpServer((req, res) => {
    stats.requests++;
    const u = new URL(req.url ?? "/", "http://127.0.0.1");
    if (u.pathname !== "/token") {
      res.writeHead(404).end();
      return;
    }
    let user: string | undefined;
    const authz = req.headers.authorization;
    if (authz?.startsWith("Basic ")) {
      const [name, ...rest] = Buffer.from(authz.slice(6), "base64").toString("utf8").split(":");
      if (name !== TOKEN_USER || rest.join(":") !== TOKEN_PASSWORD) {
        stats.rejected++;
        res
          .writeHead(401, { "content-type": "application/json" })
          .end('{"details":"invalid username or password"}');
        return;
      }
      user = name;
    }
    const access = u.searchParams.getAll("scope").flatMap((scope) => {
      // "repository:name:pull,push" (the name itself has no ':')
      const first = scope.indexOf(":");
      const last = scope.lastIndexOf(":");
      if (first < 0 || last <= first) return [];
      const requested = scope
        .slice(last + 1)
        .split(",")
        .filter(Boolean);
      const actions =
        user !== undefined ? requested : anonymousPull ? requested.filter((a) => a === "pull") : [];
      return [{ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions }];
    });
    const now = Math.floor(Date.now() / 1000);
    const head = { typ: "JWT", alg: "RS256", x5c: [certDerB64] };
    const claims = {
      iss: TOKEN_ISSUER,
      sub: user ?? "",
      aud: u.searchParams.get("service") ?? TOKEN_SERVICE,
      exp: now + 300,
      nbf: now - 60,
      iat: now,
      jti: randomBytes(12).toString("hex"),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign("RSA-SHA256").update(signingInput).sign(key);
    const token = `${signingInput}.${b64url(signature)}`;
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(
        JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }),
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  return { server, url: `http://127.0.0.1:${port}/token`, stats, certPath };
}

// ---- registry process ----

/** Starts docker-registry; throws (loudly) if the binary is missing or it does not come up. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<RegistryHandle> {
  const binary = opts.binary ?? REGISTRY_BINARY;
  if (!existsSync(binary)) {
    throw new Error(
      `${binary} not found: install it with "apt-get install -y docker-registry" (needed by registry tests)`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), "berth-registry-"));
  let token: (TokenServer & { certPath: string }) | undefined;
  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const c = child;
      const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
      c.kill("SIGTERM");
      const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (token) {
      const server = token.server;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    if (opts.tokenAuth) token = await startTokenServer(dir, opts.anonymousPull === true);
    let lastError = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const configPath = join(dir, "config.yml");
      await writeFile(
        configPath,
        registryConfig(dir, port, token ? { realm: token.url, certPath: token.certPath } : undefined),
      );
      const proc = spawn(binary, ["serve", configPath], { stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      trackChild(proc);
      let output = "";
      const collect = (b: Buffer) => {
        if (output.length < 16_384) output += b.toString("utf8");
      };
      proc.stdout?.on("data", collect);
      proc.stderr?.on("data", collect);
      let exited = false;
      proc.once("exit", () => {
        exited = true;
      });
      proc.once("error", (e) => {
        exited = true;
        output += String(e);
      });
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 15_000;
      while (!exited && Date.now() < deadline) {
        const status = await probe(`${url}/v2/`);
        if (status === 200 || status === 401) {
          const stats = token?.stats;
          const reg: RegistryHandle = {
            url,
            host: `127.0.0.1:${port}`,
            port,
            dir,
            stop: (() => {
              let stopping: Promise<void> | undefined;
              return () => {
                stopping ??= cleanup();
                return stopping;
              };
            })(),
          };
          if (token && stats) {
            reg.auth = { username: TOKEN_USER, password: TOKEN_PASSWORD };
            reg.tokenServer = {
              url: token.url,
              get requests() {
                return stats.requests;
              },
              get rejected() {
                return stats.rejected;
              },
            };
          }
          return reg;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!exited) proc.kill("SIGKILL");
      await new Promise((r) => setTimeout(r, 50));
      lastError =
        output.trim() || (exited ? `exited with code ${proc.exitCode}` : "did not answer GET /v2/ in 15 s");
      if (!/address already in use/i.test(lastError)) break;
    }
    throw new Error(`docker-registry failed to start: ${lastError}`);
  } catch (e) {
    await cleanup();
    throw e;
  }
}

// ---- push helpers ----

/** Tiny auth-aware HTTP helper for pushes: on 401 gets a pull+push token (Basic to the realm) and retries. */
class Pusher {
  private token: string | undefined;
  readonly agent: Agent = new Agent({ keepAliveTimeout: 1000, connections: 4 });

  constructor(
    private readonly registryUrl: string,
    private readonly repo: string,
    private readonly auth: PushAuth | undefined,
  ) {}

  async send(
    method: Dispatcher.HttpMethod,
    pathOrUrl: string,
    headers: Record<string, string> = {},
    body?: Buffer | (() => NodeJS.ReadableStream),
  ): Promise<Dispatcher.ResponseData> {
    const url = new URL(pathOrUrl, this.registryUrl);
    for (let attempt = 0; ; attempt++) {
      const h = { ...headers };
      if (this.token) h["authorization"] = `Bearer ${this.token}`;
      else if (this.auth && attempt > 0) {
        h["authorization"] =
          `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString("base64")}`;
      }
      const res = await request(url, {
        method,
        headers: h,
        body: typeof body === "function" ? (body() as never) : body,
        dispatcher: this.agent,
      });
      if (res.statusCode !== 401 || attempt > 0) return res;
      const challenge = String(res.headers["www-authenticate"] ?? "");
      await res.body.dump();
      const realm = /realm="([^"]*)"/i.exec(challenge)?.[1];
      if (!/^bearer/i.test(challenge) || !realm) continue; // Basic: retry with Basic
      const service = /service="([^"]*)"/i.exec(challenge)?.[1];
      const tokenUrl = new URL(realm);
      if (service) tokenUrl.searchParams.set("service", service);
      tokenUrl.searchParams.set("scope", `repository:${this.repo}:pull,push`);
      const th: Record<string, string> = {};
      if (this.auth) {
        th["authorization"] =
          `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString("base64")}`;
      }
      const tr = await request(tokenUrl, { headers: th, dispatcher: this.agent });
      const text = await tr.body.text();
      if (tr.statusCode !== 200) throw new Error(`token request failed: HTTP ${tr.statusCode} ${text}`);
      const parsed = JSON.parse(text) as { token?: string; access_token?: string };
      this.token = parsed.token ?? parsed.access_token;
    }
  }

  async expect(res: Dispatcher.ResponseData, ok: number[], what: string): Promise<void> {
    if (ok.includes(res.statusCode)) {
      await res.body.dump();
      return;
    }
    const text = await res.body.text().catch(() => "");
    throw new Error(`${what}: HTTP ${res.statusCode} ${text.slice(0, 500)}`);
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

async function fileDigest(path: string): Promise<string> {
  const h = createHash("sha256");
  await pipeline(createReadStream(path), h);
  return `sha256:${h.digest("hex")}`;
}

/**
 * Uploads a blob (monolithic: POST an upload, then PUT ?digest=). `data` is the bytes or a file
 * path (streamed from disk). Skips the upload if the registry already has the blob.
 */
export async function pushBlob(
  registryUrl: string,
  repo: string,
  data: Buffer | string,
  auth?: PushAuth,
  mediaType = "application/octet-stream",
): Promise<TestDescriptor> {
  const isFile = typeof data === "string";
  const digest = isFile
    ? await fileDigest(data)
    : `sha256:${createHash("sha256").update(data).digest("hex")}`;
  const size = isFile ? (await stat(data)).size : data.length;
  const p = new Pusher(registryUrl, repo, auth);
  try {
    const head = await p.send("HEAD", `/v2/${repo}/blobs/${digest}`);
    await head.body.dump();
    if (head.statusCode === 200) return { mediaType, digest, size };
    const start = await p.send("POST", `/v2/${repo}/blobs/uploads/`);
    const location = start.headers["location"];
    await p.expect(start, [202], `start upload to ${repo}`);
    if (typeof location !== "string") throw new Error(`upload to ${repo}: no Location header`);
    const put = new URL(location, registryUrl);
    put.searchParams.set("digest", digest);
    const res = await p.send(
      "PUT",
      put.href,
      { "content-type": "application/octet-stream", "content-length": String(size) },
      isFile ? () => createReadStream(data) : data,
    );
    await p.expect(res, [201], `upload ${digest} to ${repo}`);
    return { mediaType, digest, size };
  } finally {
    await p.close();
  }
}

/** PUTs a manifest or index under `reference` (tag or digest); returns its digest. */
export async function pushManifest(
  registryUrl: string,
  repo: string,
  reference: string,
  bytes: Buffer,
  mediaType: string,
  auth?: PushAuth,
): Promise<string> {
  const p = new Pusher(registryUrl, repo, auth);
  try {
    const res = await p.send(
      "PUT",
      `/v2/${repo}/manifests/${reference}`,
      { "content-type": mediaType },
      bytes,
    );
    await p.expect(res, [201], `push manifest ${repo}:${reference}`);
    return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  } finally {
    await p.close();
  }
}
