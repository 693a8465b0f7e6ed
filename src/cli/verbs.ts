/**
 * The berth verbs: usage, options and a loader each. Only the verb's own module (and the CRI
 * client, when it talks to the runtime) is loaded, to keep start-up short.
 */
import type { Command } from "./context.js";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

export interface Verb {
  summary: string;
  usage: string;
  example: string;
  options?: Record<string, OptionSpec>;
  /** The command (run, exec) starts after this many positional arguments. */
  commandAfter?: number;
  /** Needs no CRI client (version uses its own small one; completion none). */
  noClient?: boolean;
  load: () => Promise<Command>;
}

const output = { output: { type: "string", short: "o" }, template: { type: "string" } } as const;
const quiet = { quiet: { type: "boolean", short: "q" } } as const;
const rt = async () => import("./runtime-commands.js");
const img = async () => import("./commands.js");
const listFilters = {
  name: { type: "string" },
  state: { type: "string" },
  label: { type: "string", short: "l", multiple: true },
  id: { type: "string" },
  latest: { type: "boolean" },
  ...output,
  ...quiet,
} as const;

export const verbs: Record<string, Verb> = {
  version: {
    summary: "Show the runtime's name and versions",
    usage: "version",
    example: "berth version",
    noClient: true,
    load: async () => (await import("./version.js")).version,
  },
  info: {
    summary: "Show the runtime's status and configuration",
    usage: "info [-o json|yaml]",
    example: "berth info -o yaml",
    options: output,
    load: async () => (await img()).info,
  },
  pull: {
    summary: "Pull an image from a registry",
    usage: "pull [-q] [--creds USER:PASSWORD] [--auth BASE64] IMAGE",
    example: "berth pull docker.io/library/busybox:latest",
    options: { creds: { type: "string" }, auth: { type: "string" }, ...quiet },
    load: async () => (await img()).pull,
  },
  images: {
    summary: "List images",
    usage: "images [-q] [--digests] [-o json|yaml|table] [FILTER]",
    example: "berth images -q busybox",
    options: { digests: { type: "boolean" }, ...output, ...quiet },
    load: async () => (await img()).images,
  },
  inspecti: {
    summary: "Show an image's status",
    usage: "inspecti [-o json|yaml] IMAGE",
    example: "berth inspecti busybox",
    options: output,
    load: async () => (await img()).inspecti,
  },
  rmi: {
    summary: "Remove images",
    usage: "rmi IMAGE...",
    example: "berth rmi busybox",
    load: async () => (await img()).rmi,
  },
  imagefsinfo: {
    summary: "Show the image filesystem's usage",
    usage: "imagefsinfo [-o json|yaml]",
    example: "berth imagefsinfo",
    options: output,
    load: async () => (await img()).imagefsinfo,
  },
  "image import": {
    summary: "Load an OCI layout (dir or tar) or docker save tarball; '-' reads stdin (Berth only)",
    usage: "image import [--tag NAME] FILE|DIR|-",
    example: "berth image import --tag docker.io/me/app:1 app.tar",
    options: { tag: { type: "string" } },
    load: async () => (await img()).imageImport,
  },
  run: {
    summary: "Run IMAGE in a new pod (docker-like), wait for it and pass its exit code on",
    usage:
      "run [-i] [-t] [-d] [--rm] [--name NAME] [-p [IP:]HOST:PORT[/udp]]... [-e K=V]... [--env-file FILE]... " +
      "[-v SRC:DST[:ro]]... [-u USER[:GROUP]] [-w DIR] [--entrypoint CMD] [--pull missing|always|never] " +
      "[--network pod|host] [-l K=V]... [--runtime HANDLER] IMAGE [COMMAND [ARG...]]",
    example: "berth run --rm -it busybox sh",
    commandAfter: 1,
    options: {
      interactive: { type: "boolean", short: "i" },
      tty: { type: "boolean", short: "t" },
      detach: { type: "boolean", short: "d" },
      rm: { type: "boolean" },
      name: { type: "string" },
      publish: { type: "string", short: "p", multiple: true },
      env: { type: "string", short: "e", multiple: true },
      "env-file": { type: "string", multiple: true },
      volume: { type: "string", short: "v", multiple: true },
      user: { type: "string", short: "u" },
      workdir: { type: "string", short: "w" },
      entrypoint: { type: "string" },
      pull: { type: "string" },
      network: { type: "string" },
      label: { type: "string", short: "l", multiple: true },
      runtime: { type: "string" },
      ...quiet,
    },
    load: async () => (await import("./run.js")).run,
  },
  runp: {
    summary: "Run a pod from a PodSandboxConfig JSON file (camelCase or snake_case keys)",
    usage: "runp [--runtime HANDLER] POD_CONFIG.json",
    example: "berth runp pod.json",
    options: { runtime: { type: "string" } },
    load: async () => (await rt()).runp,
  },
  create: {
    summary: "Create a container in a pod from JSON configs (camelCase or snake_case keys)",
    usage: "create POD CONTAINER_CONFIG.json POD_CONFIG.json",
    example: "berth create mypod container.json pod.json",
    load: async () => (await rt()).create,
  },
  start: {
    summary: "Start created containers",
    usage: "start CONTAINER...",
    example: "berth start web",
    load: async () => (await rt()).start,
  },
  stop: {
    summary: "Stop running containers",
    usage: "stop [--timeout-seconds N] CONTAINER...",
    example: "berth stop --timeout-seconds 2 web",
    options: { "timeout-seconds": { type: "string" } },
    load: async () => (await rt()).stop,
  },
  rm: {
    summary: "Remove containers (-f: stop them first)",
    usage: "rm [-f] CONTAINER...",
    example: "berth rm -f web",
    options: { force: { type: "boolean", short: "f" } },
    load: async () => (await rt()).rm,
  },
  stopp: {
    summary: "Stop pods (and their containers)",
    usage: "stopp POD...",
    example: "berth stopp web",
    load: async () => (await rt()).stopp,
  },
  rmp: {
    summary: "Remove pods (and their containers; -f: stop them first)",
    usage: "rmp [-f] POD...",
    example: "berth rmp -f web",
    options: { force: { type: "boolean", short: "f" } },
    load: async () => (await rt()).rmp,
  },
  pods: {
    summary: "List pods",
    usage:
      "pods [-q] [--name RE] [--state ready|notready] [-l K=V]... [--namespace NS] [--id ID] [--latest] [-o table|wide|json|yaml|go-template=TPL|go-template --template TPL] [NAME]",
    example: "berth pods --state ready -l app=web -o wide",
    options: { ...listFilters, namespace: { type: "string" } },
    load: async () => (await import("./list.js")).pods,
  },
  ps: {
    summary: "List containers (-a: also exited ones)",
    usage:
      "ps [-a] [-q] [--name RE] [--state created|running|exited|unknown] [-l K=V]... [--pod POD] [--image IMAGE] [--id ID] [--latest] [-o table|wide|json|yaml|go-template=TPL|go-template --template TPL] [NAME]",
    example: "berth ps -a --state exited --pod web -o json",
    options: {
      ...listFilters,
      all: { type: "boolean", short: "a" },
      pod: { type: "string", short: "p" },
      image: { type: "string" },
    },
    load: async () => (await import("./list.js")).ps,
  },
  inspect: {
    summary: "Show a container's status: enum names, RFC 3339 times, parsed info",
    usage: "inspect [-o json|yaml] CONTAINER",
    example: "berth inspect -o yaml web",
    options: output,
    load: async () => (await import("./inspect.js")).inspect,
  },
  inspectp: {
    summary: "Show a pod's status: enum names, RFC 3339 times, parsed info",
    usage: "inspectp [-o json|yaml] POD",
    example: "berth inspectp web",
    options: output,
    load: async () => (await import("./inspect.js")).inspectp,
  },
  exec: {
    summary: "Run a command in a container: streamed (-i stdin, -t terminal), or with -s through ExecSync",
    usage: "exec [-i] [-t] [-s [--timeout-seconds N]] CONTAINER [--] COMMAND [ARG...]",
    example: "berth exec -it web sh",
    commandAfter: 1,
    options: {
      interactive: { type: "boolean", short: "i" },
      tty: { type: "boolean", short: "t" },
      sync: { type: "boolean", short: "s" },
      "timeout-seconds": { type: "string" },
    },
    load: async () => (await rt()).exec,
  },
  attach: {
    summary: "Attach to a running container's stdio; Ctrl-P Ctrl-Q detaches; its exit code is passed on",
    usage: "attach [-i] [-t] [--detach-keys KEYS] CONTAINER",
    example: "berth attach -it web",
    options: {
      interactive: { type: "boolean", short: "i" },
      tty: { type: "boolean", short: "t" },
      "detach-keys": { type: "string" },
    },
    load: async () => (await rt()).attach,
  },
  "port-forward": {
    summary: "Forward local ports (127.0.0.1) to a pod's ports until interrupted",
    usage: "port-forward POD [LOCAL:]REMOTE...",
    example: "berth port-forward web 8080:80",
    load: async () => (await rt()).portForward,
  },
  logs: {
    summary: "Print a container's log (with rotated files); -f follows it across rotations",
    usage: "logs [-f] [--tail N] [--since DURATION|TIME] [-t|--timestamps] CONTAINER",
    example: "berth logs -f --tail 10 web",
    options: {
      follow: { type: "boolean", short: "f" },
      tail: { type: "string" },
      since: { type: "string" },
      timestamps: { type: "boolean", short: "t" },
    },
    load: async () => (await import("./logs.js")).logs,
  },
  stats: {
    summary: "Show containers' resource usage (CPU % of one core, memory, writable layer)",
    usage: "stats [-a] [-w] [-o json|yaml] [--seconds N] [CONTAINER]",
    example: "berth stats --watch web",
    options: {
      all: { type: "boolean", short: "a" },
      watch: { type: "boolean", short: "w" },
      seconds: { type: "string" },
      ...output,
    },
    load: async () => (await rt()).stats,
  },
  statsp: {
    summary: "Show pods' resource usage (CPU, memory, network bytes)",
    usage: "statsp [-w] [-o json|yaml] [--seconds N] [POD]",
    example: "berth statsp web",
    options: { watch: { type: "boolean", short: "w" }, seconds: { type: "string" }, ...output },
    load: async () => (await rt()).statsp,
  },
  update: {
    summary: "Update running containers' resources",
    usage:
      "update [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--cpuset-cpus LIST] [--cpuset-mems LIST] [--memory BYTES[k|m|g]] CONTAINER...",
    example: "berth update --memory 64m web",
    options: {
      "cpu-shares": { type: "string" },
      "cpu-quota": { type: "string" },
      "cpu-period": { type: "string" },
      "cpuset-cpus": { type: "string" },
      "cpuset-mems": { type: "string" },
      memory: { type: "string", short: "m" },
    },
    load: async () => (await import("./extra.js")).update,
  },
  events: {
    summary: "Stream container events until interrupted",
    usage: "events [-o table|json]",
    example: "berth events -o json",
    options: output,
    load: async () => (await import("./extra.js")).events,
  },
  timeline: {
    summary: "Draw a pod's start-up phases as a bar chart",
    usage: "timeline POD",
    example: "berth timeline web",
    load: async () => (await import("./extra.js")).timeline,
  },
  checkpoint: {
    summary: "Write a checkpoint archive of a running container (it keeps running)",
    usage: "checkpoint CONTAINER --export FILE",
    example: "berth checkpoint counter --export /var/tmp/counter.tar",
    options: { export: { type: "string", short: "e" } },
    load: async () => (await import("./checkpoint.js")).checkpoint,
  },
  "checkpoint restore": {
    summary: "Restore a container from a checkpoint archive into a pod, and start it",
    usage: "checkpoint restore ARCHIVE --pod POD [--name NAME]",
    example: "berth checkpoint restore /var/tmp/counter.tar --pod web",
    options: { pod: { type: "string" }, name: { type: "string" } },
    load: async () => (await import("./checkpoint.js")).restore,
  },
  completion: {
    summary: "Print a shell completion script (bash, zsh or fish)",
    usage: "completion bash|zsh|fish",
    example: "source <(berth completion bash)",
    noClient: true,
    load: async () => (await import("./completion.js")).completion,
  },
};

/** The verb `argv` starts with ("image import" is two words), or undefined. */
export function findVerb(argv: string[]): { name: string; verb: Verb } | undefined {
  const two = argv.slice(0, 2).join(" ");
  for (const name of [two, argv[0] ?? ""]) {
    const verb = verbs[name];
    if (verb) return { name, verb };
  }
  return undefined;
}

/** The closest verb name to a mistyped one (edit distance ≤ 2), for the hint. */
export function closestVerb(word: string): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const name of Object.keys(verbs)) {
    const d = distance(word, name);
    if (d < bestD) {
      best = name;
      bestD = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
