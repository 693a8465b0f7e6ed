#!/usr/bin/env node
import { main } from "../cli/main.js";

// `berth ps | head`: a closed pipe ends the command quietly, as with other tools.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`berth: ${(err as Error).message}`);
    process.exitCode = 2;
  },
);
