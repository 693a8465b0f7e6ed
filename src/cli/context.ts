/** What every berth command gets: the client, its arguments and options, and output. */
import type { CriClient } from "../api/client.js";

export type Flags = Record<string, string | boolean | string[] | undefined>;

export interface CommandContext {
  /** The CRI client (created only for commands that talk to the runtime). */
  client: CriClient;
  /** Positional arguments (for run/exec: those before the command). */
  args: string[];
  /** run/exec: the command and its arguments after IMAGE/CONTAINER. */
  command: string[];
  flags: Flags;
  out: (s: string) => void;
  endpoint: string;
  /** --timeout in seconds, when given. */
  timeoutS?: number | undefined;
}

/** A command resolves with its exit code (undefined: 0). */
// biome-ignore lint/suspicious/noConfusingVoidType: commands that print only may return nothing
export type Command = (ctx: CommandContext) => Promise<number | undefined | void>;

export const str = (flags: Flags, name: string): string | undefined => {
  const v = flags[name];
  return typeof v === "string" ? v : undefined;
};

export const list = (flags: Flags, name: string): string[] => {
  const v = flags[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
};
