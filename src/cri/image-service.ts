/** runtime.v1.ImageService: thin handlers over the image backend. */

import {
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
import type { ServiceImplementation } from "../api/grpc/server.js";
import type { ImageBackend } from "../backend/backend.js";
import { invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { unary } from "./boundary.js";

function requireImage(spec: ImageSpec | undefined): ImageSpec {
  if (!spec || spec.image === "") {
    throw invalidArgument("image reference is required (ImageSpec.image is empty)");
  }
  return spec;
}

export function imageService(opts: { logger: Logger; images: ImageBackend }): ServiceImplementation {
  const { logger, images } = opts;
  return {
    listImages: unary(logger, "ListImages", async (req: ListImagesRequest) =>
      ListImagesResponse.fromPartial({ images: await images.list(req.filter) }),
    ),
    imageStatus: unary(logger, "ImageStatus", async (req: ImageStatusRequest) => {
      const found = await images.status(requireImage(req.image), req.verbose);
      return ImageStatusResponse.fromPartial(found ? { image: found.status, info: found.info } : {});
    }),
    // Cancelled by the client, past its deadline or berthd shutting down: the pull stops at once.
    pullImage: unary(logger, "PullImage", async (req: PullImageRequest, _log, signal) =>
      PullImageResponse.fromPartial({
        imageRef: await images.pull(requireImage(req.image), req.auth, signal),
      }),
    ),
    removeImage: unary(logger, "RemoveImage", async (req: RemoveImageRequest) => {
      await images.remove(requireImage(req.image));
      return RemoveImageResponse.fromPartial({});
    }),
    imageFsInfo: unary(logger, "ImageFsInfo", async (_req: ImageFsInfoRequest) =>
      ImageFsInfoResponse.fromPartial(await images.fsInfo()),
    ),
  };
}
