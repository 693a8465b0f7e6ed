/**
 * The pod sandbox image of the Docker backend: one layer holding berth-pause (the static
 * binary the native backend runs as a pod's init), loaded into the engine as a `docker save`
 * tarball, so that no registry is needed for a pod to start.
 */
import { readFile } from "node:fs/promises";
import { arch } from "node:os";
import { pack } from "tar-stream";
import { BERTH_VERSION } from "../common/version.js";
import { digestHex, sha256 } from "../image/digest.js";
import { POD_INIT_BINARY } from "../pod/pod-init.js";

export const BUILTIN_PAUSE_IMAGE = `berth.local/pause:${BERTH_VERSION}`;

async function tarOf(entries: Array<{ name: string; content: Buffer; mode?: number }>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on("end", resolve);
    p.on("error", reject);
  });
  const mtime = new Date("2024-01-01T00:00:00Z");
  for (const e of entries)
    p.entry({ name: e.name, mode: e.mode ?? 0o644, mtime, size: e.content.length }, e.content);
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** `docker save` tarball of the pause image, tagged `tag`. */
export async function pauseImageArchive(tag: string, binary = POD_INIT_BINARY): Promise<Buffer> {
  const layer = await tarOf([{ name: "pause", content: await readFile(binary), mode: 0o755 }]);
  const layerId = digestHex(sha256(layer));
  const config = Buffer.from(
    JSON.stringify({
      architecture: { x64: "amd64", arm64: "arm64", arm: "arm" }[arch()] ?? arch(),
      os: "linux",
      config: { Entrypoint: ["/pause"], Labels: { "io.berth.pause": "true" } },
      rootfs: { type: "layers", diff_ids: [`sha256:${layerId}`] },
      history: [{ created_by: "berth: native/pause.c" }],
    }),
  );
  const configName = `${digestHex(sha256(config))}.json`;
  const manifest = [{ Config: configName, RepoTags: [tag], Layers: [`${layerId}/layer.tar`] }];
  return tarOf([
    { name: configName, content: config },
    { name: `${layerId}/layer.tar`, content: layer },
    { name: "manifest.json", content: Buffer.from(JSON.stringify(manifest)) },
  ]);
}
