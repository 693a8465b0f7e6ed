/**
 * PullImage: resolve the reference, fetch and verify the manifest (choosing this node's
 * platform from an index), fetch the config, then stream every layer
 * download → verify → unpack in parallel, and record the image last.
 * Concurrent pulls of the same reference share one pull; of the same layer, one unpack.
 *
 * A pull takes its caller's AbortSignal: aborting stops the downloads and retries at once and
 * leaves nothing behind (see install.ts). Shared work is aborted only once no caller waits for
 * it any more (SingleFlight), so one kubelet giving up never fails another's pull.
 */

import { Transform } from "node:stream";
import { SingleFlight } from "../common/concurrency.js";
import type { Logger } from "../common/logger.js";
import type { BerthConfig } from "../config/config.js";
import type { ImageRecord } from "./image-store.js";
import { type InstallDeps, installImage } from "./install.js";
import { formatName, formatRef, type ImageRef, parseReference } from "./reference.js";
import type { CriAuthConfig } from "./registry/auth.js";
import type { RegistryClient } from "./registry/client.js";
import { parseImageConfig } from "./registry/oci.js";
import { defaultPlatform, formatPlatform, parsePlatform } from "./registry/platform.js";

export type PullAuth = CriAuthConfig;

/** A pull in flight, as berth.v1.Images/PullProgress reports it. */
export interface PullProgress {
  layers: { digest: string; size: number; downloaded: number; state: "waiting" | "downloading" | "done" }[];
  /** Set when the pull is over (succeeded or not). */
  finished?: boolean;
}

const PROGRESS_LINGER_MS = 5000;

export type PullDeps = InstallDeps & { config: BerthConfig };

export class Puller {
  private readonly inflight = new SingleFlight<ImageRecord>();
  /** Made at the first pull: the registry client is loaded then, not at start-up. */
  private registry: Promise<RegistryClient> | undefined;
  private readonly logger: Logger;
  /** Pulls in flight by normalised reference (layer byte counts, for progress). */
  private readonly progress = new Map<string, PullProgress>();

  constructor(private readonly deps: PullDeps) {
    this.logger = deps.logger;
  }

  private client(): Promise<RegistryClient> {
    const { config, logger } = this.deps;
    this.registry ??= import("./registry/client.js").then(
      ({ RegistryClient }) =>
        new RegistryClient({
          hosts: config.registry,
          logger,
          maxManifestBytes: config.image.maxManifestBytes,
          connectTimeoutMs: config.image.connectTimeoutSeconds * 1000,
          headersTimeoutMs: config.image.responseHeaderTimeoutSeconds * 1000,
          bodyTimeoutMs: config.image.bodyIdleTimeoutSeconds * 1000,
        }),
    );
    return this.registry;
  }

  pull(reference: string, auth?: PullAuth, signal?: AbortSignal): Promise<ImageRecord> {
    const ref = parseReference(reference);
    const key = `${formatRef(ref)}\u0000${auth ? JSON.stringify(auth) : ""}`;
    return this.inflight.run(key, (shared) => this.pullOnce(ref, auth, shared), signal);
  }

  /** The progress of a pull of `reference` in flight, or undefined. */
  progressOf(reference: string): PullProgress | undefined {
    return this.progress.get(formatRef(parseReference(reference)));
  }

  private async pullOnce(
    ref: ImageRef,
    auth: PullAuth | undefined,
    signal: AbortSignal,
  ): Promise<ImageRecord> {
    const key = formatRef(ref);
    const progress: PullProgress = { layers: [] };
    this.progress.set(key, progress);
    try {
      return await this.pullTracked(ref, auth, signal, progress);
    } finally {
      // Kept a little while, finished: a watcher that comes late (a fast pull) still sees it.
      progress.finished = true;
      setTimeout(() => {
        if (this.progress.get(key) === progress) this.progress.delete(key);
      }, PROGRESS_LINGER_MS).unref();
    }
  }

  private async pullTracked(
    ref: ImageRef,
    auth: PullAuth | undefined,
    signal: AbortSignal,
    progress: PullProgress,
  ): Promise<ImageRecord> {
    const started = Date.now();
    const { config } = this.deps;
    const session = (await this.client()).session(ref, auth, signal);
    // One resolver for every pull: the index (nested ones too) → this node's platform → manifest.
    const wanted = config.image.platform ? parsePlatform(config.image.platform) : defaultPlatform();
    const resolved = await session.resolveImage(wanted);
    const manifest = resolved.manifest.parsed;
    const manifestDigest = resolved.manifest.digest;
    const manifestBytes = resolved.manifest.bytes;
    const index = resolved.index && { digest: resolved.index.digest, bytes: resolved.index.bytes };
    if (index)
      this.logger.debug({ platform: formatPlatform(wanted), manifest: manifestDigest }, "platform chosen");
    progress.layers = manifest.layers.map((l) => ({
      digest: l.digest,
      size: l.size,
      downloaded: 0,
      state: "waiting",
    }));
    const configBytes = await session.fetchBlobBuffer(manifest.config, config.image.maxManifestBytes);
    const imageConfig = parseImageConfig(configBytes);
    const name = formatName(ref);
    const record = await installImage(this.deps, {
      manifest,
      manifestDigest,
      manifestBytes,
      ...(index ? { index } : {}),
      config: imageConfig,
      configDigest: manifest.config.digest,
      configBytes,
      repoTags: ref.tag !== undefined ? [`${name}:${ref.tag}`] : [],
      repoDigests: [`${name}@${resolved.digest}`],
      openLayer: async (desc, layerSignal) => {
        const p = progress.layers.find((l) => l.digest === desc.digest);
        const body = await session.fetchBlob(desc, layerSignal);
        if (!p) return body;
        p.state = "downloading";
        p.downloaded = 0;
        const count = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            p.downloaded += chunk.length;
            cb(null, chunk);
          },
          flush(cb) {
            p.state = "done";
            cb();
          },
        });
        body.on("error", (err) => count.destroy(err));
        return body.pipe(count);
      },
      signal,
    });
    this.logger.info(
      { image: formatRef(ref), id: record.id, layers: record.layers.length, ms: Date.now() - started },
      "image pulled",
    );
    return record;
  }

  async close(): Promise<void> {
    await (await this.registry)?.close();
  }
}
