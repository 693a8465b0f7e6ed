/** runtime.v1.ImageService: thin handlers over the ImageManager. */
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  type Image,
  type ImageFsInfoRequest,
  ImageFsInfoResponse,
  type ImageSpec,
  type ImageStatusRequest,
  ImageStatusResponse,
  type ListImagesRequest,
  ListImagesResponse,
  type PullImageRequest,
  PullImageResponse,
  type RemoveImageRequest,
  RemoveImageResponse,
} from "../api/gen/runtime/v1/api.js";
import { invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import type { ImageManager } from "../image/image-manager.js";
import type { ImageRecord } from "../image/image-store.js";
import { unary } from "./boundary.js";

export interface ImageServiceOptions {
  logger: Logger;
  images: ImageManager;
}

function requireImage(spec: ImageSpec | undefined): string {
  const ref = spec?.image ?? "";
  if (ref === "") throw invalidArgument("image reference is required (ImageSpec.image is empty)");
  return ref;
}

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

export function imageService(opts: ImageServiceOptions): UntypedServiceImplementation {
  const { logger, images } = opts;
  return {
    listImages: unary(logger, "ListImages", async (req: ListImagesRequest) => {
      const filter = req.filter?.image?.image ?? "";
      const list = filter === "" ? images.list() : [images.find(filter)].filter((i) => i !== undefined);
      return ListImagesResponse.fromPartial({ images: list.map(toCriImage) });
    }),
    imageStatus: unary(logger, "ImageStatus", async (req: ImageStatusRequest) => {
      const img = images.find(requireImage(req.image));
      if (!img) return ImageStatusResponse.fromPartial({});
      const info: Record<string, string> = {};
      if (req.verbose) {
        info["info"] = JSON.stringify({
          id: img.id,
          manifestDigest: img.manifestDigest,
          indexDigest: img.indexDigest,
          mediaType: img.mediaType,
          platform: img.platform,
          chainId: img.layers.at(-1)?.chainId,
          layers: img.layers,
          imageSpec: await images.readConfig(img),
        });
      }
      return ImageStatusResponse.fromPartial({ image: toCriImage(img), info });
    }),
    // Cancelled by the client, past its deadline or berthd shutting down: the pull stops at once.
    pullImage: unary(logger, "PullImage", async (req: PullImageRequest, _log, signal) => {
      const ref = requireImage(req.image);
      const a = req.auth;
      const img = await images.pull(
        ref,
        a && {
          username: a.username,
          password: a.password,
          auth: a.auth,
          serverAddress: a.serverAddress,
          identityToken: a.identityToken,
          registryToken: a.registryToken,
        },
        signal,
      );
      return PullImageResponse.fromPartial({ imageRef: img.id });
    }),
    removeImage: unary(logger, "RemoveImage", async (req: RemoveImageRequest) => {
      await images.remove(requireImage(req.image));
      return RemoveImageResponse.fromPartial({});
    }),
    imageFsInfo: unary(logger, "ImageFsInfo", async (_req: ImageFsInfoRequest) => {
      const usage = await images.usage();
      const fs = {
        timestamp: BigInt(Date.now()) * 1_000_000n,
        fsId: { mountpoint: usage.mountpoint },
        usedBytes: { value: BigInt(usage.bytes) },
        inodesUsed: { value: BigInt(usage.inodes) },
      };
      return ImageFsInfoResponse.fromPartial({ imageFilesystems: [fs] });
    }),
  };
}
