/**
 * berthd: wires config, stores and gRPC services together and serves them on a unix socket.
 */
import { chmod, mkdir, open, readFile } from "node:fs/promises";
import type { Server as HttpServer } from "node:http";
import { dirname, join } from "node:path";
import { ImagesService } from "../api/gen/berth/v1/berth.js";
import { ImageServiceService, RuntimeServiceService } from "../api/gen/runtime/v1/api.js";
import { GrpcServer } from "../api/grpc/server.js";
import type { Backend } from "../backend/backend.js";
import type { DockerBackend } from "../backend/docker/index.js";
import { NativeImageBackend } from "../backend/native/images.js";
import { nativeRuntimeBackend } from "../backend/native/index.js";
import { failedPrecondition, unavailable } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { releaseWhenQuiet } from "../common/memory.js";
import { native } from "../common/native.js";
import { BERTH_VERSION } from "../common/version.js";
import type { BerthConfig } from "../config/config.js";
import { ContainerManager, type ContainerRecord } from "../container/container-manager.js";
import { berthImagesService } from "../cri/berth-service.js";
import { abortCalls, heldUntil, observeRequests } from "../cri/boundary.js";
import { imageService } from "../cri/image-service.js";
import { runtimeService } from "../cri/runtime-service.js";
import { createStreamingServer } from "../cri/streaming-service.js";
import { EventBus } from "../events/bus.js";
import { ImageManager } from "../image/image-manager.js";
import type { Metrics } from "../metrics/metrics.js";
import { CniClient } from "../network/cni.js";
import { PodInits } from "../pod/pod-init.js";
import { SandboxManager } from "../pod/sandbox-manager.js";
import { RuntimeHandlers } from "../runtime/handlers.js";
import type { StreamingServer } from "../streaming/server.js";
import { prepareSocketPath } from "./socket.js";

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** A pull's garbage and freed buffers go back to the kernel once pulls have been quiet this long. */
const releaseAfterPulls = releaseWhenQuiet(2000);

export class Daemon {
  private server: GrpcServer | undefined;
  private lockFile: Awaited<ReturnType<typeof open>> | undefined;
  readonly images: ImageManager;
  readonly cni: CniClient;
  readonly handlers: RuntimeHandlers;
  readonly pods: SandboxManager;
  private readonly inits: PodInits;
  readonly events = new EventBus<ContainerRecord>();
  /** Prometheus metrics, only with `metrics.address` (prom-client is loaded for them). */
  private metrics: Metrics | undefined;
  private containers: ContainerManager | undefined;
  private metricsServer: HttpServer | undefined;
  private streaming: StreamingServer | undefined;
  private docker: DockerBackend | undefined;

  constructor(
    readonly config: BerthConfig,
    private readonly logger: Logger,
  ) {
    this.images = new ImageManager({
      config,
      logger,
      onPull: (ok, bytes) => {
        this.metrics?.pulls.inc({ result: ok ? "success" : "failure" });
        if (ok) this.metrics?.pullBytes.inc(bytes);
        releaseAfterPulls();
      },
    });
    this.cni = new CniClient({
      confDirs: config.cni.confDirs,
      binDirs: config.cni.binDirs,
      cacheDir: join(config.root, "cni", "results"),
      logger, // CniClient binds its own component (binding it here too printed "component" twice)
    });
    this.handlers = new RuntimeHandlers({
      stateDir: join(config.state, "runtime"),
      defaultHandler: config.runtime.defaultHandler,
      conmonPath: config.runtime.conmonPath,
      ...(config.runtime.criuPath ? { criuPath: config.runtime.criuPath } : {}),
      handlers: Object.fromEntries(
        Object.entries(config.runtime.handlers).map(([name, h]) => [
          name,
          {
            runtimePath: h.runtimePath,
            runtimeRoot: h.runtimeRoot,
            runtimeType: h.runtimeType,
            runtimeArgs: h.runtimeArgs,
          },
        ]),
      ),
      logger,
    });
    this.inits = new PodInits({ root: config.root, handlers: this.handlers });
    this.pods = new SandboxManager({
      root: config.root,
      state: config.state,
      logger: logger.child({ component: "pods" }),
      cni: this.cni,
      handlers: this.handlers,
      inits: this.inits,
      observePhase: this.observePhase,
    });
  }

  private readonly observePhase = (object: "pod" | "container", phase: string, seconds: number) =>
    this.metrics?.phaseSeconds.observe({ object, phase }, seconds);

  private containerCounts(): Record<string, number> {
    const counts: Record<string, number> = { created: 0, running: 0, exited: 0, unknown: 0 };
    for (const c of this.containers?.store.list() ?? []) {
      const state = c.state.replace("CONTAINER_", "").toLowerCase();
      counts[state] = (counts[state] ?? 0) + 1;
    }
    return counts;
  }

