/** Looking for processes on the host (leak checks in the streaming tests). */
import { readdir, readFile } from "node:fs/promises";

/** Host pids whose command line is exactly `argv`. */
export async function processesWithArgs(argv: string[]): Promise<number[]> {
  const want = `${argv.join("\0")}\0`;
  const found: number[] = [];
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    if ((await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "")) === want) found.push(Number(p));
  }
  return found;
}
