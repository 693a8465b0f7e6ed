/**
 * The Docker Engine backend (what cri-dockerd does): the engine does images and containers;
 * Berth keeps its CRI layer, CNI pod networking, CRI-format logs, streaming and events.
 */
import type { Logger } from "../../common/logger.js";
import type { RegistryConfig } from "../../config/config.js";
import { DockerEngine } from "../../docker/engine.js";
import type { CniClient } from "../../network/cni.js";
import { CpuRateCache } from "../../stats/cpu-rate.js";
import type { Backend } from "../backend.js";
import { DockerContainerBackend } from "./containers.js";
import { DockerImageBackend } from "./images.js";
import { DockerSandboxBackend } from "./sandboxes.js";

export interface DockerBackendOptions {
  endpoint: string;
  pauseImage: string;
  registry: RegistryConfig;
  cni: CniClient;
  logger: Logger;
  seccompUseDefaultWhenEmpty: boolean;
  oomScoreAdjMin: number;
}

export interface DockerBackend extends Backend {
  engine: DockerEngine;
  /** Resumes the log followers and the event stream of what the engine holds. */
  init(): Promise<void>;
  close(): Promise<void>;
}

export function dockerBackend(o: DockerBackendOptions): DockerBackend {
  const engine = new DockerEngine(o.endpoint);
  const rates = new CpuRateCache();
  const logger = o.logger.child({ component: "docker" });
  const containers: DockerContainerBackend = new DockerContainerBackend({
    engine,
    logger,
    rates,
    sandboxes: () => sandboxes,
    seccompUseDefaultWhenEmpty: o.seccompUseDefaultWhenEmpty,
    oomScoreAdjMin: o.oomScoreAdjMin,
  });
  const sandboxes: DockerSandboxBackend = new DockerSandboxBackend({
    engine,
    cni: o.cni,
    logger,
    pauseImage: o.pauseImage,
    rates,
    containers: () => containers,
  });
  return {
    engine,
    images: new DockerImageBackend(engine, o.registry, logger),
    sandboxes,
    containers,
    init: () => containers.init(),
    close: () => containers.close(),
  };
}
