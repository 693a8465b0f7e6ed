/** berth.v1.Images: Berth's own image RPCs (offline import), served beside the CRI. */
import { once } from "node:events";
import { Readable } from "node:stream";
import {
  type ImportRequest,
  ImportResponse,
  type PullProgressRequest,
  PullProgressResponse,
} from "../api/gen/berth/v1/berth.js";
import type { ServerStreamCall, ServiceImplementation } from "../api/grpc/server.js";
import type { ImageBackend } from "../backend/backend.js";
import type { Logger } from "../common/logger.js";
import { clientStreaming } from "./boundary.js";

export function berthImagesService(opts: { logger: Logger; images: ImageBackend }): ServiceImplementation {
  const { logger, images } = opts;
  /** Samples the pull's progress every interval until it ends or the client goes away. */
  const pullProgress = (call: ServerStreamCall<PullProgressRequest, PullProgressResponse>) => {
    const interval = Math.min(Math.max(call.request.intervalMs || 200, 50), 5000);
    let gone = false;
    call.on("cancelled", () => {
      gone = true;
    });
    void (async () => {
      const waitUntil = Date.now() + 10_000;
      let seen = false;
      while (!gone) {
        const p = images.pullProgress(call.request.image);
        if (p) seen = true;
        else if (seen || Date.now() > waitUntil) break;
        if (p) {
          const msg = PullProgressResponse.fromPartial({
            layers: p.layers.map((l) => ({ ...l, size: BigInt(l.size), downloaded: BigInt(l.downloaded) })),
          });
          if (!call.write(msg)) await once(call, "drain");
          if (p.finished) break;
        }
        await new Promise((r) => setTimeout(r, interval));
      }
      if (!gone) {
        if (seen) call.write(PullProgressResponse.fromPartial({ done: true }));
        call.end();
      }
    })().catch((err: unknown) => {
      logger.warn({ err, method: "PullProgress" }, "progress stream failed");
      call.end();
    });
  };
  return {
    pullProgress,
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
