/** The native image backend: Berth's own content store, snapshots and pull (src/image). */
import type { Readable } from "node:stream";
import type {
  AuthConfig,
  FilesystemUsage,
  Image,
  ImageFilter,
  ImageSpec,
} from "../../api/gen/runtime/v1/api.js";
import { epochNowNs } from "../../common/time.js";
import type { ImageManager } from "../../image/image-manager.js";
import type { ImageRecord } from "../../image/image-store.js";
import type { ImageBackend, PullProgress, WithInfo } from "../backend.js";
import { verboseInfo } from "../verbose-info.js";

/** uid when the image's User is numeric ("1000" or "1000:1000"), else the user name (as containerd). */
function imageUser(user: string): Pick<Image, "uid" | "username"> {
  const name = user.split(":")[0] ?? "";
  if (name === "") return { username: "" };
  if (/^\d+$/.test(name)) return { uid: { value: BigInt(name) }, username: "" };
  return { username: name };
}

export function toCriImage(img: ImageRecord): Image {
  return {
    id: img.id,
    repoTags: img.repoTags,
    repoDigests: img.repoDigests,
    size: BigInt(img.size),
    ...imageUser(img.user),
    spec: { image: img.id, annotations: {}, userSpecifiedImage: "", runtimeHandler: "" },
    pinned: false,
  };
}

export class NativeImageBackend implements ImageBackend {
  constructor(private readonly images: ImageManager) {}

  async pull(image: ImageSpec, auth: AuthConfig | undefined, signal: AbortSignal): Promise<string> {
    const img = await this.images.pull(
      image.image,
      auth && {
        username: auth.username,
        password: auth.password,
        auth: auth.auth,
        serverAddress: auth.serverAddress,
        identityToken: auth.identityToken,
        registryToken: auth.registryToken,
      },
      signal,
    );
    return img.id;
  }

  async list(filter: ImageFilter | undefined): Promise<Image[]> {
    const ref = filter?.image?.image ?? "";
    const list = ref === "" ? this.images.list() : [this.images.find(ref)].filter((i) => i !== undefined);
    return list.map(toCriImage);
  }

  async status(image: ImageSpec, verbose: boolean): Promise<WithInfo<Image> | undefined> {
    const img = this.images.find(image.image);
    if (!img) return undefined;
    const info = verbose
      ? verboseInfo({
          id: img.id,
          manifestDigest: img.manifestDigest,
          indexDigest: img.indexDigest,
          mediaType: img.mediaType,
          platform: img.platform,
          chainId: img.layers.at(-1)?.chainId,
          layers: img.layers,
          imageSpec: await this.images.readConfig(img),
        })
      : {};
    return { status: toCriImage(img), info };
  }

  remove(image: ImageSpec): Promise<void> {
    return this.images.remove(image.image);
  }

  async fsInfo(): Promise<{ imageFilesystems: FilesystemUsage[]; containerFilesystems: FilesystemUsage[] }> {
    const usage = await this.images.usage();
    const fs: FilesystemUsage = {
      timestamp: epochNowNs(),
      fsId: { mountpoint: usage.mountpoint },
      usedBytes: { value: BigInt(usage.bytes) },
      inodesUsed: { value: BigInt(usage.inodes) },
    };
    return { imageFilesystems: [fs], containerFilesystems: [] };
  }

  pullProgress(image: string): PullProgress | undefined {
    return this.images.pullProgress(image);
  }

  async importArchive(archive: Readable, tag: string): Promise<Image[]> {
    return (await this.images.import(archive, tag)).map(toCriImage);
  }
}
