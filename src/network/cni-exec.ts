/**
 * Running one CNI plugin binary per the spec: environment CNI_*, the network config on stdin,
 * the result (or a JSON error {code, msg, details}) on stdout. The plugin is the only process.
 */
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  BerthError,
  deadlineExceeded,
  type ErrorCode,
  failedPrecondition,
  internal,
} from "../common/errors.js";
import { run, tail } from "../common/process.js";

export const DEFAULT_BIN_DIRS: readonly string[] = ["/usr/lib/cni", "/opt/cni/bin"];
export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION";

/** A plugin's failure: its JSON error (`code`, `msg`, `details`) when it printed one. */
export class CniPluginError extends BerthError {
  readonly plugin: string;
  readonly command: CniCommand;
  /** The CNI error code (1-99 spec, 100+ plugin-specific); undefined without a JSON error. */
  readonly cniCode: number | undefined;
  readonly msg: string;
  readonly details: string | undefined;
  constructor(
    code: ErrorCode,
    plugin: string,
    command: CniCommand,
    cniCode: number | undefined,
    msg: string,
    details: string | undefined,
  ) {
    const codePart = cniCode === undefined ? "" : ` (CNI error ${cniCode})`;
    super(code, `CNI plugin ${plugin} ${command} failed${codePart}: ${msg}${details ? `: ${details}` : ""}`);
    this.plugin = plugin;
    this.command = command;
    this.cniCode = cniCode;
    this.msg = msg;
    this.details = details;
  }
}

/** Resolves a plugin type to an executable in the first bin dir that has it. */
export async function findPlugin(type: string, binDirs: readonly string[]): Promise<string> {
  if (type.includes("/") || type === "." || type === "..") {
    throw failedPrecondition(`invalid CNI plugin type ${JSON.stringify(type)}`);
  }
  for (const dir of binDirs) {
    const p = join(dir, type);
    try {
      if (!(await stat(p)).isFile()) continue;
      await access(p, constants.X_OK);
      return p;
    } catch {
      // not in this dir
    }
  }
  throw failedPrecondition(`CNI plugin "${type}" not found in ${binDirs.join(", ")}`);
}

export interface PluginCall {
  command: Exclude<CniCommand, "VERSION">;
  containerId: string;
  /** Netns path; "" when it is gone (DEL only). */
  netns: string;
  ifName: string;
  cniArgs: string;
  binDirs: readonly string[];
  timeoutMs: number;
}

/** Environment for a plugin: ours minus any inherited CNI_*, plus the call's. */
export function pluginEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CNI_")) env[k] = v;
  env["PATH"] ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return { ...env, ...vars };
}

/**
 * Runs `pluginPath` with `netconf` on stdin. Resolves the parsed stdout (undefined when empty,
 * as for DEL); throws CniPluginError on a non-zero exit, DeadlineExceeded on timeout.
 */
export async function execPlugin(
  pluginPath: string,
  netconf: Record<string, unknown>,
  call: PluginCall,
): Promise<unknown> {
  const type = String(netconf["type"]);
  const env = pluginEnv({
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifName,
    CNI_ARGS: call.cniArgs,
    CNI_PATH: call.binDirs.join(":"),
  });
  return runAndParse(pluginPath, type, call.command, env, JSON.stringify(netconf), call.timeoutMs);
}

async function runAndParse(
  pluginPath: string,
  type: string,
  command: CniCommand,
  env: NodeJS.ProcessEnv,
  input: string,
  timeoutMs: number,
): Promise<unknown> {
  let res: Awaited<ReturnType<typeof run>>;
  try {
    res = await run(pluginPath, [], { env, input, timeoutMs, maxOutput: 4 * 1024 * 1024 });
  } catch (err) {
    throw internal(
      `CNI plugin ${type} ${command}: cannot execute ${pluginPath}: ${(err as Error).message}`,
      err,
    );
  }
  if (res.timedOut) throw deadlineExceeded(`CNI plugin ${type} ${command} timed out after ${timeoutMs} ms`);
  const out = res.stdout.trim();
  if (res.exitCode !== 0) throw pluginFailure(type, command, out, res.stderr, res.exitCode ?? res.signal);
  if (out === "") return undefined;
  try {
    return JSON.parse(out) as unknown;
  } catch (err) {
    throw internal(
      `CNI plugin ${type} ${command}: invalid JSON on stdout: ${(err as Error).message}: ${tail(out, 500)}`,
    );
  }
}

/** Builds the error for a failed plugin from its stdout (JSON error) or stderr. */
export function pluginFailure(
  type: string,
  command: CniCommand,
  stdout: string,
  stderr: string,
  exit: number | string | null,
): CniPluginError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    parsed = undefined;
  }
  if (
    typeof parsed === "object" &&
    parsed !== null &&
    typeof (parsed as { msg?: unknown }).msg === "string"
  ) {
    const e = parsed as { code?: unknown; msg: string; details?: unknown };
    const cniCode = typeof e.code === "number" ? e.code : undefined;
    const details = typeof e.details === "string" && e.details !== "" ? e.details : undefined;
    // 11 = "try again later"; everything else is the plugin's (or its config's) failure.
    return new CniPluginError(
      cniCode === 11 ? "Unavailable" : "Internal",
      type,
      command,
      cniCode,
      e.msg,
      details,
    );
  }
  const text = tail(stderr) || tail(stdout) || "no output";
  return new CniPluginError("Internal", type, command, undefined, `exit status ${exit}: ${text}`, undefined);
}

export interface PluginVersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}

/** CNI_COMMAND=VERSION: which cniVersions a plugin supports. */
export async function pluginVersionInfo(pluginPath: string, timeoutMs = 10_000): Promise<PluginVersionInfo> {
  const type = pluginPath.slice(pluginPath.lastIndexOf("/") + 1);
  const env = pluginEnv({ CNI_COMMAND: "VERSION" });
  const out = await runAndParse(
    pluginPath,
    type,
    "VERSION",
    env,
    JSON.stringify({ cniVersion: "0.4.0" }),
    timeoutMs,
  );
  const o = out as { cniVersion?: unknown; supportedVersions?: unknown } | undefined;
  if (typeof o?.cniVersion !== "string" || !Array.isArray(o.supportedVersions)) {
    throw internal(`CNI plugin ${type} VERSION: unexpected output`);
  }
  return {
    cniVersion: o.cniVersion,
    supportedVersions: o.supportedVersions.filter((v) => typeof v === "string"),
  };
}
