/**
 * RegistryClient against small in-process fake registries (node:http on 127.0.0.1): retries,
 * redirects and credential scoping, auth flows, garbage responses and digest checks. The real
 * registry is exercised in src/test/registry-client.test.ts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import { after, describe, test } from "node:test";
import { BerthError, isBerthError } from "../../common/errors.js";
import type { ImageRef } from "../reference.js";
import { RegistryClient } from "./client.js";
import { MediaType } from "./media-types.js";

interface Fake {
  url: string;
  host: string;
  requests: { method: string; url: string; headers: IncomingMessage["headers"] }[];
  close(): Promise<void>;
}

const fakes: Fake[] = [];
const clients: RegistryClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(fakes.map((f) => f.close()));
});

async function fake(
  handler: (req: IncomingMessage, res: ServerResponse, f: Fake) => void,
  address = "127.0.0.1",
): Promise<Fake> {
  const requests: Fake["requests"] = [];
  let self: Fake | undefined;
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    handler(req, res, self!);
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const { port } = server.address() as AddressInfo;
  self = {
    url: `http://${address}:${port}`,
    host: `${address}:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  fakes.push(self);
  return self;
}

function client(opts: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ retryBaseDelayMs: 5, ...opts });
  clients.push(c);
  return c;
}

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const configBytes = Buffer.from(
  JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
);
const manifestBytes = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha(configBytes), size: configBytes.length },
    layers: [],
  }),
);
const manifestDigest = sha(manifestBytes);
const blob = Buffer.from("some blob content");
const ref = (f: Fake, extra: Partial<ImageRef> = {}): ImageRef => ({
  domain: f.host,
  path: "test/img",
  tag: "v1",
  ...extra,
});

function sendManifest(
  res: ServerResponse,
  body: Buffer = manifestBytes,
  type: string = MediaType.OciManifest,
): void {
  res.writeHead(200, {
    "content-type": type,
    "content-length": body.length,
    "docker-content-digest": sha(body),
  });
  res.end(body);
}

const code = (c: string, re?: RegExp) => (e: unknown) => {
  assert.ok(isBerthError(e, c as never), `expected ${c}, got ${String(e)}`);
  if (re) assert.match((e as Error).message, re);
  return true;
};

describe("retries", () => {
  test("503 twice then success", async () => {
    let n = 0;
    const f = await fake((_req, res) => {
      if (++n <= 2) res.writeHead(503).end("busy");
      else sendManifest(res);
    });
    const m = await client().getManifest(ref(f));
    assert.equal(m.digest, manifestDigest);
    assert.equal(f.requests.length, 3);
  });

  test("429 then success; Accept lists the four manifest types", async () => {
    let n = 0;
    const f = await fake((_req, res) => {
      if (++n === 1) res.writeHead(429).end();
      else sendManifest(res);
    });
    await client().getManifest(ref(f));
    const accept = String(f.requests[1]?.headers.accept);
    for (const mt of [
      MediaType.OciIndex,
      MediaType.OciManifest,
      MediaType.DockerManifestList,
      MediaType.DockerManifest,
    ]) {
      assert.ok(accept.includes(mt), mt);
    }
  });

  test("persistent 500 → Unavailable after 3 attempts", async () => {
    const f = await fake((_req, res) =>
      res
        .writeHead(500, { "content-type": "application/json" })
        .end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}'),
    );
    await assert.rejects(
      client().getManifest(ref(f)),
      code("Unavailable", /HTTP 500.*3 attempts.*UNKNOWN: boom/),
    );
    assert.equal(f.requests.length, 3);
  });

  test("connection refused → Unavailable", async () => {
    const f = await fake(() => {});
    await f.close();
    await assert.rejects(
      client({ attempts: 2 }).getManifest(ref(f)),
      code("Unavailable", /cannot reach registry/),
    );
  });

  test("connection reset mid-response is retried", async () => {
    let n = 0;
    const f = await fake((_req, res) => {
      if (++n === 1) {
        res.writeHead(200, { "content-type": MediaType.OciManifest, "content-length": manifestBytes.length });
        res.write(manifestBytes.subarray(0, 10));
        setTimeout(() => res.socket?.destroy(), 10);
      } else sendManifest(res);
    });
    assert.equal((await client().getManifest(ref(f))).digest, manifestDigest);
    assert.equal(n, 2);
  });
});

describe("status and body errors", () => {
  test("404 → NotFound manifest unknown; 403 → PermissionDenied; 400 → InvalidArgument", async () => {
    const f = await fake((req, res) => {
      if (req.url?.includes("forbidden")) res.writeHead(403).end();
      else if (req.url?.includes("bad")) res.writeHead(400).end();
      else
        res
          .writeHead(404, { "content-type": "application/json" })
          .end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    });
    await assert.rejects(
      client().getManifest(ref(f)),
      code("NotFound", /^manifest unknown: .*test\/img:v1.*MANIFEST_UNKNOWN/),
    );
    await assert.rejects(client().getManifest(ref(f, { path: "forbidden" })), code("PermissionDenied"));
    await assert.rejects(client().getManifest(ref(f, { path: "bad" })), code("InvalidArgument"));
  });

  test("HTML instead of a manifest → InvalidArgument naming the content type", async () => {
    const f = await fake((_req, res) =>
      res.writeHead(200, { "content-type": "text/html" }).end("<html>captive portal</html>"),
    );
    await assert.rejects(
      client().getManifest(ref(f)),
      code("InvalidArgument", /unexpected content type "text\/html"/),
    );
  });

  test("non-JSON body with a manifest content type → InvalidArgument", async () => {
    const f = await fake((_req, res) =>
      res.writeHead(200, { "content-type": MediaType.OciManifest }).end("garbage"),
    );
    await assert.rejects(client().getManifest(ref(f)), code("InvalidArgument", /not valid JSON/));
  });

  test("generic application/json content type is sniffed from the body", async () => {
    const f = await fake((_req, res) => sendManifest(res, manifestBytes, "application/json; charset=utf-8"));
    const m = await client().getManifest(ref(f));
    assert.equal(m.mediaType, MediaType.OciManifest);
  });

  test("schema 1 → Unimplemented", async () => {
    const f = await fake((_req, res) =>
      res.writeHead(200, { "content-type": MediaType.DockerSchema1Signed }).end('{"schemaVersion":1}'),
    );
    await assert.rejects(client().getManifest(ref(f)), code("Unimplemented", /schema 1/));
  });

  test("manifest larger than the limit → ResourceExhausted", async () => {
    const f = await fake((_req, res) => sendManifest(res));
    await assert.rejects(
      client({ maxManifestBytes: 50 }).getManifest(ref(f)),
      code("ResourceExhausted", /50-byte limit/),
    );
    const g = await fake((_req, res) => {
      res.writeHead(200, { "content-type": MediaType.OciManifest }); // chunked, no length
      res.end(manifestBytes);
    });
    await assert.rejects(client({ maxManifestBytes: 50 }).getManifest(ref(g)), code("ResourceExhausted"));
  });

  test("Docker-Content-Digest that differs from the content → DataLoss", async () => {
    const f = await fake((_req, res) =>
      res
        .writeHead(200, {
          "content-type": MediaType.OciManifest,
          "docker-content-digest": `sha256:${"0".repeat(64)}`,
        })
        .end(manifestBytes),
    );
    await assert.rejects(
      client().getManifest(ref(f)),
      code("DataLoss", /announced sha256:0+, content is sha256:/),
    );
  });

  test("by digest: content not matching the requested digest → DataLoss", async () => {
    const other = `sha256:${"1".repeat(64)}`;
    const f = await fake((_req, res) =>
      res.writeHead(200, { "content-type": MediaType.OciManifest }).end(manifestBytes),
    );
    await assert.rejects(
      client().getManifest(ref(f, { tag: undefined, digest: other })),
      code("DataLoss", new RegExp(`digest mismatch for ${other}: got ${manifestDigest}`)),
    );
    const m = await client().getManifest(ref(f, { digest: manifestDigest }));
    assert.equal(m.digest, manifestDigest);
    assert.ok(f.requests.at(-1)?.url.endsWith(`/manifests/${manifestDigest}`), "digest wins over tag");
  });

  test("blob Content-Length different from the descriptor → DataLoss; fetchBlobBuffer verifies", async () => {
    const f = await fake((_req, res) => res.writeHead(200, { "content-length": blob.length }).end(blob));
    await assert.rejects(
      client().fetchBlob(ref(f), { digest: sha(blob), size: blob.length + 1 }),
      code("DataLoss", /size mismatch/),
    );
    assert.deepEqual(
      await client().fetchBlobBuffer(ref(f), { digest: sha(blob), size: blob.length }, 1024),
      blob,
    );
    await assert.rejects(
      client().fetchBlobBuffer(ref(f), { digest: sha("other"), size: blob.length }, 1024),
      code("DataLoss", /digest mismatch/),
    );
    await assert.rejects(
      client().fetchBlobBuffer(ref(f), { digest: sha(blob), size: blob.length }, 4),
      code("ResourceExhausted"),
    );
  });

  test("abort signal → Aborted", async () => {
    const f = await fake(() => {}); // never answers
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(client().getManifest(ref(f), { signal: ac.signal }), code("Aborted"));
  });
});

describe("timeouts and cancellation", () => {
  test("a registry that never answers: one request, Unavailable naming the header timeout", async () => {
    const f = await fake(() => {}); // never answers
    const started = Date.now();
    await assert.rejects(
      client({ headersTimeoutMs: 200 }).getManifest(ref(f)),
      code("Unavailable", /did not answer within 0\.2 s \(response header timeout\)/),
    );
    assert.equal(f.requests.length, 1, "a timeout is not retried");
    assert.ok(Date.now() - started < 5000);
  });

  test("a blob that stops flowing → Unavailable (body idle timeout) from the stream", async () => {
    const f = await fake((_req, res) => {
      res.writeHead(200, { "content-length": blob.length });
      res.write(blob.subarray(0, 3)); // and nothing more
    });
    const stream = await client({ bodyTimeoutMs: 200 }).fetchBlob(ref(f), {
      digest: sha(blob),
      size: blob.length,
    });
    await assert.rejects(
      (async () => {
        for await (const _ of stream);
      })(),
      code("Unavailable", /stopped sending data within 0\.2 s \(body idle timeout\)/),
    );
  });

  test("aborting with a BerthError reason rejects with that error, also mid-body, and hangs up", async () => {
    let closed = false;
    const f = await fake((_req, res) => {
      res.writeHead(200, { "content-length": blob.length });
      res.write(blob.subarray(0, 3));
      res.socket?.once("close", () => {
        closed = true;
      });
    });
    const ac = new AbortController();
    const stream = await client().fetchBlob(
      ref(f),
      { digest: sha(blob), size: blob.length },
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort(new BerthError("Cancelled", "client went away")), 50);
    await assert.rejects(
      (async () => {
        for await (const _ of stream);
      })(),
      code("Cancelled", /client went away/),
    );
    for (let i = 0; i < 50 && !closed; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(closed, "the connection was closed");

    const silent = await fake(() => {});
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(new BerthError("DeadlineExceeded", "too late")), 50);
    await assert.rejects(
      client().getManifest(ref(silent), { signal: ac2.signal }),
      code("DeadlineExceeded", /too late/),
    );
  });

  test("a busy registry: backoff between retries stops when the signal aborts", async () => {
    const f = await fake((_req, res) => res.writeHead(503).end());
    const ac = new AbortController();
    setTimeout(() => ac.abort(new BerthError("Cancelled", "stop")), 100);
    const started = Date.now();
    await assert.rejects(
      client({ retryBaseDelayMs: 60_000, attempts: 5 }).getManifest(ref(f), { signal: ac.signal }),
      code("Cancelled"),
    );
    assert.ok(Date.now() - started < 5000);
    assert.equal(f.requests.length, 1);
  });
});

describe("redirects and credential scoping", () => {
  test("blob redirect to another origin drops Authorization; same-origin redirect keeps it", async () => {
    const storage = await fake((_req, res) =>
      res.writeHead(200, { "content-length": blob.length }).end(blob),
    );
    const basic = `Basic ${Buffer.from("u:p").toString("base64")}`;
    const reg = await fake((req, res) => {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="test"' }).end();
      } else if (req.url?.includes("/blobs/") && !req.url.includes("hop")) {
        res.writeHead(307, { location: `${req.url}?hop=1` }).end();
      } else {
        res.writeHead(302, { location: `${storage.url}/bucket/object?sig=x` }).end();
      }
    });
    const stream = await client().fetchBlob(
      ref(reg),
      { digest: sha(blob), size: blob.length },
      { auth: { username: "u", password: "p" } },
    );
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), blob);
    assert.equal(reg.requests.at(-1)?.headers.authorization, basic, "same-origin hop keeps credentials");
    assert.ok(reg.requests.at(-1)?.url.includes("hop=1"));
    assert.equal(storage.requests.length, 1);
    assert.equal(
      storage.requests[0]?.headers.authorization,
      undefined,
      "credentials never leave the registry host",
    );
  });

  test("redirect loop → Unavailable", async () => {
    const f = await fake((req, res) => res.writeHead(302, { location: req.url ?? "/" }).end());
    await assert.rejects(
      client().fetchBlob(ref(f), { digest: sha(blob), size: blob.length }),
      code("Unavailable", /too many redirects/),
    );
  });

  test("mirror first, upstream after a mirror 404; CRI credentials only go upstream", async () => {
    const mirror = await fake((_req, res) => res.writeHead(404).end());
    const upstream = await fake((req, res) => {
      if (!req.headers.authorization) res.writeHead(401, { "www-authenticate": 'Basic realm="x"' }).end();
      else sendManifest(res);
    });
    const c = client({ hosts: { mirrors: { [upstream.host]: { endpoints: [mirror.url] } } } });
    const m = await c.getManifest(ref(upstream), { auth: { username: "u", password: "p" } });
    assert.equal(m.digest, manifestDigest);
    assert.equal(mirror.requests.length, 1);
    assert.equal(mirror.requests[0]?.headers.authorization, undefined);
    assert.equal(mirror.requests[0]?.url, "/v2/test/img/manifests/v1");
  });
});

const lanAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && !a.internal && a.family === "IPv4")?.address;

describe("insecure registries", { skip: lanAddress ? false : "no non-loopback IPv4 address" }, () => {
  test("https fails against a plain-http registry; `insecure` falls back to http", async () => {
    const f = await fake((_req, res) => sendManifest(res), lanAddress);
    await assert.rejects(
      client({ attempts: 1 }).getManifest(ref(f)),
      code("Unavailable", /cannot reach registry/),
    );
    assert.equal(f.requests.length, 0);
    const c = client({ hosts: { configs: { [f.host]: { insecure: true } } } });
    assert.equal((await c.getManifest(ref(f))).digest, manifestDigest);
    assert.equal(f.requests.length, 1);
    const t0 = Date.now();
    await c.getManifest(ref(f)); // remembered: straight to http
    assert.equal(f.requests.length, 2);
    assert.ok(Date.now() - t0 < 1000);
  });
});

describe("authentication", () => {
  async function tokenRegistry(opts: { tokenField?: "token" | "access_token"; requireUser?: string } = {}) {
    const tokens = await fake((req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      const authz = req.headers.authorization;
      let who = "anonymous";
      if (req.method === "POST") {
        let body = "";
        req.on("data", (c) => {
          body += c;
        });
        req.on("end", () => {
          const form = new URLSearchParams(body);
          assert.equal(form.get("grant_type"), "refresh_token");
          const ok = form.get("refresh_token") === "refresh-me";
          if (!ok) return void res.writeHead(401).end();
          res
            .writeHead(200, { "content-type": "application/json" })
            .end(JSON.stringify({ access_token: `tok-idtoken-${form.get("scope")}` }));
        });
        return;
      }
      if (authz?.startsWith("Basic ")) {
        who = Buffer.from(authz.slice(6), "base64").toString();
        if (who !== "alice:pw") return void res.writeHead(401).end();
      }
      if (opts.requireUser && who === "anonymous") return void res.writeHead(401).end();
      const token = `tok-${who}-${u.searchParams.get("service")}-${u.searchParams.get("scope")}`;
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ [opts.tokenField ?? "token"]: token, expires_in: 300 }));
    });
    const reg = await fake((req, res) => {
      const authz = req.headers.authorization ?? "";
      if (authz.startsWith("Bearer tok-") || authz === "Bearer direct-token") sendManifest(res);
      else {
        res
          .writeHead(401, {
            "www-authenticate": `Bearer realm="${tokens.url}/token",service="fake-registry",scope="repository:test/img:pull"`,
          })
          .end();
      }
    });
    return { tokens, reg };
  }

  test("anonymous bearer token, cached across requests", async () => {
    const { tokens, reg } = await tokenRegistry();
    const c = client();
    await c.getManifest(ref(reg));
    await c.getManifest(ref(reg));
    await c.getManifest(ref(reg, { tag: "v2" }));
    assert.equal(tokens.requests.length, 1, "one token for the same scope");
    assert.equal(reg.requests.length, 4, "401 once, then the token is sent up front");
    const tokenUrl = new URL(tokens.requests[0]!.url, "http://x");
    assert.equal(tokenUrl.searchParams.get("service"), "fake-registry");
    assert.equal(tokenUrl.searchParams.get("scope"), "repository:test/img:pull");
  });

  test("basic credentials on the token request; tokens are per credentials; access_token accepted", async () => {
    const { tokens, reg } = await tokenRegistry({ tokenField: "access_token", requireUser: "alice" });
    const c = client();
    await c.getManifest(ref(reg), { auth: { username: "alice", password: "pw" } });
    assert.match(String(reg.requests.at(-1)?.headers.authorization), /^Bearer tok-alice:pw-/);
    await assert.rejects(
      c.getManifest(ref(reg), { auth: { username: "alice", password: "nope" } }),
      code("Unauthenticated", /rejected the credentials/),
    );
    await assert.rejects(c.getManifest(ref(reg)), code("Unauthenticated", /anonymous/));
    assert.equal(tokens.requests.length, 3);
  });

  test("CRI auth field (base64 user:pass) works", async () => {
    const { reg } = await tokenRegistry({ requireUser: "alice" });
    await client().getManifest(ref(reg), { auth: { auth: Buffer.from("alice:pw").toString("base64") } });
  });

  test("identity token → POST refresh_token grant", async () => {
    const { tokens, reg } = await tokenRegistry();
    await client().getManifest(ref(reg), { auth: { identityToken: "refresh-me" } });
    assert.equal(tokens.requests[0]?.method, "POST");
  });

  test("registry_token is sent directly", async () => {
    const { tokens, reg } = await tokenRegistry();
    await client().getManifest(ref(reg), { auth: { registryToken: "direct-token" } });
    assert.equal(tokens.requests.length, 0);
    assert.equal(reg.requests.length, 1);
  });

  test("hosts config credentials are used for their host", async () => {
    const { reg } = await tokenRegistry({ requireUser: "alice" });
    const c = client({ hosts: { configs: { [reg.host]: { auth: { username: "alice", password: "pw" } } } } });
    await c.getManifest(ref(reg));
  });

  test("401 without a usable challenge → Unauthenticated", async () => {
    const f = await fake((_req, res) => res.writeHead(401).end());
    await assert.rejects(client().getManifest(ref(f)), code("Unauthenticated", /no WWW-Authenticate/));
    const g = await fake((_req, res) => res.writeHead(401, { "www-authenticate": 'Basic realm="x"' }).end());
    await assert.rejects(client().getManifest(ref(g)), code("Unauthenticated", /no credentials/));
    await assert.rejects(
      client().getManifest(ref(g), { auth: { username: "a", password: "b" } }),
      code("Unauthenticated"),
    );
  });
});
