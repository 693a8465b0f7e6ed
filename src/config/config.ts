/**
 * berthd configuration: TOML on disk, validated against a strict schema (unknown keys and
 * wrong types are errors naming the key), defaults filled in, then frozen.
 * Every key is documented in README.md ("Configuration").
 */
import { readFile } from "node:fs/promises";
import { parse as parseToml } from "smol-toml";
import { errnoCode, invalidArgument } from "../common/errors.js";
import { LOG_LEVELS, type LogLevel } from "../common/logger.js";

export interface RegistryAuth {
  username?: string;
  password?: string;
  auth?: string;
  identitytoken?: string;
}
export interface RegistryHostConfig {
  insecure?: boolean;
  auth?: RegistryAuth;
}
export interface RegistryConfig {
  mirrors: Record<string, { endpoints: string[] }>;
  configs: Record<string, RegistryHostConfig>;
}
export interface ImageSettings {
  /** Layers downloaded (and unpacked) at once per pull. */
  maxConcurrentDownloads: number;
  /** Drop compressed layer blobs once unpacked (saves disk; as containerd's discard_unpacked_layers). */
  discardUnpackedLayers: boolean;
  /** Platform to pick from multi-platform images, "os/arch[/variant]"; empty = this node's. */
  platform: string;
  /** Largest manifest or config accepted from a registry, in bytes. */
  maxManifestBytes: number;
  /** Time to connect to a registry (TCP and TLS). */
  connectTimeoutSeconds: number;
  /** Time a registry has to send the response headers of a request. */
  responseHeaderTimeoutSeconds: number;
  /** A download that receives no byte for this long fails. */
  bodyIdleTimeoutSeconds: number;
}
/** "oci": a runc-like runtime, one container per runtime instance. "sandbox": a runtime that runs
 * all of a pod's containers in one sandbox started by the pod's root container (gVisor's runsc). */
export const RUNTIME_TYPES = ["oci", "sandbox"] as const;
export type RuntimeType = (typeof RUNTIME_TYPES)[number];
export interface RuntimeHandlerEntry {
  runtimePath: string;
  runtimeRoot: string;
  runtimeType: RuntimeType;
  /** Global flags given to every runtime command (before the subcommand), e.g. --platform=ptrace. */
  runtimeArgs: string[];
}
export interface RuntimeConfig {
  /** RuntimeClass handler used when a pod names none. */
  defaultHandler: string;
  conmonPath: string;
  /**
   * The CRIU binary runc uses for CheckpointContainer and restores (runc --criu); "" picks
   * scripts/install-criu.sh's /opt/berth/criu/criu where it is installed, else /usr/sbin/criu.
   */
  criuPath: string;
  handlers: Record<string, RuntimeHandlerEntry>;
  /**
   * RuntimeDefault seccomp for containers whose request names no profile (CRI-O's key of the
   * same name). Off by default: the CRI says such a container is unconfined.
   */
  seccompUseDefaultWhenEmpty: boolean;
}
export interface CniConfig {
  confDirs: string[];
  binDirs: string[];
}
export interface MetricsConfig {
  /** host:port of the Prometheus endpoint; empty = off. */
  address: string;
}
export interface StreamingConfig {
  /** host:port of the exec/port-forward server; port 0 picks a free one. */
  address: string;
  /** A session with no traffic for this long is dropped (the kubelet's stream idle timeout). */
  idleTimeoutSeconds: number;
}
export type BackendKind = "native" | "docker";
export interface BerthConfig {
  /** Who runs images and containers: Berth itself (conmon + runc) or a Docker Engine. */
  backend: BackendKind;
  /** The Docker Engine's API socket (backend "docker"). */
  dockerEndpoint: string;
  /** The Docker backend's sandbox image; "" = Berth's own pause image, loaded into the engine. */
  dockerPauseImage: string;
  root: string;
  state: string;
  listen: string;
  logLevel: LogLevel;
  image: ImageSettings;
  registry: RegistryConfig;
  runtime: RuntimeConfig;
  cni: CniConfig;
  metrics: MetricsConfig;
  streaming: StreamingConfig;
}

export const DEFAULT_CONFIG_PATH = "/etc/berth/berth.toml";

