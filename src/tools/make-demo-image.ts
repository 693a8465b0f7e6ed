#!/usr/bin/env node
/** Writes the demo image (busybox httpd) as an OCI archive: make-demo-image.js OUT.tar [NAME] */
import { writeFile } from "node:fs/promises";
import { demoImage } from "./busybox-image.js";
import { ociArchive } from "./oci-builder.js";

export const DEMO_IMAGE = "docker.io/berth/demo:latest";

const [out, name = DEMO_IMAGE] = process.argv.slice(2);
if (!out) {
  console.error("usage: make-demo-image.js OUT.tar [NAME]");
  process.exit(2);
}
await writeFile(out, await ociArchive([{ image: await demoImage(), name }]));
console.log(`wrote ${name} to ${out}`);
