/**
 * A CRI v1 client for any CRI endpoint (berthd, containerd, CRI-O), used by the berth CLI,
 * the tests and the benchmark. Endpoints are unix socket paths or unix:// URLs.
 */
import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { type CallOptions, type Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  ImagesClient,
  type ImportRequest,
  ImportRequest as ImportRequestMsg,
  type ImportResponse,
} from "./gen/berth/v1/berth.js";
import * as api from "./gen/runtime/v1/api.js";
import {
  type AuthConfig,
  ImageFsInfoRequest,
  type ImageFsInfoResponse,
  ImageServiceClient,
  ImageStatusRequest,
  type ImageStatusResponse,
  ListImagesRequest,
  type ListImagesResponse,
  PullImageRequest,
  type PullImageResponse,
  RemoveImageRequest,
  RuntimeServiceClient,
  StatusRequest,
  type StatusResponse,
  VersionRequest,
  type VersionResponse,
} from "./gen/runtime/v1/api.js";

type RuntimeDef = typeof api.RuntimeServiceService;
/** RuntimeService methods with one request and one answer (all but GetContainerEvents). */
export type UnaryRuntimeMethod = {
  [K in keyof RuntimeDef]: RuntimeDef[K]["responseStream"] extends false ? K : never;
}[keyof RuntimeDef];
export type RuntimeRequest<K extends keyof RuntimeDef> = Parameters<RuntimeDef[K]["requestSerialize"]>[0];
export type RuntimeResponse<K extends keyof RuntimeDef> = ReturnType<RuntimeDef[K]["responseDeserialize"]>;

export const DEFAULT_ENDPOINT = "unix:///run/berth/berth.sock";

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export function grpcAddress(endpoint: string): string {
  if (endpoint.startsWith("unix://")) return `unix:${endpoint.slice("unix://".length)}`;
  if (endpoint.startsWith("unix:")) return endpoint;
  if (endpoint.startsWith("/")) return `unix:${endpoint}`;
  throw new Error(`unsupported endpoint "${endpoint}": want a unix socket path or unix:// URL`);
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type UnaryMethod<Req, Res> = (
  req: Req,
  md: Metadata,
  opts: Partial<CallOptions>,
  cb: Callback<Res>,
) => unknown;

function invoke<Req, Res>(
  client: Client,
  method: UnaryMethod<Req, Res>,
  req: Req,
  timeoutMs: number | undefined,
): Promise<Res> {
  const opts: Partial<CallOptions> = timeoutMs ? { deadline: Date.now() + timeoutMs } : {};
  return new Promise((resolve, reject) => {
    method.call(client, req, new Metadata(), opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export interface CriClientOptions {
  /** Per-call timeout in ms for calls other than pull and import (default 2 minutes). */
  timeoutMs?: number;
}

export class CriClient {
  readonly runtime: RuntimeServiceClient;
  readonly images: ImageServiceClient;
  readonly berth: ImagesClient;
  private readonly timeoutMs: number;

  constructor(endpoint: string = DEFAULT_ENDPOINT, opts: CriClientOptions = {}) {
    const address = grpcAddress(endpoint);
    const options = {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    };
    this.runtime = new RuntimeServiceClient(address, credentials.createInsecure(), options);
    this.images = new ImageServiceClient(address, credentials.createInsecure(), options);
    this.berth = new ImagesClient(address, credentials.createInsecure(), options);
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  /**
   * Calls any RuntimeService method by its ts-proto name ("runPodSandbox", "listContainers"…);
   * the request is completed with proto defaults through the message's `fromPartial`.
   */
  /** A unary RuntimeService call, typed from the generated service definition. */
  call<K extends UnaryRuntimeMethod>(
    method: K,
    request: api.DeepPartial<RuntimeRequest<K>> = {} as api.DeepPartial<RuntimeRequest<K>>,
    timeoutMs = this.timeoutMs,
  ): Promise<RuntimeResponse<K>> {
    return this.runtimeCall<RuntimeResponse<K>>(method, request as object, timeoutMs);
  }

  /**
   * The same call, loosely typed: for tests that send what the typed client would refuse
   * (unknown enum values, hostile fields) and read answers as plain objects.
   */
  runtimeCall<T>(method: string, request: object = {}, timeoutMs = this.timeoutMs): Promise<T> {
    const type = (api as unknown as Record<string, { fromPartial(o: object): unknown }>)[
      `${method[0]?.toUpperCase()}${method.slice(1)}Request`
    ];
    const fn = (this.runtime as unknown as Record<string, UnaryMethod<unknown, T>>)[method];
    if (!type || !fn) throw new Error(`unknown RuntimeService method ${method}`);
    return invoke(this.runtime, fn, type.fromPartial(request), timeoutMs);
  }

  close(): void {
    this.runtime.close();
    this.images.close();
    this.berth.close();
  }

  version(): Promise<VersionResponse> {
    return invoke(this.runtime, this.runtime.version, VersionRequest.fromPartial({}), this.timeoutMs);
  }

  status(verbose = false): Promise<StatusResponse> {
    return invoke(this.runtime, this.runtime.status, StatusRequest.fromPartial({ verbose }), this.timeoutMs);
  }

  pullImage(image: string, auth?: Partial<AuthConfig>, timeoutMs?: number): Promise<PullImageResponse> {
    const req = PullImageRequest.fromPartial({ image: { image }, auth });
    return invoke(this.images, this.images.pullImage, req, timeoutMs);
  }

  listImages(filter?: string): Promise<ListImagesResponse> {
    const req = ListImagesRequest.fromPartial(filter ? { filter: { image: { image: filter } } } : {});
    return invoke(this.images, this.images.listImages, req, this.timeoutMs);
  }

  imageStatus(image: string, verbose = false): Promise<ImageStatusResponse> {
    const req = ImageStatusRequest.fromPartial({ image: { image }, verbose });
    return invoke(this.images, this.images.imageStatus, req, this.timeoutMs);
  }

  async removeImage(image: string): Promise<void> {
    const req = RemoveImageRequest.fromPartial({ image: { image } });
    await invoke(this.images, this.images.removeImage, req, this.timeoutMs);
  }

  imageFsInfo(): Promise<ImageFsInfoResponse> {
    return invoke(this.images, this.images.imageFsInfo, ImageFsInfoRequest.fromPartial({}), this.timeoutMs);
  }

  /** Streams an image archive (a file path, or "-" for stdin) to berthd's Import. */
  importImage(file: string, tag = ""): Promise<ImportResponse> {
    return this.importStream(
      file === "-" ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 }),
      tag,
    );
  }

  importStream(input: Readable, tag = ""): Promise<ImportResponse> {
    return new Promise((resolve, reject) => {
      const call = this.berth.import((err, res) => (err ? reject(err) : resolve(res)));
      let first = true;
      input.on("error", (err) => {
        call.cancel();
        reject(err);
      });
      input.on("data", (chunk: Buffer) => {
        const msg: ImportRequest = ImportRequestMsg.fromPartial({ chunk, tag: first ? tag : "" });
        first = false;
        if (!call.write(msg)) {
          input.pause();
          call.once("drain", () => input.resume());
        }
      });
      input.on("end", () => {
        if (first) call.write(ImportRequestMsg.fromPartial({ tag }));
        call.end();
      });
    });
  }
}
