/** An OCI bundle's config.json: written once when the bundle is made, read back later. */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Spec } from "./types.js";

export function writeBundleSpec(bundle: string, spec: Spec): Promise<void> {
  return writeFile(join(bundle, "config.json"), JSON.stringify(spec));
}

/** The spec the bundle was made with; rejects when it is missing or unreadable. */
export async function readBundleSpec(bundle: string): Promise<Spec> {
  return JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as Spec;
}