export function defaultConfig(): BerthConfig {
  return {
    backend: "native",
    dockerEndpoint: "unix:///var/run/docker.sock",
    dockerPauseImage: "",
    root: "/var/lib/berth",
    state: "/run/berth",
    listen: "/run/berth/berth.sock",
    logLevel: "info",
    image: {
      maxConcurrentDownloads: 3,
      discardUnpackedLayers: false,
      platform: "",
      maxManifestBytes: 4 * 1024 * 1024,
      connectTimeoutSeconds: 30,
      responseHeaderTimeoutSeconds: 30,
      bodyIdleTimeoutSeconds: 60,
    },
    registry: { mirrors: {}, configs: {} },
    runtime: {
      defaultHandler: "runc",
      conmonPath: "/usr/bin/conmon",
      criuPath: "",
      handlers: {
        runc: {
          runtimePath: "/usr/sbin/runc",
          runtimeRoot: "/run/berth/runc",
          runtimeType: "oci",
          runtimeArgs: [],
        },
      },
      seccompUseDefaultWhenEmpty: false,
    },
    cni: { confDirs: ["/etc/cni/net.d"], binDirs: ["/usr/lib/cni", "/opt/cni/bin"] },
    metrics: { address: "" },
    streaming: { address: "127.0.0.1:0", idleTimeoutSeconds: 4 * 3600 },
  };
}

type Table = Record<string, unknown>;

// smol-toml gives dates as TomlDate objects: a date is not a table.
const isTable = (v: unknown): v is Table =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Sets an own property, so that a key named "__proto__" stays a key instead of replacing the prototype. */
function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

class Reader {
  constructor(
    private readonly table: Table,
    private readonly prefix: string,
    known: readonly string[],
  ) {
    for (const key of Object.keys(table)) {
      if (!known.includes(key)) throw invalidArgument(`config: unknown key "${this.name(key)}"`);
    }
  }
  name(key: string): string {
    return this.prefix ? `${this.prefix}.${key}` : key;
  }
  string(key: string, fallback: string): string {
    const v = this.table[key];
    if (v === undefined) return fallback;
    if (typeof v !== "string") throw invalidArgument(`config: "${this.name(key)}" must be a string`);
    return v;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.table[key];
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") throw invalidArgument(`config: "${this.name(key)}" must be true or false`);
    return v;
  }
  int(key: string, fallback: number, min: number, max: number): number {
    const v = this.table[key];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw invalidArgument(`config: "${this.name(key)}" must be an integer from ${min} to ${max}`);
    }
    return v;
  }
  stringArray(key: string): string[] {
    const v = this.table[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
      throw invalidArgument(`config: "${this.name(key)}" must be an array of strings`);
    }
    return v as string[];
  }
  subTable(key: string): Table {
    const v = this.table[key];
    if (v === undefined) return {};
    if (!isTable(v)) throw invalidArgument(`config: "${this.name(key)}" must be a table`);
    return v;
  }
}

function absolutePath(r: Reader, key: string, fallback: string): string {
  const v = r.string(key, fallback);
  if (!v.startsWith("/")) throw invalidArgument(`config: "${r.name(key)}" must be an absolute path`);
  return v;
}

