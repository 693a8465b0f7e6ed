/**
 * The seam under the CRI handlers: what a backend (native: conmon + runc over Berth's own
 * stores; Docker Engine) provides, CRI-shaped in and out. Handlers in src/cri/ see only these
 * interfaces: no store, record, file path or on-disk encoding crosses this line.
 */

import type { Duplex, Readable } from "node:stream";
import type {
  AuthConfig,
  Container,
  ContainerConfig,
  ContainerEventResponse,
  ContainerFilter,
  ContainerStats,
  ContainerStatsFilter,
  ContainerStatus,
  FilesystemUsage,
  Image,
  ImageFilter,
  ImageSpec,
  LinuxContainerResources,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStats,
  PodSandboxStatsFilter,
  PodSandboxStatus,
} from "../api/gen/runtime/v1/api.js";
import type { ExecIO } from "../streaming/remotecommand.js";

/** A verbose status answer: the status and its `info` map (one JSON document under "info"). */
export interface WithInfo<T> {
  status: T;
  info: Record<string, string>;
}

export interface ImageBackend {
  /** Pulls `image`; resolves with the image id (CRI image_ref). */
  pull(image: ImageSpec, auth: AuthConfig | undefined, signal: AbortSignal): Promise<string>;
  list(filter: ImageFilter | undefined): Promise<Image[]>;
  /** undefined when the image is not there (ImageStatus answers an empty status then). */
  status(image: ImageSpec, verbose: boolean): Promise<WithInfo<Image> | undefined>;
  /** Idempotent: an image that is not there is removed. */
  remove(image: ImageSpec): Promise<void>;
  fsInfo(): Promise<{ imageFilesystems: FilesystemUsage[]; containerFilesystems: FilesystemUsage[] }>;
  /** Loads an OCI layout/archive or `docker save` tarball (berth.v1 Import); `tag` names it. */
  importArchive(archive: Readable, tag: string): Promise<Image[]>;
  /** The progress of a pull of `image` in flight (berth.v1 PullProgress), or undefined. */
  pullProgress(image: string): PullProgress | undefined;
}

/** A pull in flight: bytes per layer. */
export interface PullProgress {
  layers: Array<{
    digest: string;
    size: number;
    downloaded: number;
    state: "waiting" | "downloading" | "done";
  }>;
  /** Set when the pull is over. */
  finished?: boolean;
}

export interface NetworkStatus {
  ready: boolean;
  reason?: string;
  message?: string;
  /** What the verbose Status info shows of the network. */
  info?: Record<string, unknown>;
}

/** One forwarded connection of a PortForward session. */
export interface PortForwardStream {
  port: number;
  /** Bytes from/to the client; end() sends FIN, the readable ends at the client's FIN. */
  stream: Duplex;
  signal: AbortSignal;
}

export interface SandboxBackend {
  run(config: PodSandboxConfig, runtimeHandler: string): Promise<string>;
  /** Stops the pod's containers, then the pod. Unknown id: OK; empty or ambiguous: an error. */
  stop(id: string): Promise<void>;
  /** Removes the pod with its containers. Unknown id: OK; empty or ambiguous: an error. */
  remove(id: string): Promise<void>;
  status(id: string, verbose: boolean): Promise<WithInfo<PodSandboxStatus>>;
  list(filter: PodSandboxFilter | undefined): Promise<PodSandbox[]>;
  stats(id: string): Promise<PodSandboxStats>;
  listStats(filter: PodSandboxStatsFilter | undefined): Promise<PodSandboxStats[]>;
  /** Resolves the full id of a ready pod that PortForward may reach (FailedPrecondition if not). */
  portForwardTarget(id: string): Promise<string>;
  portForward(podId: string, conn: PortForwardStream): Promise<void>;
  networkStatus(): Promise<NetworkStatus>;
}

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  timedOut: boolean;
}

/** What an Attach may use: the container's own stdio settings. */
export interface StdioConfig {
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
}

/** A subscriber's view of the container event stream (bounded; a slow reader is dropped). */
export interface EventStream {
  /** Next event; undefined once the stream is closed. */
  next(): Promise<ContainerEventResponse | undefined>;
  close(reason?: string): void;
  readonly closedReason: string | undefined;
}

export interface ContainerBackend {
  create(podId: string, config: ContainerConfig): Promise<string>;
  start(id: string): Promise<void>;
  /** Unknown id: OK; empty or ambiguous: an error. */
  stop(id: string, timeoutSec: number): Promise<void>;
  /** Unknown id: OK; empty or ambiguous: an error. */
  remove(id: string): Promise<void>;
  status(id: string, verbose: boolean): Promise<WithInfo<ContainerStatus>>;
  list(filter: ContainerFilter | undefined): Promise<Container[]>;
  updateResources(id: string, resources: LinuxContainerResources | undefined): Promise<void>;
  reopenLog(id: string): Promise<void>;
  execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecSyncResult>;
  /** The full id of a running container an Exec or Attach may reach, and its stdio settings. */
  streamTarget(id: string): Promise<{ id: string; stdio: StdioConfig }>;
  exec(id: string, cmd: string[], tty: boolean, io: ExecIO): Promise<number>;
  attach(id: string, io: ExecIO): Promise<number>;
  stats(id: string): Promise<ContainerStats>;
  listStats(filter: ContainerStatsFilter | undefined): Promise<ContainerStats[]>;
  events(): EventStream;
  /**
   * CheckpointContainer: a checkpoint archive of the running container at `location` (an
   * absolute file path); the container keeps running. `create` with an archive path as the
   * image restores one into a pod.
   */
  checkpoint(id: string, location: string, timeoutSec: number): Promise<void>;
}

/** Everything the CRI layer drives. */
export interface Backend {
  images: ImageBackend;
  sandboxes: SandboxBackend;
  containers: ContainerBackend;
}
