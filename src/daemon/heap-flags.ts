/**
 * V8 settings for a long-running daemon, applied before anything else is loaded (the first
 * import of bin/berthd.ts). The young generation starts at 1 MiB a semi-space and would grow to
 * 16 MiB (32 MiB resident for good) under a pull's allocation rate; kept at its start size, a
 * scavenge is more frequent but stays cheap (berthd keeps few young objects alive), and the
 * daemon's RSS stays ~30 MiB lower.
 */
import { setFlagsFromString } from "node:v8";

setFlagsFromString("--semi-space-growth-factor=1");
