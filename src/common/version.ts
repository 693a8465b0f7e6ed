import { readFileSync } from "node:fs";

/** Berth's version, from package.json (read once at load time, before any request). */
export const BERTH_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export const RUNTIME_NAME = "berth";
export const CRI_API_VERSION = "v1";
