/** Pushes images built by tools/oci-builder to a test registry. */
import type { BuiltImage, BuiltIndex } from "./oci-builder.js";
import { pushBlob, pushManifest } from "./registry-server.js";

export async function pushImage(
  registryUrl: string,
  repo: string,
  tag: string | undefined,
  image: BuiltImage,
): Promise<void> {
  for (const layer of image.layers) await pushBlob(registryUrl, repo, layer.blob);
  await pushBlob(registryUrl, repo, image.configBytes);
  await pushManifest(
    registryUrl,
    repo,
    tag ?? image.manifestDigest,
    image.manifestBytes,
    image.manifest.mediaType,
  );
}

export async function pushIndex(
  registryUrl: string,
  repo: string,
  tag: string,
  index: BuiltIndex,
  images: BuiltImage[],
): Promise<void> {
  for (const img of images) await pushImage(registryUrl, repo, undefined, img);
  await pushManifest(registryUrl, repo, tag, index.bytes, "application/vnd.oci.image.index.v1+json");
}