function parseEndpoint(name: string, endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw invalidArgument(`config: "${name}" has an invalid URL "${endpoint}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalidArgument(`config: "${name}" URL "${endpoint}" must use http or https`);
  }
  return endpoint.replace(/\/+$/, "");
}

function readRegistry(r: Reader): RegistryConfig {
  const registry = new Reader(r.subTable("registry"), "registry", ["mirrors", "configs"]);
  const mirrors: RegistryConfig["mirrors"] = {};
  for (const [host, value] of Object.entries(registry.subTable("mirrors"))) {
    const prefix = `registry.mirrors."${host}"`;
    if (!isTable(value)) throw invalidArgument(`config: "${prefix}" must be a table`);
    const m = new Reader(value, prefix, ["endpoints"]);
    setOwn(mirrors, host, {
      endpoints: m.stringArray("endpoints").map((e) => parseEndpoint(m.name("endpoints"), e)),
    });
  }
  const configs: RegistryConfig["configs"] = {};
  for (const [host, value] of Object.entries(registry.subTable("configs"))) {
    const prefix = `registry.configs."${host}"`;
    if (!isTable(value)) throw invalidArgument(`config: "${prefix}" must be a table`);
    const c = new Reader(value, prefix, ["insecure", "auth"]);
    const entry: RegistryHostConfig = { insecure: c.bool("insecure", false) };
    if (value["auth"] !== undefined) {
      const a = new Reader(c.subTable("auth"), `${prefix}.auth`, [
        "username",
        "password",
        "auth",
        "identitytoken",
      ]);
      entry.auth = {
        username: a.string("username", ""),
        password: a.string("password", ""),
        auth: a.string("auth", ""),
        identitytoken: a.string("identitytoken", ""),
      };
    }
    setOwn(configs, host, entry);
  }
  return { mirrors, configs };
}

function readRuntime(r: Reader, d: RuntimeConfig): RuntimeConfig {
  const rt = new Reader(r.subTable("runtime"), "runtime", [
    "default_handler",
    "conmon",
    "criu",
    "handlers",
    "seccomp_use_default_when_empty",
  ]);
  const handlers: Record<string, RuntimeHandlerEntry> = { ...d.handlers };
  for (const [name, value] of Object.entries(rt.subTable("handlers"))) {
    const prefix = `runtime.handlers."${name}"`;
    if (!isTable(value)) throw invalidArgument(`config: "${prefix}" must be a table`);
    const h = new Reader(value, prefix, ["runtime_path", "runtime_root", "runtime_type", "runtime_args"]);
    const previous = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
    const runtimeType = h.string("runtime_type", previous?.runtimeType ?? "oci");
    if (!(RUNTIME_TYPES as readonly string[]).includes(runtimeType)) {
      throw invalidArgument(
        `config: "${h.name("runtime_type")}" is "${runtimeType}": must be "oci" (runc-like, the default) or "sandbox" (gVisor's runsc)`,
      );
    }
    const runtimeArgs =
      value["runtime_args"] === undefined ? (previous?.runtimeArgs ?? []) : h.stringArray("runtime_args");
    if (runtimeArgs.some((a) => !a.startsWith("-"))) {
      throw invalidArgument(`config: "${h.name("runtime_args")}" must hold flags (each starting with "-")`);
    }
    setOwn(handlers, name, {
      runtimePath: absolutePath(h, "runtime_path", previous?.runtimePath ?? "/usr/sbin/runc"),
      runtimeRoot: absolutePath(h, "runtime_root", previous?.runtimeRoot ?? `/run/berth/${name}`),
      runtimeType: runtimeType as RuntimeType,
      runtimeArgs,
    });
  }
  const defaultHandler = rt.string("default_handler", d.defaultHandler);
  if (!Object.hasOwn(handlers, defaultHandler)) {
    throw invalidArgument(
      `config: "runtime.default_handler" names "${defaultHandler}", which has no [runtime.handlers] entry`,
    );
  }
  return {
    defaultHandler,
    conmonPath: absolutePath(rt, "conmon", d.conmonPath),
    criuPath: rt.string("criu", d.criuPath) === "" ? "" : absolutePath(rt, "criu", d.criuPath),
    handlers,
    seccompUseDefaultWhenEmpty: rt.bool("seccomp_use_default_when_empty", d.seccompUseDefaultWhenEmpty),
  };
}

function readCni(r: Reader, d: CniConfig): CniConfig {
  const c = new Reader(r.subTable("cni"), "cni", ["conf_dirs", "bin_dirs"]);
  const dirs = (key: string, fallback: string[]) => {
    const v = c.stringArray(key);
    if (v.some((p) => !p.startsWith("/")))
      throw invalidArgument(`config: "cni.${key}" must hold absolute paths`);
    return v.length ? v : fallback;
  };
  return { confDirs: dirs("conf_dirs", d.confDirs), binDirs: dirs("bin_dirs", d.binDirs) };
}

