#!/usr/bin/env node
/** berthd [--config FILE] [--root DIR] [--state DIR] [--listen PATH] [--log-level L] [--backend B] [--docker-endpoint URL] */
// First: V8 settings that must be in force before the heap grows.
import "../daemon/heap-flags.js";

import { parseArgs } from "node:util";
import { createLogger, LOG_LEVELS, type LogLevel } from "../common/logger.js";
import { BERTH_VERSION } from "../common/version.js";
import { type BerthConfig, configFromToml, loadConfig } from "../config/config.js";
import { Daemon } from "../daemon/daemon.js";

const USAGE = `usage: berthd [--config FILE] [--root DIR] [--state DIR] [--listen PATH] [--log-level LEVEL]
              [--backend native|docker] [--docker-endpoint URL]

  --config FILE     TOML config (default /etc/berth/berth.toml, optional)
  --root DIR        persistent data: content, snapshots, metadata (default /var/lib/berth)
  --state DIR       volatile state (default /run/berth)
  --listen PATH     CRI unix socket (default /run/berth/berth.sock)
  --log-level L     ${LOG_LEVELS.join(", ")} (default info)
  --backend B       native (conmon + runc, default) or docker (a Docker Engine runs the containers)
  --docker-endpoint URL  the Docker Engine's socket (default unix:///var/run/docker.sock)
  --version         print the version and exit`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      root: { type: "string" },
      state: { type: "string" },
      listen: { type: "string" },
      "log-level": { type: "string" },
      backend: { type: "string" },
      "docker-endpoint": { type: "string" },
      version: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.version) {
    console.log(`berthd ${BERTH_VERSION}`);
    return;
  }
  const fromFile = await loadConfig(values.config);
  // Flags override the file; they go through the same validation.
  const overrides = configFromToml({
    ...(values.root !== undefined && { root: values.root }),
    ...(values.state !== undefined && { state: values.state }),
    ...(values.listen !== undefined && { listen: values.listen }),
    ...(values["log-level"] !== undefined && { log_level: values["log-level"] }),
    ...(values.backend !== undefined && { backend: values.backend }),
    ...(values["docker-endpoint"] !== undefined && { docker_endpoint: values["docker-endpoint"] }),
  });
  const config: BerthConfig = {
    ...fromFile,
    ...(values.root !== undefined && { root: overrides.root }),
    ...(values.state !== undefined && { state: overrides.state }),
    ...(values.listen !== undefined && { listen: overrides.listen }),
    ...(values["log-level"] !== undefined && { logLevel: overrides.logLevel as LogLevel }),
    ...(values.backend !== undefined && { backend: overrides.backend }),
    ...(values["docker-endpoint"] !== undefined && { dockerEndpoint: overrides.dockerEndpoint }),
  };
  const logger = createLogger(config.logLevel);
  const daemon = new Daemon(config, logger);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  try {
    await daemon.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, "berthd failed to start");
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error(`berthd: ${(err as Error).message}`);
  process.exit(1);
});
