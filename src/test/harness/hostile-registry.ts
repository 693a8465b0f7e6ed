/**
 * Registries that misbehave on purpose, in this process on 127.0.0.1 (the real registry of
 * registry.ts cannot be made slow):
 *   - `startTricklingRegistry`: serves one image's manifest (under each of `tags`) and config at
 *     once, but the blobs listed in `trickle` one byte per `intervalMs` (and the rest at once after
 *     `releaseAfterMs`, if given), and records each such download's connection (when it started,
 *     when berthd hung up);
 *   - `startSilentServer`: accepts TCP connections and never answers.
 * `stop()` ends every connection and the listener.
 */
import { createServer as createHttpServer } from "node:http";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import type { BuiltImage } from "../../tools/oci-builder.js";

export interface TrickledDownload {
  digest: string;
  startedAt: number;
  /** When the connection closed (berthd hung up), if it has. */
  closedAt?: number;
  bytesSent: number;
}

export interface TricklingRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  downloads: TrickledDownload[];
  stop(): Promise<void>;
}

export async function startTricklingRegistry(
  image: BuiltImage,
  opts: { repo: string; tags: string[]; trickle: string[]; intervalMs?: number; releaseAfterMs?: number },
): Promise<TricklingRegistry> {
  const blobs = new Map<string, Buffer>([[image.configDigest, image.configBytes]]);
  for (const l of image.layers) blobs.set(l.descriptor.digest, l.blob);
  const downloads: TrickledDownload[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = createHttpServer((req, res) => {
    const url = req.url ?? "";
    if (url === "/v2/" || url === "/v2") {
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
      return;
    }
    const manifest = `/v2/${opts.repo}/manifests/`;
    const reference = url.startsWith(manifest) ? url.slice(manifest.length) : undefined;
    if (reference !== undefined && (opts.tags.includes(reference) || reference === image.manifestDigest)) {
      res.writeHead(200, {
        "content-type": image.manifest.mediaType,
        "content-length": image.manifestBytes.length,
        "docker-content-digest": image.manifestDigest,
      });
      res.end(image.manifestBytes);
      return;
    }
    const prefix = `/v2/${opts.repo}/blobs/`;
    const blob = url.startsWith(prefix) ? blobs.get(url.slice(prefix.length)) : undefined;
    if (blob === undefined) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"UNKNOWN"}]}');
      return;
    }
    const digest = url.slice(prefix.length);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": blob.length });
    if (!opts.trickle.includes(digest)) {
      res.end(blob);
      return;
    }
    // The headers now, not with the first byte a second later (after a 1 s header timeout).
    res.flushHeaders();
    const d: TrickledDownload = { digest, startedAt: Date.now(), bytesSent: 0 };
    downloads.push(d);
    const timer = setInterval(() => {
      if (d.bytesSent >= blob.length) return;
      const release = opts.releaseAfterMs !== undefined && Date.now() - d.startedAt >= opts.releaseAfterMs;
      const n = release ? blob.length - d.bytesSent : 1;
      res.write(blob.subarray(d.bytesSent, d.bytesSent + n));
      d.bytesSent += n;
      if (d.bytesSent >= blob.length) res.end();
    }, opts.intervalMs ?? 1000);
    timers.add(timer);
    res.socket?.once("close", () => {
      d.closedAt = Date.now();
      clearInterval(timer);
      timers.delete(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    downloads,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface SilentServer {
  /** "127.0.0.1:PORT" */
  host: string;
  /** Connections accepted so far. */
  readonly connections: number;
  stop(): Promise<void>;
}

export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createNetServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.once("close", () => sockets.delete(socket));
    socket.resume(); // read the request, never answer
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
