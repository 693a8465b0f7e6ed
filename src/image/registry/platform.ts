/**
 * Platform normalisation and selection from an image index / manifest list, modelled on
 * containerd's `platforms` package: arch aliases are normalised, arm64 defaults to v8, arm
 * defaults to v7 and accepts older variants (v7 → v6 → v5) in preference order.
 */
import { notFound } from "../../common/errors.js";
import type { Descriptor } from "./oci.js";

/** OCI platform object (image-spec `platform`), as found in index entries. */
export interface Platform {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
  features?: string[];
}

/** Normalises architecture + variant: x86_64→amd64, aarch64→arm64 (v8), armhf→arm v7, "7"→"v7"... */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === "macos" ? "darwin" : p.os.toLowerCase();
  let arch = p.architecture.toLowerCase();
  let variant = (p.variant ?? "").toLowerCase();
  switch (arch) {
    case "i386":
    case "i686":
    case "x86":
      arch = "386";
      variant = "";
      break;
    case "x86_64":
    case "x86-64":
    case "x64":
    case "amd64":
      arch = "amd64";
      if (variant === "v1") variant = "";
      break;
    case "aarch64":
    case "arm64":
      arch = "arm64";
      if (variant === "" || variant === "8" || variant === "v8") variant = "v8";
      break;
    case "armhf":
      arch = "arm";
      variant = "v7";
      break;
    case "armel":
      arch = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === "") variant = "v7";
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
    case "ppc64":
      // Node reports "ppc64" for little-endian Linux ppc64 hosts.
      arch = "ppc64le";
      break;
  }
  const out: Platform = { os, architecture: arch };
  if (variant !== "") out.variant = variant;
  return out;
}

/** The platform of this process (os "linux", architecture from `process.arch`). */
export function defaultPlatform(): Platform {
  const arch = process.arch;
  if (arch === "arm") {
    const v = (process.config.variables as Record<string, unknown>)["arm_version"];
    return normalizePlatform({ os: "linux", architecture: "arm", variant: v ? `v${String(v)}` : "v7" });
  }
  return normalizePlatform({ os: "linux", architecture: arch === "ia32" ? "386" : arch });
}

/** "linux/arm64/v8", "linux/amd64" */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== "").join("/");
}

/** Parses "linux/arm64", "linux/arm/v7", "amd64" (os defaults to linux). */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length === 1) return normalizePlatform({ os: "linux", architecture: parts[0]! });
  const [os, architecture, variant] = parts;
  const p: Platform = { os: os!, architecture: architecture! };
  if (variant !== undefined) p.variant = variant;
  return normalizePlatform(p);
}

/** Platforms acceptable for `wanted`, best first (arm v7 also runs v6 and v5 images, amd64 v3 runs v2/v1). */
export function compatiblePlatforms(wanted: Platform): Platform[] {
  const w = normalizePlatform(wanted);
  const out: Platform[] = [w];
  const num = Number((w.variant ?? "").replace(/^v/, ""));
  if (w.architecture === "arm" && Number.isInteger(num)) {
    for (let v = Math.min(num, 8) - 1; v >= 5; v--) out.push({ ...w, variant: `v${v}` });
  } else if (w.architecture === "amd64" && Number.isInteger(num) && num > 1) {
    for (let v = num - 1; v >= 2; v--) out.push({ ...w, variant: `v${v}` });
    out.push({ os: w.os, architecture: "amd64" });
  }
  return out;
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? "") === (b.variant ?? "");
}

/**
 * Chooses the manifest for `wanted` (default: this host) from index entries: the most preferred
 * compatible platform wins, ties go to the first entry in index order. Entries without a
 * platform (e.g. attestations "unknown/unknown") never match.
 * Throws notFound "no manifest for platform linux/amd64 in index".
 */
export function selectPlatform(
  manifests: readonly Descriptor[],
  wanted: Platform = defaultPlatform(),
): Descriptor {
  const normalized = manifests.map((d) => (d.platform ? normalizePlatform(d.platform) : undefined));
  for (const p of compatiblePlatforms(wanted)) {
    const i = normalized.findIndex((c) => c !== undefined && samePlatform(c, p));
    if (i >= 0) return manifests[i]!;
  }
  const available = normalized.filter((p) => p !== undefined).map((p) => formatPlatform(p));
  throw notFound(
    `no manifest for platform ${formatPlatform(normalizePlatform(wanted))} in index` +
      (available.length > 0 ? ` (available: ${[...new Set(available)].join(", ")})` : ""),
  );
}
