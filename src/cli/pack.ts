import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pack } from "tar-stream";

/** Streams a directory (an OCI image layout) as a tar archive, regular files and dirs only. */
export function packDirectory(dir: string): Readable {
  const p = pack();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await stat(join(dir, path));
      if (st.isDirectory()) {
        p.entry({ name: `${path}/`, type: "directory", mode: 0o755 });
        await walk(path);
      } else if (st.isFile()) {
        const entry = p.entry({ name: path, size: st.size, mode: 0o644 });
        await pipeline(createReadStream(join(dir, path)), entry);
      }
    }
  };
  walk("").then(
    () => p.finalize(),
    (err: unknown) => p.destroy(err as Error),
  );
  return p as unknown as Readable;
}
