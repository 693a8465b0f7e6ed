/**
 * Berth's CNI client (libcni/ocicni in spirit): one network (the first config file), ADD /
 * CHECK / DEL of a pod's eth0 through the plugin chain, and a per-pod cache of the ADD result,
 * config and runtime args in a results dir so CHECK and DEL after a berthd restart see exactly
 * what ADD saw.
 */
import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, failedPrecondition, internal, invalidArgument } from "../common/errors.js";
import type { Logger } from "../common/logger.js";
import { SerialQueue, writeFileAtomic } from "../store/atomic.js";
import {
  type BandwidthLimits,
  buildCapabilityArgs,
  buildCniArgs,
  type PodIdentity,
  type PortMapping,
  runtimeConfigFor,
} from "./cni-args.js";
import {
  type CniNetworkConfigList,
  compareVersions,
  DEFAULT_CONF_DIRS,
  loadNetworkConfig,
  parseNetworkConfig,
} from "./cni-config.js";
import { DEFAULT_BIN_DIRS, execPlugin, findPlugin, type PluginCall } from "./cni-exec.js";
import { type CniResult, parseCniResult, podIPs } from "./cni-result.js";
import { isNsfs } from "./namespaces.js";

export const DEFAULT_CACHE_DIR = "/var/lib/berth/cni/results";

export interface CniClientOptions {
  confDirs?: readonly string[];
  binDirs?: readonly string[];
  /** Where ADD results are cached, one JSON file per pod. */
  cacheDir?: string;
  /** Interface name inside the pod (default eth0). */
  ifName?: string;
  /** Timeout of each plugin call (default 60 s). */
  pluginTimeoutMs?: number;
  logger?: Logger;
}

export interface PodNetworkRequest extends PodIdentity {
  /** The pod's pinned network namespace file. */
  netns: string;
  portMappings?: readonly PortMapping[];
  bandwidth?: BandwidthLimits;
}

export interface PodNetworkResult {
  networkName: string;
  /** Pod IPs without prefix length, IPv4 first; [0] is the primary. */
  ips: string[];
  result: CniResult;
}

export interface NetworkStatus {
  ready: boolean;
  /** Set when not ready: CRI-style reason and a human message. */
  reason?: string;
  message?: string;
  networkName?: string;
  source?: string;
}

