#!/usr/bin/env node
import { main } from "../cli/main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`berth: ${(err as Error).message}`);
    process.exitCode = 2;
  },
);
