/**
 * The set-up the pod and container tests share: a berthd whose CNI config is a test-only
 * bridge (or none), whose runc state lives in the test's directory, and a busybox image.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { defaultConflist } from "../../network/default-conflist.js";
import { BerthdProcess } from "../../tools/berthd-process.js";
import { busyboxLayer } from "../../tools/busybox-image.js";
import { buildImage, ociArchive } from "../../tools/oci-builder.js";
import { type RuntimeClient, removeAllPods, runtimeClient } from "./cri.js";

export interface PodEnvOptions {
  /** The test's own temp directory. */
  dir: string;
  /** A bridge network for the pods (test-only names and subnets); none: no CNI config. */
  network?: { name: string; bridge: string; subnet: string; portmap?: boolean };
  /** More TOML for berthd. */
  toml?: string;
}

export async function startPodEnv(opts: PodEnvOptions): Promise<BerthdProcess> {
  const conf = join(opts.dir, "net.d");
  await mkdir(conf, { recursive: true });
  const net = opts.network;
  if (net) {
    await writeFile(
      join(conf, "10-test.conflist"),
      JSON.stringify(
        defaultConflist({
          name: net.name,
          bridge: net.bridge,
          subnet: net.subnet,
          dataDir: join(opts.dir, "ipam"),
          ipMasq: false,
          bandwidth: false,
          portmap: net.portmap ?? true,
        }),
      ),
    );
  }
  return BerthdProcess.start({
    toml:
      `[cni]\nconf_dirs = ["${conf}"]\n` +
      `[runtime.handlers.runc]\nruntime_path = "/usr/sbin/runc"\nruntime_root = "${opts.dir}/runc"\n` +
      (opts.toml ?? ""),
  });
}

/** Imports the host-busybox image under `name`. */
export async function importBusybox(berthd: BerthdProcess, dir: string, name: string): Promise<void> {
  const archive = join(dir, `${name.replace(/[^a-z0-9]+/g, "_")}.tar`);
  await writeFile(archive, await ociArchive([{ image: buildImage([await busyboxLayer()]), name }]));
  await berthd.client.importImage(archive);
}

/** GET `url`, resolving the whole body (the timeout keeps a dead pod from hanging a test). */
export function httpGet(url: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

export interface PodSuite {
  dir: string;
  berthd: BerthdProcess;
  rt: RuntimeClient;
}

/** A pod suite's before(): a temp dir, berthd on a test-only bridge, the busybox image. */
export async function startPodSuite(
  prefix: string,
  network: NonNullable<PodEnvOptions["network"]>,
  image: string,
  /** More TOML for berthd, given the suite's directory. */
  toml?: (dir: string) => string,
): Promise<PodSuite> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const berthd = await startPodEnv({ dir, network, ...(toml && { toml: toml(dir) }) });
  const rt = runtimeClient(berthd.socket);
  await importBusybox(berthd, dir, image);
  return { dir, berthd, rt };
}

/** A pod suite's after(): every pod removed through the runtime, then what a failure left. */
export async function stopPodSuite(s: Partial<PodSuite>, bridge: string): Promise<void> {
  if (s.rt) await removeAllPods(s.rt);
  s.rt?.client.close();
  await s.berthd?.stop();
  await promisify(execFile)("ip", ["link", "del", bridge]).catch(() => {});
  if (s.dir) await rm(s.dir, { recursive: true, force: true });
}
