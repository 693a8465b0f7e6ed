/** berth.v1.Images: Berth's own image RPCs (offline import), served beside the CRI. */
import { Readable } from "node:stream";
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { type ImportRequest, ImportResponse } from "../api/gen/berth/v1/berth.js";
import type { ImageBackend } from "../backend/backend.js";
import type { Logger } from "../common/logger.js";
import { clientStreaming } from "./boundary.js";

export function berthImagesService(opts: {
  logger: Logger;
  images: ImageBackend;
}): UntypedServiceImplementation {
  const { logger, images } = opts;
  return {
    import: clientStreaming(logger, "Import", async (requests: AsyncIterable<ImportRequest>) => {
      let tag = "";
      let first = true;
      async function* chunks(): AsyncGenerator<Buffer> {
        for await (const req of requests) {
          if (first) tag = req.tag;
          first = false;
          if (req.chunk.length > 0) yield Buffer.from(req.chunk);
        }
      }
      // The tag travels in the first message: read it before the archive starts flowing.
      const iterator = chunks();
      const head = await iterator.next();
      async function* rest(): AsyncGenerator<Buffer> {
        if (!head.done) yield head.value;
        yield* iterator;
      }
      const imported = await images.importArchive(Readable.from(rest()), tag);
      return ImportResponse.fromPartial({
        images: imported.map((i) => ({ id: i.id, repoTags: i.repoTags, repoDigests: i.repoDigests })),
      });
    }),
  };
}
