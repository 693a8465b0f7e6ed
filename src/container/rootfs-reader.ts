import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Reads a small file inside a container rootfs without following any symlink, so an image's
 * `/etc/passwd -> /host/file` can never make berthd read outside the rootfs. Missing,
 * symlinked or oversized files read as undefined.
 */
export function rootfsReader(
  rootfs: string,
  maxBytes = 1 << 20,
): (path: string) => Promise<string | undefined> {
  return async (path: string) => {
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) return undefined;
    let cur = rootfs;
    for (const part of parts) {
      cur = join(cur, part);
      try {
        const st = await lstat(cur);
        if (st.isSymbolicLink()) return undefined;
        if (part === parts[parts.length - 1]) {
          if (!st.isFile() || st.size > maxBytes) return undefined;
        } else if (!st.isDirectory()) return undefined;
      } catch {
        return undefined;
      }
    }
    return readFile(cur, "utf8");
  };
}