  async start(): Promise<void> {
    const { config, logger } = this;
    await mkdir(config.root, { recursive: true, mode: 0o700 });
    await mkdir(config.state, { recursive: true, mode: 0o711 });
    await this.lockRoot();
    // Containers may not ask for an oom_score_adj below berthd's own (no CAP_SYS_RESOURCE needed).
    const oomScoreAdjMin = Number((await readFile("/proc/self/oom_score_adj", "utf8")).trim()) || 0;
    observeRequests((method, code, seconds) => {
      this.metrics?.requests.inc({ method, code });
      this.metrics?.requestSeconds.observe({ method }, seconds);
    });
    const backend =
      config.backend === "docker"
        ? await this.startDocker(oomScoreAdjMin)
        : await this.startNative(oomScoreAdjMin);
    const streaming = createStreamingServer({ logger, config: config.streaming, ...backend });
    if (config.metrics.address) {
      const [{ Metrics }, { startMetricsServer }] = await Promise.all([
        import("../metrics/metrics.js"),
        import("../metrics/server.js"),
      ]);
      this.metrics = new Metrics(() => this.containerCounts());
      this.metricsServer = await startMetricsServer(this.metrics, config.metrics.address);
      logger.info({ address: config.metrics.address }, "metrics served at /metrics");
    }
    // The streaming server, the stores and recovery (pods, containers) start once the socket is
    // bound and answers Version; every other call waits for them (heldUntil). Started before
    // the bind, their file reads (hundreds, with many pods) would queue ahead of the bind's own
    // on libuv's pool.
    let bound!: () => void;
    const recovered = new Promise<void>((resolve) => {
      bound = resolve;
    }).then(async () => {
      const { url } = await streaming.start();
      this.streaming = streaming;
      logger.info({ url }, "streaming server listening");
      await backend.init();
    });
    recovered.catch(() => {}); // awaited below

    const server = new GrpcServer({
      maxMessageBytes: MAX_MESSAGE_BYTES,
      onAcceptError: (err) =>
        logger.warn({ err: err.message }, "CRI socket: a connection could not be accepted"),
    });
    const rpcLog = logger.child({ component: "cri" });
    server.addService(
      RuntimeServiceService,
      heldUntil(recovered, runtimeService({ logger: rpcLog, config, ...backend, server: streaming }), [
        "version",
      ]),
    );
    const { images } = backend;
    server.addService(ImageServiceService, heldUntil(recovered, imageService({ logger: rpcLog, images })));
    server.addService(ImagesService, heldUntil(recovered, berthImagesService({ logger: rpcLog, images })));

    await mkdir(dirname(config.listen), { recursive: true, mode: 0o711 });
    await prepareSocketPath(config.listen);
    // The socket is created with the umask in force: make it 0600 from its first moment.
    const oldMask = process.umask(0o177);
    try {
      await server.listen(config.listen);
    } finally {
      process.umask(oldMask);
    }
    await chmod(config.listen, 0o600);
    this.server = server;
    logger.info({ listen: config.listen, root: config.root, version: BERTH_VERSION }, "berthd listening");
    bound();
    await recovered;
    logger.info("berthd serving: pods and containers recovered");
  }

  /** Berth's own stores, pods and containers (conmon + runc). */
  private async startNative(oomScoreAdjMin: number): Promise<Backend & { init(): Promise<void> }> {
    const { config, logger } = this;
    const containers = new ContainerManager({
      root: config.root,
      logger: logger.child({ component: "containers" }),
      images: this.images,
      pods: this.pods,
      handlers: this.handlers,
      oomScoreAdjMin,
      seccompUseDefaultWhenEmpty: config.runtime.seccompUseDefaultWhenEmpty,
      events: this.events,
      observePhase: this.observePhase,
    });
    this.containers = containers;
    const runtime = nativeRuntimeBackend({
      root: config.root,
      pods: this.pods,
      containers,
      cni: this.cni,
      events: this.events,
    });
    this.images.inUseBy = (imageId) => containers.store.list().find((c) => c.imageId === imageId)?.id;
    return {
      ...runtime,
      images: new NativeImageBackend(this.images),
      init: async () => {
        await this.images.init();
        await this.inits.prepare();
        await this.pods.init();
        await containers.init();
      },
    };
  }

  /** A Docker Engine runs images and containers; its version is checked before berthd serves. */
  private async startDocker(oomScoreAdjMin: number): Promise<Backend & { init(): Promise<void> }> {
    const { config, logger } = this;
    // Loaded only for this backend: it brings the Docker client and its image code.
    const { dockerBackend } = await import("../backend/docker/index.js");
    const docker = dockerBackend({
      endpoint: config.dockerEndpoint,
      pauseImage: config.dockerPauseImage,
      registry: config.registry,
      cni: this.cni,
      logger,
      seccompUseDefaultWhenEmpty: config.runtime.seccompUseDefaultWhenEmpty,
      oomScoreAdjMin,
    });
    // An engine that is down or too old is reported by every call (and found again when it is back).
    await docker.engine.version().then(
      (v) => logger.info({ endpoint: config.dockerEndpoint, ...v }, "Docker Engine backend"),
      (err: unknown) =>
        logger.warn({ err: (err as Error).message }, "Docker Engine backend: engine not usable yet"),
    );
    this.docker = docker;
    return docker;
  }

  /** One berthd per root: a second one would corrupt the stores. */
  private async lockRoot(): Promise<void> {
    const path = join(this.config.root, "berthd.lock");
    const fh = await open(path, "a", 0o600);
    if (!native().tryLockExclusive(fh.fd)) {
      await fh.close();
      throw failedPrecondition(`another berthd is using root ${this.config.root} (${path} is locked)`);
    }
    this.lockFile = fh;
  }

  /**
   * Stops accepting calls and aborts the ones in flight (a pull stops downloading and answers
   * UNAVAILABLE at once); calls that cannot be aborted get `graceMs` to finish before the server
   * is forced down. Then releases the root.
   */
  async stop(graceMs = 10_000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.destroy();
          resolve();
        }, graceMs);
        void server.close().then(() => {
          clearTimeout(timer);
          resolve();
        });
        const aborted = abortCalls(unavailable("berthd is shutting down"));
        if (aborted > 0) this.logger.info({ calls: aborted }, "aborted the calls in flight");
      });
    }
    this.containers?.close();
    await this.docker?.close();
    this.metricsServer?.close();
    await this.streaming?.close();
    await this.images.close();
    await this.lockFile?.close();
    this.lockFile = undefined;
    this.logger.info("berthd stopped");
  }
}
