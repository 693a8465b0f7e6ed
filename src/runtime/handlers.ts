/**
 * The configured RuntimeClass handlers: a name → OciRuntime map built from the config's
 * [runtime.handlers] (conmon + a runc-like runtime, or a sandbox runtime such as runsc).
 */
import { invalidArgument, notFound } from "../common/errors.js";
import { DEFAULT_CONMON_PATH } from "./conmon.js";
import {
  ConmonOciRuntime,
  type ConmonRuntimeOptions,
  type HandlerLookup,
  type OciRuntime,
} from "./oci-runtime.js";
import { SandboxOciRuntime } from "./sandbox-runtime.js";

export interface RuntimeHandlerConfig {
  runtimePath: string;
  runtimeRoot: string;
  /** "oci" (conmon + runc-compatible CLI, the default) or "sandbox" (runsc: see sandbox-runtime.ts). */
  runtimeType?: string;
  /** Global flags for every runtime command (config runtime_args). */
  runtimeArgs?: readonly string[];
}

/** The handlers, and what every handler's runtime shares. */
export interface RuntimeHandlersConfig
  extends Pick<
    ConmonRuntimeOptions,
    "stateDir" | "conmonPath" | "conmonLogLevel" | "criuPath" | "runner" | "logger"
  > {
  /** Handler used for an empty RuntimeClass handler; default "runc". */
  defaultHandler?: string;
  handlers?: Record<string, RuntimeHandlerConfig>;
}

export const DEFAULT_HANDLER = "runc";
export const DEFAULT_HANDLERS: Readonly<Record<string, RuntimeHandlerConfig>> = {
  runc: { runtimePath: "/usr/sbin/runc", runtimeRoot: "/run/runc", runtimeType: "oci" },
};

/** RuntimeClass handler name → OciRuntime, built from configuration. */
export class RuntimeHandlers implements HandlerLookup {
  readonly defaultHandler: string;
  private readonly runtimes = new Map<string, OciRuntime>();

  constructor(cfg: RuntimeHandlersConfig) {
    const handlers = cfg.handlers ?? DEFAULT_HANDLERS;
    this.defaultHandler = cfg.defaultHandler ?? DEFAULT_HANDLER;
    for (const [name, h] of Object.entries(handlers)) {
      const type = h.runtimeType ?? "oci";
      if (type !== "oci" && type !== "sandbox") {
        throw invalidArgument(
          `runtime handler "${name}": unsupported runtime_type "${type}" (only "oci" and "sandbox")`,
        );
      }
      if (!h.runtimePath || !h.runtimeRoot) {
        throw invalidArgument(`runtime handler "${name}": runtime_path and runtime_root are required`);
      }
      const options: ConmonRuntimeOptions = {
        handler: name,
        runtimePath: h.runtimePath,
        runtimeRoot: h.runtimeRoot,
        ...(h.runtimeArgs?.length ? { runtimeArgs: h.runtimeArgs } : {}),
        stateDir: cfg.stateDir,
        ...(cfg.conmonPath ? { conmonPath: cfg.conmonPath } : { conmonPath: DEFAULT_CONMON_PATH }),
        ...(cfg.conmonLogLevel ? { conmonLogLevel: cfg.conmonLogLevel } : {}),
        ...(cfg.criuPath ? { criuPath: cfg.criuPath } : {}),
        ...(cfg.runner ? { runner: cfg.runner } : {}),
        ...(cfg.logger ? { logger: cfg.logger } : {}),
      };
      this.runtimes.set(
        name,
        type === "sandbox" ? new SandboxOciRuntime(options) : new ConmonOciRuntime(options),
      );
    }
    if (!this.runtimes.has(this.defaultHandler)) {
      throw invalidArgument(`default runtime handler "${this.defaultHandler}" is not configured`);
    }
  }

  names(): string[] {
    return [...this.runtimes.keys()];
  }

  /** The runtime for a RuntimeClass handler ("" or undefined → the default). */
  get(handler?: string): OciRuntime {
    const name = handler === undefined || handler === "" ? this.defaultHandler : handler;
    const rt = this.runtimes.get(name);
    if (!rt) {
      throw notFound(`runtime handler "${name}" is not configured (known: ${this.names().join(", ")})`);
    }
    return rt;
  }
}
