/**
 * Path patterns as input_file's FilePaths write them: `*`, `?` and `[…]` within a name, and
 * `**` for any number of directories (at most `maxDepth` levels). Only regular files match.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

const hasMagic = (s: string) => /[*?[]/.test(s);

export function nameRegex(pattern: string): RegExp {
  let src = "^";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "*") src += "[^/]*";
    else if (ch === "?") src += "[^/]";
    else if (ch === "[") {
      const close = pattern.indexOf("]", i + 1);
      if (close < 0) src += "\\[";
      else {
        src += `[${pattern
          .slice(i + 1, close)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\")}]`;
        i = close;
      }
    } else src += ch.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`${src}$`);
}

/**
 * Absolute paths of the regular files matching `pattern` (an absolute path pattern), looked
 * up under `root` (a literal directory prefixed to the paths found; "" for `/`).
 */
export async function expandGlob(pattern: string, maxDepth = 0, root = ""): Promise<string[]> {
  const parts = pattern.split("/").filter((p) => p !== "");
  const out: string[] = [];
  const walk = async (dir: string, i: number, depthLeft: number): Promise<void> => {
    if (i === parts.length) {
      const st = await stat(dir).catch(() => undefined);
      if (st?.isFile()) out.push(dir);
      return;
    }
    const part = parts[i]!;
    if (part === "**") {
      await walk(dir, i + 1, depthLeft);
      if (depthLeft <= 0) return;
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(join(dir, e.name), i, depthLeft - 1);
      }
      return;
    }
    if (!hasMagic(part)) {
      await walk(join(dir, part), i + 1, depthLeft);
      return;
    }
    const re = nameRegex(part);
    for (const e of await readdir(dir).catch(() => [] as string[])) {
      if (re.test(e)) await walk(join(dir, e), i + 1, depthLeft);
    }
  };
  await walk(root || "/", 0, maxDepth);
  return out.sort();
}