/** Validates a parsed TOML document and returns the complete configuration. */
export function configFromToml(doc: Table): BerthConfig {
  const d = defaultConfig();
  const r = new Reader(doc, "", [
    "backend",
    "docker_endpoint",
    "docker_pause_image",
    "root",
    "state",
    "listen",
    "log_level",
    "image",
    "registry",
    "runtime",
    "cni",
    "metrics",
    "streaming",
  ]);
  const st = new Reader(r.subTable("streaming"), "streaming", ["address", "idle_timeout_seconds"]);
  const idleTimeoutSeconds = st.int("idle_timeout_seconds", d.streaming.idleTimeoutSeconds, 1, 7 * 24 * 3600);
  const streamingAddress = st.string("address", d.streaming.address);
  if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(streamingAddress)) {
    throw invalidArgument(`config: "streaming.address" must be host:port, e.g. "127.0.0.1:0"`);
  }
  const m = new Reader(r.subTable("metrics"), "metrics", ["address"]);
  const metricsAddress = m.string("address", d.metrics.address);
  if (metricsAddress !== "" && !/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(metricsAddress)) {
    throw invalidArgument(`config: "metrics.address" must be host:port, e.g. "127.0.0.1:9464"`);
  }
  const logLevel = r.string("log_level", d.logLevel);
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw invalidArgument(`config: "log_level" must be one of ${LOG_LEVELS.join(", ")}`);
  }
  const img = new Reader(r.subTable("image"), "image", [
    "max_concurrent_downloads",
    "discard_unpacked_layers",
    "platform",
    "max_manifest_bytes",
    "connect_timeout_seconds",
    "response_header_timeout_seconds",
    "body_idle_timeout_seconds",
  ]);
  const platform = img.string("platform", d.image.platform);
  if (platform !== "" && !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(platform)) {
    throw invalidArgument(`config: "image.platform" must look like "linux/amd64" or "linux/arm/v7"`);
  }
  const backend = r.string("backend", d.backend);
  if (backend !== "native" && backend !== "docker") {
    throw invalidArgument(`config: "backend" must be "native" or "docker"`);
  }
  const dockerEndpoint = r.string("docker_endpoint", d.dockerEndpoint);
  if (!/^unix:\/\/\/./.test(dockerEndpoint)) {
    throw invalidArgument(
      `config: "docker_endpoint" must be a unix socket URL, e.g. "unix:///var/run/docker.sock"`,
    );
  }
  return {
    backend,
    dockerEndpoint,
    dockerPauseImage: r.string("docker_pause_image", d.dockerPauseImage),
    root: absolutePath(r, "root", d.root),
    state: absolutePath(r, "state", d.state),
    listen: absolutePath(r, "listen", d.listen),
    logLevel: logLevel as LogLevel,
    image: {
      maxConcurrentDownloads: img.int("max_concurrent_downloads", d.image.maxConcurrentDownloads, 1, 64),
      discardUnpackedLayers: img.bool("discard_unpacked_layers", d.image.discardUnpackedLayers),
      platform,
      maxManifestBytes: img.int("max_manifest_bytes", d.image.maxManifestBytes, 1024, 64 * 1024 * 1024),
      connectTimeoutSeconds: img.int("connect_timeout_seconds", d.image.connectTimeoutSeconds, 1, 3600),
      responseHeaderTimeoutSeconds: img.int(
        "response_header_timeout_seconds",
        d.image.responseHeaderTimeoutSeconds,
        1,
        3600,
      ),
      bodyIdleTimeoutSeconds: img.int("body_idle_timeout_seconds", d.image.bodyIdleTimeoutSeconds, 1, 3600),
    },
    registry: readRegistry(r),
    runtime: readRuntime(r, d.runtime),
    cni: readCni(r, d.cni),
    metrics: { address: metricsAddress },
    streaming: { address: streamingAddress, idleTimeoutSeconds },
  };
}

export function parseConfig(text: string, source: string): BerthConfig {
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (err) {
    throw invalidArgument(`config ${source}: ${(err as Error).message}`);
  }
  try {
    return configFromToml(doc);
  } catch (err) {
    throw invalidArgument(`${source}: ${(err as Error).message}`);
  }
}

/**
 * Loads the config file. A missing file is fine only at the default path (the file is optional);
 * a path given explicitly must exist.
 */
export async function loadConfig(path: string | undefined): Promise<BerthConfig> {
  const file = path ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if (path === undefined && errnoCode(err) === "ENOENT") return defaultConfig();
    throw invalidArgument(`cannot read config ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}
