/** The CRI scenarios every backend passes (src/test/harness/backend-scenarios.ts), on the native backend. */
import { backendScenarios } from "./harness/backend-scenarios.js";
import { needsRoot } from "./harness/skip.js";

let runcRoot = "";
backendScenarios({
  name: "native backend",
  skip: needsRoot("runc, CNI"),
  bridge: "berthdk0",
  subnet: "10.240.0.0/16",
  setUp: async (dir) => {
    runcRoot = `${dir}/runc`;
    return `[runtime.handlers.runc]\nruntime_path = "/usr/sbin/runc"\nruntime_root = "${runcRoot}"`;
  },
  tearDown: async () => {},
});
