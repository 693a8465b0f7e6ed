/**
 * The Docker backend's images: pulls through the engine (X-Registry-Auth from the CRI
 * AuthConfig or the registry config; Berth's mirrors tried first, the image then tagged under
 * the name asked for), and the engine's images shown as the CRI expects them.
 */
import type { Readable } from "node:stream";
import type {
  AuthConfig,
  FilesystemUsage,
  Image,
  ImageFilter,
  ImageSpec,
} from "../../api/gen/runtime/v1/api.js";
import { abortReason, isBerthError, notFound, unauthenticated } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { epochNowNs } from "../../common/time.js";
import type { RegistryConfig } from "../../config/config.js";
import type { DockerEngine } from "../../docker/engine.js";
import { ProgressError, progressMessages } from "../../docker/frames.js";
import { formatName, formatRef, type ImageRef, parseReference } from "../../image/reference.js";
import type { Credentials } from "../../image/registry/auth.js";
import { resolveEndpoints } from "../../image/registry/hosts.js";
import type { ImageBackend, PullProgress, WithInfo } from "../backend.js";
import { verboseInfo } from "../verbose-info.js";

interface DockerImage {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Size: number;
  Config?: { User?: string } | null;
}

function imageUser(user: string | undefined): Pick<Image, "uid" | "username"> {
  const name = (user ?? "").split(":")[0] ?? "";
  if (name === "") return { username: "" };
  if (/^\d+$/.test(name)) return { uid: { value: BigInt(name) }, username: "" };
  return { username: name };
}

function parsed(list: string[] | null | undefined): ImageRef[] {
  const refs: ImageRef[] = [];
  for (const name of list ?? []) {
    if (name.startsWith("<none>")) continue;
    try {
      refs.push(parseReference(name));
    } catch {
      // a name Docker keeps that is no reference: not shown
    }
  }
  return refs;
}

/** Mirror host (`host:port`) → the registries it mirrors, from `registry.mirrors`. */
export function mirrorHosts(registry: Pick<RegistryConfig, "mirrors">): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [upstream, { endpoints }] of Object.entries(registry.mirrors)) {
    for (const endpoint of endpoints) {
      let host: string;
      try {
        host = new URL(endpoint).host;
      } catch {
        continue;
      }
      const set = out.get(host) ?? new Set<string>();
      set.add(upstream);
      out.set(host, set);
    }
  }
  return out;
}

/**
 * The image's names as the CRI sees them. A pull through a mirror leaves Docker with the
 * mirror's names (`mirror/repo:tag`, `mirror/repo@digest`) beside the tag Berth adds under the
 * registry asked for; Docker keeps a repo digest only while a tag of that repository lives, so
 * the mirror's tag stays in Docker and is hidden here, and the digest is shown under the
 * registry the mirror stands for.
 */
export function criNames(
  tags: readonly ImageRef[],
  digests: readonly ImageRef[],
  mirrors: ReadonlyMap<string, ReadonlySet<string>>,
): { repoTags: string[]; repoDigests: string[] } {
  const mirrorsFor = (t: ImageRef, u: ImageRef) =>
    u !== t && u.path === t.path && mirrors.get(t.domain)?.has(u.domain) === true;
  const shown = tags.filter((t) => !tags.some((u) => mirrorsFor(t, u) && u.tag === t.tag));
  const repoDigests = new Set<string>();
  for (const d of digests) {
    const homes = shown.filter((t) => mirrorsFor(d, t)).map((t) => t.domain);
    for (const domain of homes.length > 0 ? homes : [d.domain]) {
      repoDigests.add(formatRef({ domain, path: d.path, ...(d.digest ? { digest: d.digest } : {}) }));
    }
  }
  return { repoTags: shown.map(formatRef), repoDigests: [...repoDigests] };
}

export function toCriImage(
  img: DockerImage,
  mirrors: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
): Image {
  return {
    id: img.Id,
    ...criNames(parsed(img.RepoTags), parsed(img.RepoDigests), mirrors),
    size: BigInt(img.Size),
    ...imageUser(img.Config?.User),
    spec: { image: img.Id, annotations: {}, userSpecifiedImage: "", runtimeHandler: "" },
    pinned: false,
  };
}