/** What is stored per pod in the results dir. */
export interface CachedAttachment {
  kind: "berth-cni-cache-v1";
  podId: string;
  ifName: string;
  networkName: string;
  netns: string;
  /** The network config (as JSON) ADD ran with; DEL and CHECK use it, not the current file. */
  config: Record<string, unknown>;
  source: string;
  cniArgs: string;
  capabilityArgs: Record<string, unknown>;
  result: Record<string, unknown>;
  createdAt: string;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class CniClient {
  readonly confDirs: readonly string[];
  readonly binDirs: readonly string[];
  readonly cacheDir: string;
  readonly ifName: string;
  readonly pluginTimeoutMs: number;
  private readonly log: Logger | undefined;
  private readonly queues = new Map<string, { q: SerialQueue; n: number }>();

  constructor(opts: CniClientOptions = {}) {
    this.confDirs = opts.confDirs ?? DEFAULT_CONF_DIRS;
    this.binDirs = opts.binDirs ?? DEFAULT_BIN_DIRS;
    this.cacheDir = opts.cacheDir ?? DEFAULT_CACHE_DIR;
    this.ifName = opts.ifName ?? "eth0";
    this.pluginTimeoutMs = opts.pluginTimeoutMs ?? 60_000;
    this.log = opts.logger?.child({ component: "cni" });
  }

  /** The current network config, with every plugin binary present; throws FailedPrecondition. */
  async loadNetwork(): Promise<CniNetworkConfigList> {
    const net = await loadNetworkConfig(this.confDirs);
    if (net === null) throw failedPrecondition(`no network config found in ${this.confDirs.join(", ")}`);
    for (const p of net.plugins) {
      try {
        await findPlugin(p.type, this.binDirs);
      } catch (err) {
        throw failedPrecondition(`network ${net.name} (${net.source}): ${(err as Error).message}`, err);
      }
    }
    return net;
  }

  /** CRI NetworkReady: ready when a valid config exists and all its plugins are installed. */
  async networkStatus(): Promise<NetworkStatus> {
    try {
      const net = await this.loadNetwork();
      return { ready: true, networkName: net.name, source: net.source };
    } catch (err) {
      return { ready: false, reason: "NetworkPluginNotReady", message: (err as Error).message };
    }
  }

  /** ADD: runs the chain, caches the result; on failure, best-effort DEL, then rethrows. */
  async setUpPod(req: PodNetworkRequest): Promise<PodNetworkResult> {
    checkRequest(req);
    return this.serial(req.podId, async () => {
      const net = await this.loadNetwork();
      const cniArgs = buildCniArgs(req);
      const capabilityArgs = buildCapabilityArgs(req);
      let prev: Record<string, unknown> | undefined;
      try {
        for (const plugin of net.plugins) {
          const out = await this.invoke(
            net,
            plugin,
            "ADD",
            req.podId,
            req.netns,
            cniArgs,
            capabilityArgs,
            prev,
          );
          prev = parseCniResult(out, `CNI plugin ${plugin.type} ADD`).raw;
        }
      } catch (err) {
        this.log?.warn({ podId: req.podId, err: (err as Error).message }, "CNI ADD failed, tearing down");
        await this.runDel(net, req.podId, req.netns, cniArgs, capabilityArgs, undefined).catch(
          (delErr: unknown) => {
            this.log?.warn(
              { podId: req.podId, err: (delErr as Error).message },
              "CNI DEL after failed ADD failed",
            );
          },
        );
        throw err;
      }
      const result = parseCniResult(prev, `network ${net.name} ADD`);
      const entry: CachedAttachment = {
        kind: "berth-cni-cache-v1",
        podId: req.podId,
        ifName: this.ifName,
        networkName: net.name,
        netns: req.netns,
        config: configToJson(net),
        source: net.source,
        cniArgs,
        capabilityArgs,
        result: result.raw,
        createdAt: new Date().toISOString(),
      };
      await mkdir(this.cacheDir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.cachePath(req.podId), `${JSON.stringify(entry, null, 2)}\n`);
      const ips = podIPs(result, this.ifName);
      this.log?.info({ podId: req.podId, network: net.name, ips }, "pod network set up");
      return { networkName: net.name, ips, result };
    });
  }

  /** CHECK with the cached config and result; NotFound-like FailedPrecondition without a cache. */
  async checkPod(req: Pick<PodNetworkRequest, "podId" | "netns">): Promise<void> {
    if (!ID_RE.test(req.podId)) throw invalidArgument(`invalid pod id ${JSON.stringify(req.podId)}`);
    return this.serial(req.podId, async () => {
      const cached = await this.cachedAttachment(req.podId);
      if (cached === null)
        throw failedPrecondition(`CNI CHECK: no cached network result for pod ${req.podId}`);
      const net = parseNetworkConfig(JSON.stringify(cached.config), cached.source);
      if (net.disableCheck || compareVersions(net.cniVersion, "0.4.0") < 0) return;
      for (const plugin of net.plugins) {
        await this.invoke(
          net,
          plugin,
          "CHECK",
          req.podId,
          req.netns,
          cached.cniArgs,
          cached.capabilityArgs,
          cached.result,
        );
      }
    });
  }

  /**
   * DEL in reverse plugin order, with the cached config / args / prevResult when there is a
   * cache entry (else the current config and the request's args). A missing or unpinned netns
   * is passed as CNI_NETNS="" so plugins just release what they hold. Idempotent; the cache
   * entry is removed only when every plugin succeeded.
   */
  async tearDownPod(req: PodNetworkRequest): Promise<void> {
    checkRequest(req);
    return this.serial(req.podId, async () => {
      const cached = await this.cachedAttachment(req.podId);
      let net: CniNetworkConfigList;
      let cniArgs: string;
      let caps: Record<string, unknown>;
      let prev: Record<string, unknown> | undefined;
      if (cached !== null) {
        net = parseNetworkConfig(JSON.stringify(cached.config), cached.source);
        cniArgs = cached.cniArgs;
        caps = cached.capabilityArgs;
        prev = cached.result;
      } else {
        net = await this.loadNetwork();
        cniArgs = buildCniArgs(req);
        caps = buildCapabilityArgs(req);
      }
      const netns = (await isNsfs(req.netns)) ? req.netns : "";
      await this.runDel(net, req.podId, netns, cniArgs, caps, prev);
      await unlink(this.cachePath(req.podId)).catch((err: unknown) => {
        if (errnoCode(err) !== "ENOENT") throw err;
      });
      this.log?.info(
        { podId: req.podId, network: net.name, netnsGone: netns === "" },
        "pod network torn down",
      );
    });
  }

  /** The cached attachment of a pod, or null. */
  async cachedAttachment(podId: string): Promise<CachedAttachment | null> {
    let text: string;
    try {
      text = await readFile(this.cachePath(podId), "utf8");
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return null;
      throw err;
    }
    try {
      const v = JSON.parse(text) as CachedAttachment;
      if (v.kind !== "berth-cni-cache-v1" || typeof v.config !== "object") throw new Error("unknown format");
      return v;
    } catch (err) {
      throw internal(`corrupt CNI cache entry ${this.cachePath(podId)}: ${(err as Error).message}`, err);
    }
  }

  /** Pod ids with a cached attachment (crash recovery: pods whose network may need DEL). */
  async cachedPodIds(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.cacheDir);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return [];
      throw err;
    }
    const suffix = `-${this.ifName}.json`;
    return names
      .filter((n) => n.endsWith(suffix) && !n.startsWith("."))
      .map((n) => n.slice(0, -suffix.length))
      .sort();
  }

  private cachePath(podId: string): string {
    return join(this.cacheDir, `${podId}-${this.ifName}.json`);
  }

  private async runDel(
    net: CniNetworkConfigList,
    podId: string,
    netns: string,
    cniArgs: string,
    caps: Record<string, unknown>,
    prev: Record<string, unknown> | undefined,
  ): Promise<void> {
    // prevResult on DEL exists from 0.4.0 on. Every plugin gets its DEL even if one fails, so
    // one broken plugin does not leak the others' resources; the first error is reported.
    const prevForDel = compareVersions(net.cniVersion, "0.4.0") >= 0 ? prev : undefined;
    let first: unknown;
    for (const plugin of [...net.plugins].reverse()) {
      try {
        await this.invoke(net, plugin, "DEL", podId, netns, cniArgs, caps, prevForDel);
      } catch (err) {
        this.log?.warn({ podId, plugin: plugin.type, err: (err as Error).message }, "CNI DEL failed");
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  private async invoke(
    net: CniNetworkConfigList,
    plugin: CniNetworkConfigList["plugins"][number],
    command: PluginCall["command"],
    podId: string,
    netns: string,
    cniArgs: string,
    caps: Record<string, unknown>,
    prev: Record<string, unknown> | undefined,
  ): Promise<unknown> {
    const path = await findPlugin(plugin.type, this.binDirs);
    const stdin = pluginStdin(net, plugin, caps, prev);
    this.log?.debug({ podId, plugin: plugin.type, command }, "CNI plugin call");
    return execPlugin(path, stdin, {
      command,
      containerId: podId,
      netns,
      ifName: this.ifName,
      cniArgs,
      binDirs: this.binDirs,
      timeoutMs: this.pluginTimeoutMs,
    });
  }

  private serial<T>(podId: string, task: () => Promise<T>): Promise<T> {
    let slot = this.queues.get(podId);
    if (slot === undefined) {
      slot = { q: new SerialQueue(), n: 0 };
      this.queues.set(podId, slot);
    }
    const s = slot;
    s.n++;
    return s.q.run(task).finally(() => {
      if (--s.n === 0) this.queues.delete(podId);
    });
  }
}

/** One plugin's stdin: its config plus the list's name and cniVersion, runtimeConfig, prevResult. */
export function pluginStdin(
  net: Pick<CniNetworkConfigList, "name" | "cniVersion">,
  plugin: CniNetworkConfigList["plugins"][number],
  capabilityArgs: Readonly<Record<string, unknown>>,
  prevResult: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: net.name, cniVersion: net.cniVersion };
  const rc = runtimeConfigFor(plugin, capabilityArgs);
  if (rc !== undefined) {
    const existing = conf["runtimeConfig"];
    conf["runtimeConfig"] =
      typeof existing === "object" && existing !== null
        ? { ...(existing as Record<string, unknown>), ...rc }
        : rc;
  }
  if (prevResult !== undefined) conf["prevResult"] = prevResult;
  else delete conf["prevResult"];
  return conf;
}

function configToJson(net: CniNetworkConfigList): Record<string, unknown> {
  return { cniVersion: net.cniVersion, name: net.name, disableCheck: net.disableCheck, plugins: net.plugins };
}

function checkRequest(req: PodNetworkRequest): void {
  if (!ID_RE.test(req.podId)) throw invalidArgument(`invalid pod id ${JSON.stringify(req.podId)}`);
  if (req.netns === "" || !req.netns.startsWith("/")) throw invalidArgument("netns must be an absolute path");
}
