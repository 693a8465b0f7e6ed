#!/usr/bin/env node
import { main } from "../collector/cli.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`berth-collector: ${(err as Error).message}`);
    process.exitCode = 2;
  },
);