/** The X-Registry-Auth header: base64url JSON of Docker's AuthConfig. */
export function registryAuthHeader(creds: Credentials | undefined, server: string): Record<string, string> {
  if (!creds) return {};
  const body = {
    username: creds.username ?? "",
    password: creds.password ?? "",
    serveraddress: server,
    identitytoken: creds.identityToken ?? "",
    registrytoken: creds.registryToken ?? "",
  };
  return { "X-Registry-Auth": Buffer.from(JSON.stringify(body)).toString("base64url") };
}

export class DockerImageBackend implements ImageBackend {
  private readonly progress = new Map<string, PullProgress>();
  private readonly mirrors: Map<string, Set<string>>;

  constructor(
    private readonly engine: DockerEngine,
    private readonly registry: RegistryConfig,
    private readonly logger: Logger,
  ) {
    this.mirrors = mirrorHosts(registry);
  }

  private cri(img: DockerImage): Image {
    return toCriImage(img, this.mirrors);
  }

  async pull(image: ImageSpec, auth: AuthConfig | undefined, signal: AbortSignal): Promise<string> {
    const ref = parseReference(image.image);
    const endpoints = resolveEndpoints(ref.domain, this.registry, auth);
    const wanted = formatRef(ref);
    const progress: PullProgress = { layers: [] };
    this.progress.set(image.image, progress);
    let lastError: unknown;
    try {
      for (const ep of endpoints.filter((e) => e.mirror && !e.fallback)) {
        const mirrored: ImageRef = { ...ref, domain: ep.host };
        try {
          await this.pullOne(mirrored, registryAuthHeader(ep.credentials, ep.host), progress, signal);
          if (ref.tag !== undefined) {
            await this.engine.json("POST", `/images/${formatRef(mirrored)}/tag`, {
              query: { repo: formatName(ref), tag: ref.tag },
            });
          }
          return await this.idOf(ref.tag !== undefined ? wanted : formatRef(mirrored));
        } catch (err) {
          if (signal.aborted) throw abortReason(signal, err);
          this.logger.warn(
            { image: wanted, mirror: ep.host, err: (err as Error).message },
            "mirror pull failed",
          );
          lastError = err;
        }
      }
      const upstream = endpoints.find((e) => !e.mirror);
      try {
        await this.pullOne(ref, registryAuthHeader(upstream?.credentials, ref.domain), progress, signal);
      } catch (err) {
        if (signal.aborted) throw abortReason(signal, err);
        if (lastError !== undefined)
          this.logger.warn({ image: wanted }, "every mirror failed, and the registry too");
        throw err;
      }
      return await this.idOf(wanted);
    } finally {
      progress.finished = true;
      setTimeout(() => this.progress.delete(image.image), 60_000).unref();
    }
  }

  private async pullOne(
    ref: ImageRef,
    headers: Record<string, string>,
    progress: PullProgress,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await this.engine.call("POST", "/images/create", {
      query: { fromImage: formatName(ref), tag: ref.digest ?? ref.tag },
      headers,
      signal,
    });
    try {
      for await (const m of progressMessages(res)) {
        if (!m.id || !/^[0-9a-f]{12}$/.test(m.id)) continue;
        let layer = progress.layers.find((l) => l.digest === m.id);
        if (!layer) {
          layer = { digest: m.id, size: 0, downloaded: 0, state: "waiting" };
          progress.layers.push(layer);
        }
        if (m.status === "Downloading") {
          layer.state = "downloading";
          layer.downloaded = m.progressDetail?.current ?? layer.downloaded;
          layer.size = m.progressDetail?.total ?? layer.size;
        } else if (/complete|Already exists/.test(m.status ?? "")) {
          layer.state = "done";
          layer.downloaded = layer.size;
        }
      }
    } catch (err) {
      if (!(err instanceof ProgressError)) throw err;
      const what = `pulling ${formatRef(ref)} through Docker: ${err.message}`;
      if (/unauthorized|authentication required|denied/i.test(err.message)) throw unauthenticated(what);
      if (/not found|manifest unknown/i.test(err.message)) throw notFound(what);
      throw new Error(what);
    }
  }

