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

/** Docker's short names ("busybox:1", "busybox@sha256:…") in the full form the CRI uses. */
export function fullName(name: string): string | undefined {
  if (name.startsWith("<none>")) return undefined;
  try {
    return formatRef(parseReference(name));
  } catch {
    return undefined;
  }
}

function imageUser(user: string | undefined): Pick<Image, "uid" | "username"> {
  const name = (user ?? "").split(":")[0] ?? "";
  if (name === "") return { username: "" };
  if (/^\d+$/.test(name)) return { uid: { value: BigInt(name) }, username: "" };
  return { username: name };
}

export function toCriImage(img: DockerImage): Image {
  const names = (list: string[] | null | undefined) =>
    (list ?? []).map(fullName).filter((n): n is string => n !== undefined);
  return {
    id: img.Id,
    repoTags: names(img.RepoTags),
    repoDigests: names(img.RepoDigests),
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

  constructor(
    private readonly engine: DockerEngine,
    private readonly registry: RegistryConfig,
    private readonly logger: Logger,
  ) {}

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
            // The mirror's name goes: the image is known under the name asked for only.
            await this.engine.json("DELETE", `/images/${formatRef(mirrored)}`, { query: { noprune: true } });
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
      if (isBerthError(err, "NotFound") || isBerthError(err, "InvalidArgument")) return undefined;
      throw err;
    }
  }

  async list(filter: ImageFilter | undefined): Promise<Image[]> {
    const ref = filter?.image?.image ?? "";
    if (ref !== "") {
      const img = await this.inspect(ref);
      return img ? [toCriImage(img)] : [];
    }
    const list = await this.engine.json<DockerImage[]>("GET", "/images/json");
    return (list ?? []).map(toCriImage);
  }

  async status(image: ImageSpec, verbose: boolean): Promise<WithInfo<Image> | undefined> {
    const img = await this.inspect(image.image);
    if (!img) return undefined;
    return { status: toCriImage(img), info: verbose ? verboseInfo({ docker: img }) : {} };
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
      if (img) out.push(toCriImage(img));
    }
    return out;
  }
}
