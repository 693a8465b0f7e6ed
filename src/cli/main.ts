/** berth: a CRI client for any CRI endpoint (berthd, containerd, CRI-O). */
import { parseArgs } from "node:util";
import { type ServiceError, status } from "@grpc/grpc-js";
import { CriClient, DEFAULT_ENDPOINT } from "../api/client.js";
import { BERTH_VERSION } from "../common/version.js";
import { commands as imageCommands, UsageError } from "./commands.js";
import { runtimeCommands } from "./runtime-commands.js";

const commands = { ...imageCommands, ...runtimeCommands };

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`);
  return `usage: berth [--runtime-endpoint ENDPOINT] [--timeout SECONDS] COMMAND [ARGS]

Talks CRI v1 to a container runtime. ENDPOINT defaults to $CONTAINER_RUNTIME_ENDPOINT,
else ${DEFAULT_ENDPOINT}; containerd (unix:///run/containerd/containerd.sock) and
CRI-O (unix:///var/run/crio/crio.sock) work too.

Commands:
${lines.join("\n")}

berth COMMAND --help shows a command's usage.`;
}

/**
 * `-t` is the global --timeout, except after exec/attach, where (as in crictl and docker) it
 * means --tty; `-it` and `-ti` are spelled out.
 */
export function expandTtyFlags(argv: string[]): string[] {
  const at = argv.findIndex((a) => a === "exec" || a === "attach");
  if (at < 0) return argv;
  const out = argv.slice(0, at + 1);
  let rest = false;
  for (const a of argv.slice(at + 1)) {
    if (rest || a === "--") {
      rest = true;
      out.push(a);
    } else if (a === "-t") out.push("--tty");
    else if (a === "-it" || a === "-ti") out.push("-i", "--tty");
    else out.push(a);
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: expandTtyFlags(argv),
    allowPositionals: true,
    options: {
      "runtime-endpoint": { type: "string", short: "r" },
      timeout: { type: "string", short: "t" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
      q: { type: "boolean", short: "q" },
      digests: { type: "boolean" },
      output: { type: "string", short: "o" },
      creds: { type: "string" },
      auth: { type: "string" },
      tag: { type: "string" },
      all: { type: "boolean", short: "a" },
      name: { type: "string" },
      publish: { type: "string", short: "p" },
      runtime: { type: "string" },
      "timeout-seconds": { type: "string" },
      interactive: { type: "boolean", short: "i" },
      tty: { type: "boolean" },
      sync: { type: "boolean", short: "s" },
      seconds: { type: "string" },
    },
  });
  if (values.version) {
    console.log(`berth ${BERTH_VERSION}`);
    return 0;
  }
  const two = positionals.slice(0, 2).join(" ");
  const name = commands[two] ? two : (positionals[0] ?? "");
  const command = commands[name];
  if (!command) {
    console.log(usage());
    return name === "" || values.help ? 0 : 2;
  }
  if (values.help) {
    console.log(`usage: berth ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  const endpoint =
    values["runtime-endpoint"] ?? process.env["CONTAINER_RUNTIME_ENDPOINT"] ?? DEFAULT_ENDPOINT;
  const timeoutS = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutS !== undefined && !(timeoutS > 0)) {
    console.error("berth: --timeout must be a positive number of seconds");
    return 2;
  }
  const client = new CriClient(endpoint, timeoutS ? { timeoutMs: timeoutS * 1000 } : {});
  try {
    await command.run({
      client,
      args: positionals.slice(name.split(" ").length),
      flags: { ...values, o: values.output, a: values.all },
      out: (s) => console.log(s),
    });
    // A command may have set the exit code (e.g. exec passes the remote command's on).
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`berth: ${err.message}\nusage: berth ${command.usage}`);
      return 2;
    }
    const e = err as Partial<ServiceError> & Error;
    if (e.code === status.UNAVAILABLE) {
      console.error(`berth: cannot reach the runtime at ${endpoint}: ${e.details ?? e.message}`);
    } else {
      console.error(`berth: ${e.details ?? e.message}`);
    }
    return 1;
  } finally {
    client.close();
  }
}
