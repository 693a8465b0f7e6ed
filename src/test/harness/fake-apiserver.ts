/**
 * Just enough of a Kubernetes API server (and the kubelet behind it) for kubectl's exec,
 * attach and port-forward to reach berthd's streaming server: pod discovery and GET, then, for
 * an upgrade to pods/NAME/{exec,attach,portforward}, the CRI call the kubelet makes and a raw
 * proxy of the upgraded connection to the URL it returns, as the kubelet's proxy does. So the
 * Go client code that kubectl and crictl share (client-go remotecommand/portforward, spdystream,
 * gorilla websocket) talks to berthd's server. Listens on 127.0.0.1 only.
 */
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import net, { type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { RuntimeClient } from "./cri.js";

export interface FakeContainer {
  name: string;
  id: string;
  stdin?: boolean;
  tty?: boolean;
}

export interface FakePod {
  name: string;
  sandboxId: string;
  containers: FakeContainer[];
}

/** One proxied upgrade: the subresource and the protocol the client asked for. */
export interface SeenUpgrade {
  subresource: string;
  /** "SPDY/3.1" or "websocket" (the Upgrade header). */
  upgrade: string;
}

const NAMESPACE = "default";
const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(?:\/(exec|attach|portforward))?$/;

const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

const notFoundStatus = (what: string) => ({
  kind: "Status",
  apiVersion: "v1",
  status: "Failure",
  message: `${what} not found`,
  reason: "NotFound",
  code: 404,
});

function podObject(p: FakePod): object {
  return {
    kind: "Pod",
    apiVersion: "v1",
    metadata: { name: p.name, namespace: NAMESPACE, uid: `uid-${p.name}` },
    spec: {
      containers: p.containers.map((c) => ({
        name: c.name,
        image: "busybox",
        stdin: !!c.stdin,
        tty: !!c.tty,
      })),
    },
    status: {
      phase: "Running",
      containerStatuses: p.containers.map((c) => ({
        name: c.name,
        ready: true,
        containerID: `berth://${c.id}`,
        state: { running: {} },
      })),
    },
  };
}

const DISCOVERY: Record<string, object> = {
  "/api": { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] },
  "/apis": { kind: "APIGroupList", apiVersion: "v1", groups: [] },
  "/version": { major: "1", minor: "30", gitVersion: "v1.30.0" },
  "/api/v1": {
    kind: "APIResourceList",
    groupVersion: "v1",
    resources: [
      {
        name: "pods",
        singularName: "pod",
        namespaced: true,
        kind: "Pod",
        verbs: ["get", "list"],
        shortNames: ["po"],
      },
      ...["attach", "exec", "portforward"].map((sub) => ({
        name: `pods/${sub}`,
        singularName: "",
        namespaced: true,
        kind: `Pod${sub === "portforward" ? "PortForward" : sub[0]?.toUpperCase() + sub.slice(1)}Options`,
        verbs: ["create", "get"],
      })),
    ],
  },
};

export class FakeApiserver {
  /** Every upgrade proxied so far, in order. */
  readonly upgrades: SeenUpgrade[] = [];
  private readonly sockets = new Set<Duplex>();

  private constructor(
    private readonly server: Server,
    private readonly rt: RuntimeClient,
    private readonly pods: FakePod[],
  ) {}

  static async start(rt: RuntimeClient, pods: FakePod[]): Promise<FakeApiserver> {
    const server = createServer();
    const api = new FakeApiserver(server, rt, pods);
    server.on("request", (req, res) => api.serve(req, res));
    server.on("upgrade", (req, socket, head) => {
      api.sockets.add(socket);
      socket.once("close", () => api.sockets.delete(socket));
      api.upgrade(req, socket, head).catch((err: unknown) => {
        socket.end(`HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\n\r\n${String(err)}`);
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Writes a kubeconfig for this server (no credentials, namespace "default") to `path`. */
  async writeKubeconfig(path: string): Promise<string> {
    await writeFile(
      path,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "fake", cluster: { server: this.url } }],
        users: [{ name: "nobody", user: {} }],
        contexts: [{ name: "fake", context: { cluster: "fake", user: "nobody", namespace: NAMESPACE } }],
        "current-context": "fake",
      }),
    );
    return path;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private pod(ns: string, name: string): FakePod | undefined {
    return ns === NAMESPACE ? this.pods.find((p) => p.name === name) : undefined;
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const m = POD_PATH.exec(path);
    const pod = m && !m[3] ? this.pod(m[1] ?? "", m[2] ?? "") : undefined;
    const found = req.method !== "GET" ? undefined : (DISCOVERY[path] ?? (pod && podObject(pod)));
    if (found) json(res, 200, found);
    else json(res, 404, notFoundStatus(path));
  }

  /** The kubelet's part: the CRI call for the subresource, then a raw proxy to its URL. */
  private async upgrade(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const m = POD_PATH.exec(url.pathname);
    const sub = m?.[3];
    const pod = sub ? this.pod(m?.[1] ?? "", m?.[2] ?? "") : undefined;
    const target = pod && sub ? await this.streamingUrl(pod, sub, url.searchParams) : undefined;
    if (!pod || !sub || !target) {
      client.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n");
      return;
    }
    this.upgrades.push({ subresource: sub, upgrade: String(req.headers.upgrade ?? "") });
    const dest = new URL(target);
    const upstream = net.connect(Number(dest.port), dest.hostname);
    this.sockets.add(upstream);
    upstream.once("close", () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    client.once("close", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    await once(upstream, "connect");
    // The same request on the streaming URL: method and upgrade headers as the client sent them.
    let head1 = `${req.method} ${dest.pathname}${dest.search} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i] ?? "";
      head1 += `${k}: ${k.toLowerCase() === "host" ? dest.host : req.rawHeaders[i + 1]}\r\n`;
    }
    upstream.write(`${head1}\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  }

  /** The CRI call the kubelet makes for `sub` (undefined for an unknown container). */
  private async streamingUrl(pod: FakePod, sub: string, q: URLSearchParams): Promise<string | undefined> {
    if (sub === "portforward") {
      const port = q.getAll("ports").map(Number);
      return (await this.rt.call<{ url: string }>("portForward", { podSandboxId: pod.sandboxId, port })).url;
    }
    const name = q.get("container") ?? pod.containers[0]?.name;
    const container = pod.containers.find((c) => c.name === name);
    if (!container) return undefined;
    const flag = (k: string) => q.get(k) === "true" || q.get(k) === "1";
    const req = {
      containerId: container.id,
      ...(sub === "exec" ? { cmd: q.getAll("command") } : {}),
      stdin: flag("stdin"),
      stdout: flag("stdout"),
      stderr: flag("stderr"),
      tty: flag("tty"),
    };
    return (await this.rt.call<{ url: string }>(sub, req)).url;
  }
}
