/** Whether a suite can run here, as node:test's `skip` option wants it. */

/** false as root; else why the suite is skipped ("needs root (what)"). */
export function needsRoot(what?: string): string | false {
  return process.getuid?.() === 0 ? false : `needs root${what ? ` (${what})` : ""}`;
}
