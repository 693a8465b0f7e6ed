/** berth: a CRI client for any CRI endpoint (berthd, containerd, CRI-O). */
import { parseArgs } from "node:util";
import type { CommandContext, Flags } from "./context.js";
import { describeError, EXIT, UsageError } from "./errors.js";
import { closestVerb, findVerb, type OptionSpec, type Verb, verbs } from "./verbs.js";

export const DEFAULT_ENDPOINT = "unix:///run/berth/berth.sock";

export function usage(): string {
  const lines = Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(14)} ${v.summary}`);
  return `usage: berth [--runtime-endpoint ENDPOINT] [--timeout SECONDS] COMMAND [ARGS]

Talks CRI v1 to a container runtime. ENDPOINT defaults to $CONTAINER_RUNTIME_ENDPOINT,
else ${DEFAULT_ENDPOINT}; containerd (unix:///run/containerd/containerd.sock) and
CRI-O (unix:///var/run/crio/crio.sock) work too.

Commands:
${lines.join("\n")}

berth COMMAND --help shows a command's usage. Exit codes: 0 ok, 1 the runtime failed the
request, 2 usage, 125 run failed before the container ran, 126/127 command not executable/not
found, 130 interrupted; run/exec/attach pass the container's exit code on.`;
}

interface Globals {
  endpoint?: string;
  timeout?: string;
  help?: boolean;
  version?: boolean;
}

/** Global options come before the verb; returns them and the index of the verb. */
export function parseGlobals(argv: string[]): { globals: Globals; rest: string[] } {
  const g: Globals = {};
  let i = 0;
  const value = (a: string, name: string) => {
    const eq = a.indexOf("=");
    if (eq >= 0) return a.slice(eq + 1);
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`option ${name} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("-") || a === "-") break;
    if (a === "--") {
      i++;
      break;
    }
    const name = a.split("=")[0]!;
    if (name === "-r" || name === "--runtime-endpoint" || name === "--image-endpoint" || name === "-i")
      g.endpoint = value(a, name);
    else if (name === "-t" || name === "--timeout") g.timeout = value(a, name);
    else if (name === "-h" || name === "--help") g.help = true;
    else if (name === "-v" || name === "--version") g.version = true;
    else throw new UsageError(`unknown option ${name}`);
  }
  return { globals: g, rest: argv.slice(i) };
}

/**
 * Splits a verb's arguments: options and positionals, and for run/exec the command, which
 * starts after `commandAfter` positionals or a `--`.
 */
export function splitArgs(
  args: string[],
  options: Record<string, OptionSpec>,
  commandAfter: number | undefined,
): { head: string[]; command: string[] } {
  if (commandAfter === undefined) return { head: args, command: [] };
  const takesValue = (a: string): boolean => {
    if (a.startsWith("--")) {
      if (a.includes("=")) return false;
      return options[a.slice(2)]?.type === "string";
    }
    // -it, -p8080:80: a value-taking short option at the end of a group takes the next word
    const group = a.slice(1);
    for (let k = 0; k < group.length; k++) {
      const spec = Object.values(options).find((o) => o.short === group[k]);
      if (spec?.type === "string") return k === group.length - 1;
    }
    return false;
  };
  let positionals = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") return { head: args.slice(0, i), command: args.slice(i + 1) };
    if (a.startsWith("-") && a !== "-") {
      if (takesValue(a)) i++;
      continue;
    }
    positionals++;
    if (positionals === commandAfter) {
      const rest = args.slice(i + 1);
      return { head: args.slice(0, i + 1), command: rest[0] === "--" ? rest.slice(1) : rest };
    }
  }
  return { head: args, command: [] };
}

function parseVerbArgs(
  verb: Verb,
  args: string[],
): { flags: Flags; positionals: string[]; command: string[] } {
  const options = { ...(verb.options ?? {}), help: { type: "boolean", short: "h" } } as Record<
    string,
    OptionSpec
  >;
  const { head, command } = splitArgs(args, options, verb.commandAfter);
  try {
    const { values, positionals } = parseArgs({ args: head, options, allowPositionals: true, strict: true });
    const flags = values as Flags;
    // crictl's spelling: -o go-template --template TPL
    if (flags["output"] === "go-template" && typeof flags["template"] === "string")
      flags["output"] = `go-template=${flags["template"]}`;
    return { flags, positionals, command };
  } catch (err) {
    // node's messages: "Unknown option '--x'. To specify a positional argument…"
    const m = (err as Error).message.split(". ")[0] ?? (err as Error).message;
    throw new UsageError(m.replace(/^Unknown option/, "unknown option"));
  }
}

export async function main(argv: string[]): Promise<number> {
  let endpoint = process.env["CONTAINER_RUNTIME_ENDPOINT"] || DEFAULT_ENDPOINT;
  let found: { name: string; verb: Verb } | undefined;
  let timeoutS: number | undefined;
  try {
    const { globals, rest } = parseGlobals(argv);
    if (globals.version) {
      const { BERTH_VERSION } = await import("../common/version.js");
      console.log(`berth ${BERTH_VERSION}`);
      return EXIT.ok;
    }
    if (rest.length === 0) {
      (globals.help ? console.log : console.error)(usage());
      return globals.help ? EXIT.ok : EXIT.usage;
    }
    if (rest[0] === "help") {
      const v = findVerb(rest.slice(1));
      console.log(
        v ? `usage: berth ${v.verb.usage}\n\n${v.verb.summary}\n\nexample: ${v.verb.example}` : usage(),
      );
      return EXIT.ok;
    }
    found = findVerb(rest);
    if (!found) {
      const word = rest[0]!;
      const hint = closestVerb(word);
      console.error(
        `berth: unknown command "${word}"${hint ? ` (did you mean "${hint}"?)` : ""}\nRun 'berth --help' for the list of commands.`,
      );
      return EXIT.usage;
    }
    const { name, verb } = found;
    const { flags, positionals, command } = parseVerbArgs(verb, rest.slice(name.split(" ").length));
    if (flags["help"] || globals.help) {
      console.log(`usage: berth ${verb.usage}\n\n${verb.summary}\n\nexample: ${verb.example}`);
      return EXIT.ok;
    }
    if (globals.endpoint) endpoint = globals.endpoint;
    if (globals.timeout !== undefined) {
      timeoutS = Number(globals.timeout);
      if (!(timeoutS > 0)) throw new UsageError("--timeout must be a positive number of seconds");
    }
    const [run, mod] = await Promise.all([
      verb.load(),
      verb.noClient ? undefined : import("../api/client.js"),
    ]);
    const client = mod
      ? new mod.CriClient(endpoint, timeoutS ? { timeoutMs: timeoutS * 1000 } : {})
      : undefined;
    const ctx: CommandContext = {
      get client() {
        if (!client) throw new Error("this command has no CRI client");
        return client;
      },
      args: positionals,
      command,
      flags,
      out: (s) => console.log(s),
      endpoint,
      timeoutS,
    };
    try {
      return (await run(ctx)) ?? EXIT.ok;
    } finally {
      client?.close();
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`berth: ${err.message}${found ? `\nusage: berth ${found.verb.usage}` : ""}`);
      return EXIT.usage;
    }
    const { text, code } = describeError(err, endpoint, timeoutS);
    console.error(`berth: ${text}`);
    return code;
  }
}
