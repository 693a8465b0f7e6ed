/** The berth CLI commands: a CRI client with crictl's verbs and docker-like output. */
import { lstat } from "node:fs/promises";
import type { CriClient } from "../api/client.js";
import type { Image } from "../api/gen/runtime/v1/api.js";
import { humanSize, splitRepoTag, table, toJson } from "./format.js";
import { packDirectory } from "./pack.js";

export interface CommandContext {
  client: CriClient;
  args: string[];
  flags: Record<string, string | boolean | undefined>;
  out: (s: string) => void;
}

export type Command = (ctx: CommandContext) => Promise<void>;

function need(args: string[], what: string): string {
  const v = args[0];
  if (v === undefined || v === "") throw new UsageError(`missing ${what}`);
  return v;
}

export class UsageError extends Error {}

const shortId = (id: string) => id.replace(/^sha256:/, "").slice(0, 13);

export const commands: Record<string, { summary: string; usage: string; run: Command }> = {
  version: {
    summary: "Show the runtime's name and versions",
    usage: "version",
    run: async ({ client, out }) => {
      const v = await client.version();
      out(
        [
          `Version:  ${v.version}`,
          `RuntimeName:  ${v.runtimeName}`,
          `RuntimeVersion:  ${v.runtimeVersion}`,
          `RuntimeApiVersion:  ${v.runtimeApiVersion}`,
        ].join("\n"),
      );
    },
  },
  info: {
    summary: "Show the runtime's status and configuration",
    usage: "info",
    run: async ({ client, out }) => {
      const s = await client.status(true);
      const info: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.info)) {
        try {
          info[k] = JSON.parse(v);
        } catch {
          info[k] = v;
        }
      }
      out(toJson({ status: s.status, ...info }));
    },
  },
  pull: {
    summary: "Pull an image from a registry",
    usage: "pull [--creds USER:PASSWORD] [--auth BASE64] IMAGE",
    run: async ({ client, args, flags, out }) => {
      const image = need(args, "IMAGE");
      const auth: { username?: string; password?: string; auth?: string } = {};
      if (typeof flags["creds"] === "string") {
        const [username, ...rest] = flags["creds"].split(":");
        auth.username = username ?? "";
        auth.password = rest.join(":");
      }
      if (typeof flags["auth"] === "string") auth.auth = flags["auth"];
      const res = await client.pullImage(image, Object.keys(auth).length ? auth : undefined);
      out(`Image is up to date for ${res.imageRef}`);
    },
  },
  images: {
    summary: "List images",
    usage: "images [-q] [--digests] [-o json|table] [FILTER]",
    run: async ({ client, args, flags, out }) => {
      const { images } = await client.listImages(args[0]);
      if (flags["o"] === "json" || flags["output"] === "json") {
        out(toJson({ images }));
        return;
      }
      if (flags["q"]) {
        out(images.map((i) => i.id).join("\n"));
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
    },
  },
  inspecti: {
    summary: "Show an image's status (JSON)",
    usage: "inspecti IMAGE",
    run: async ({ client, args, out }) => {
      const image = need(args, "IMAGE");
      const res = await client.imageStatus(image, true);
      if (!res.image) throw new Error(`no such image "${image}" present`);
      const info = res.info["info"] ? JSON.parse(res.info["info"]) : {};
      out(toJson({ status: res.image satisfies Image, info }));
    },
  },
  rmi: {
    summary: "Remove one or more images",
    usage: "rmi IMAGE [IMAGE...]",
    run: async ({ client, args, out }) => {
      need(args, "IMAGE");
      for (const image of args) {
        const status = await client.imageStatus(image);
        if (!status.image) throw new Error(`no such image ${image}`);
        await client.removeImage(image);
        out(`Deleted: ${image}`);
      }
    },
  },
  imagefsinfo: {
    summary: "Show the image filesystem's usage",
    usage: "imagefsinfo",
    run: async ({ client, out }) => {
      out(toJson(await client.imageFsInfo()));
    },
  },
  "image import": {
    summary: "Load an OCI layout (dir or tar) or docker save tarball; '-' reads stdin",
    usage: "image import [--tag NAME] FILE|DIR|-",
    run: async ({ client, args, flags, out }) => {
      const file = need(args, "FILE");
      const tag = typeof flags["tag"] === "string" ? flags["tag"] : "";
      const isDir = file !== "-" && (await lstat(file)).isDirectory();
      const res = isDir
        ? await client.importStream(packDirectory(file), tag)
        : await client.importImage(file, tag);
      for (const img of res.images) {
        out(`Imported ${img.repoTags.join(", ") || "<none>"} (${img.id})`);
      }
    },
  },
};
