/** berth's image and runtime-info commands (crictl's verbs, docker-like output). */
import type { Image } from "../api/gen/runtime/v1/api.js";
import type { Command } from "./context.js";
import { str } from "./context.js";
import { CliError, UsageError } from "./errors.js";
import { humanSize, splitRepoTag, table } from "./format.js";
import { parseInfo } from "./humanize.js";
import { outputFormat, printStructured } from "./output.js";

function need(args: string[], what: string): string {
  const v = args[0];
  if (v === undefined || v === "") throw new UsageError(`missing ${what}`);
  return v;
}

const shortId = (id: string) => id.replace(/^sha256:/, "").slice(0, 13);

export const info: Command = async ({ client, flags, out }) => {
  const s = await client.status(true);
  const format = outputFormat(flags["output"] ?? "json", ["json", "yaml"]);
  printStructured(format, { status: s.status, ...parseInfo(s.info) }, out);
};

export const pull: Command = async (ctx) => {
  const image = need(ctx.args, "IMAGE");
  const auth: { username?: string; password?: string; auth?: string } = {};
  const creds = str(ctx.flags, "creds");
  if (creds !== undefined) {
    const [username, ...rest] = creds.split(":");
    auth.username = username ?? "";
    auth.password = rest.join(":");
  }
  const b64 = str(ctx.flags, "auth");
  if (b64 !== undefined) auth.auth = b64;
  const { pullWithProgress } = await import("./progress.js");
  const ref = await pullWithProgress(ctx, image, Object.keys(auth).length ? auth : undefined);
  if (!ctx.flags["quiet"]) ctx.out(`Image is up to date for ${ref}`);
};

export const images: Command = async ({ client, args, flags, out }) => {
  const { images } = await client.listImages(args[0]);
  const format = outputFormat(flags["output"], ["table", "json", "yaml", "go-template"]);
  if (printStructured(format, { images }, out)) return;
  if (flags["quiet"]) {
    if (images.length) out(images.map((i) => i.id).join("\n"));
    return;
  }
  const rows: string[][] = [];
  for (const img of images) {
    const tags = img.repoTags.length ? img.repoTags : ["<none>:<none>"];
    for (const t of tags) {
      const [repo, tag] = t === "<none>:<none>" ? ["<none>", "<none>"] : splitRepoTag(t);
      const digest = img.repoDigests.find((d) => d.startsWith(`${repo}@`))?.split("@")[1] ?? "<none>";
      const row = [repo, tag];
      if (flags["digests"]) row.push(shortId(digest));
      row.push(shortId(img.id), humanSize(Number(img.size)));
      rows.push(row);
    }
  }
  const headers = flags["digests"]
    ? ["IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"]
    : ["IMAGE", "TAG", "IMAGE ID", "SIZE"];
  out(table(headers, rows));
};

export const inspecti: Command = async ({ client, args, flags, out }) => {
  const image = need(args, "IMAGE");
  const res = await client.imageStatus(image, true);
  if (!res.image) throw new CliError(`no such image: ${image} (NotFound)`);
  const info = res.info["info"] ? JSON.parse(res.info["info"]) : {};
  printStructured(
    outputFormat(flags["output"] ?? "json", ["json", "yaml"]),
    { status: res.image satisfies Image, info },
    out,
  );
};

export const rmi: Command = async ({ client, args, out }) => {
  need(args, "IMAGE");
  for (const image of args) {
    const status = await client.imageStatus(image);
    if (!status.image) throw new CliError(`no such image: ${image} (NotFound)`);
    await client.removeImage(image);
    out(`Deleted: ${image}`);
  }
};

export const imagefsinfo: Command = async ({ client, flags, out }) => {
  printStructured(outputFormat(flags["output"] ?? "json", ["json", "yaml"]), await client.imageFsInfo(), out);
};

export const imageImport: Command = async ({ client, args, flags, out }) => {
  const file = need(args, "FILE");
  const tag = str(flags, "tag") ?? "";
  const { lstat } = await import("node:fs/promises");
  const isDir = file !== "-" && (await lstat(file)).isDirectory();
  const res = isDir
    ? await client.importStream((await import("./pack.js")).packDirectory(file), tag)
    : await client.importImage(file, tag);
  for (const img of res.images) {
    out(`Imported ${img.repoTags.join(", ") || "<none>"} (${img.id})`);
  }
};