  private async idOf(name: string): Promise<string> {
    return (await this.engine.json<DockerImage>("GET", `/images/${name}/json`)).Id;
  }

  private async inspect(name: string): Promise<DockerImage | undefined> {
    if (name === "") return undefined;
    const asked = /^[0-9a-f]{64}$/.test(name) ? `sha256:${name}` : name;
    try {
      return await this.engine.json<DockerImage>("GET", `/images/${encodeURIComponent(asked)}/json`);
    } catch (err) {
      if (!isBerthError(err, "NotFound") && !isBerthError(err, "InvalidArgument")) throw err;
    }
    return asked.includes("@") ? this.byCriDigest(asked) : undefined;
  }

  /** An image asked for by a digest name Docker does not know (it knows the mirror's). */
  private async byCriDigest(name: string): Promise<DockerImage | undefined> {
    let wanted: string;
    try {
      wanted = formatRef(parseReference(name));
    } catch {
      return undefined;
    }
    const list = (await this.engine.json<DockerImage[]>("GET", "/images/json")) ?? [];
    const hit = list.find((img) => this.cri(img).repoDigests.includes(wanted));
    return hit ? this.inspect(hit.Id) : undefined;
  }

  async list(filter: ImageFilter | undefined): Promise<Image[]> {
    const ref = filter?.image?.image ?? "";
    if (ref !== "") {
      const img = await this.inspect(ref);
      return img ? [this.cri(img)] : [];
    }
    const list = await this.engine.json<DockerImage[]>("GET", "/images/json");
    return (list ?? []).map((img) => this.cri(img));
  }

  async status(image: ImageSpec, verbose: boolean): Promise<WithInfo<Image> | undefined> {
    const img = await this.inspect(image.image);
    if (!img) return undefined;
    return { status: this.cri(img), info: verbose ? verboseInfo({ docker: img }) : {} };
  }

  async remove(image: ImageSpec): Promise<void> {
    const img = await this.inspect(image.image);
    if (!img) return;
    try {
      await this.engine.json("DELETE", `/images/${img.Id}`, { query: { force: true } });
    } catch (err) {
      if (!isBerthError(err, "NotFound")) throw err;
    }
  }

  async fsInfo(): Promise<{ imageFilesystems: FilesystemUsage[]; containerFilesystems: FilesystemUsage[] }> {
    const info = await this.engine.json<{ DockerRootDir: string; Driver: string }>("GET", "/info");
    const df = await this.engine.json<{ LayersSize?: number }>("GET", "/system/df");
    const fs: FilesystemUsage = {
      timestamp: epochNowNs(),
      fsId: { mountpoint: `${info.DockerRootDir}/${info.Driver}` },
      usedBytes: { value: BigInt(df.LayersSize ?? 0) },
      inodesUsed: { value: 0n },
    };
    return { imageFilesystems: [fs], containerFilesystems: [] };
  }

  pullProgress(image: string): PullProgress | undefined {
    return this.progress.get(image);
  }

  async importArchive(archive: Readable, tag: string): Promise<Image[]> {
    const chunks: Buffer[] = [];
    for await (const c of archive) chunks.push(c as Buffer);
    const res = await this.engine.call("POST", "/images/load", {
      raw: Buffer.concat(chunks),
      query: { quiet: true },
    });
    const loaded: string[] = [];
    for await (const m of progressMessages(res)) {
      const name = /^Loaded image(?: ID)?: (\S+)/.exec(m.stream ?? "")?.[1];
      if (name) loaded.push(name);
    }
    if (tag !== "" && loaded[0]) {
      const ref = parseReference(tag);
      await this.engine.json("POST", `/images/${loaded[0]}/tag`, {
        query: { repo: formatName(ref), tag: ref.tag ?? "latest" },
      });
    }
    const out: Image[] = [];
    for (const name of loaded) {
      const img = await this.inspect(name);
      if (img) out.push(this.cri(img));
    }
    return out;
  }
}
