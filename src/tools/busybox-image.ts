/**
 * A small image built from the host's busybox binary (Debian's busybox-static, or the dynamic
 * busybox with its libraries): /bin/busybox, a symlink per applet, /etc/passwd, /etc/group, /tmp.
 */
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import {
  type BuiltImage,
  type BuiltLayer,
  buildImage,
  buildLayer,
  type Compression,
  type Entry,
} from "./oci-builder.js";

export const STATIC_BUSYBOX = "/bin/busybox";

export async function busyboxEntries(binary = STATIC_BUSYBOX): Promise<Entry[]> {
  const content = await readFile(binary);
  const applets = execFileSync(binary, ["--list"], { encoding: "utf8" })
    .split("\n")
    .filter((a) => /^[\w.[-]+$/.test(a) && a !== "busybox");
  return [
    { name: "bin/", type: "directory" },
    { name: "bin/busybox", content, mode: 0o755 },
    ...applets.map((a): Entry => ({ name: `bin/${a}`, type: "symlink", linkname: "busybox" })),
    { name: "etc/", type: "directory" },
    {
      name: "etc/passwd",
      content: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    },
    { name: "etc/group", content: "root:x:0:\nnobody:x:65534:\n" },
    { name: "root/", type: "directory", mode: 0o700 },
    { name: "tmp/", type: "directory", mode: 0o1777 },
  ];
}

export async function busyboxLayer(compression: Compression = "gzip"): Promise<BuiltLayer> {
  return buildLayer(await busyboxEntries(), compression);
}

/** The demo image of the README's first command: busybox httpd serving a greeting. */
export async function demoImage(): Promise<BuiltImage> {
  const site = await buildLayer([
    { name: "www/", type: "directory" },
    { name: "www/index.html", content: "Hello from a pod run by Berth.\n" },
  ]);
  return buildImage([await busyboxLayer(), site], {
    config: {
      Cmd: ["/bin/httpd", "-f", "-v", "-p", "8080", "-h", "/www"],
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      WorkingDir: "/",
      ExposedPorts: { "8080/tcp": {} },
      Labels: { "org.opencontainers.image.title": "berth-demo" },
    },
  });
}
