/**
 * What CreateContainer checks before it creates anything: bounded sizes, no NUL where a value
 * becomes a process argument or a file name, and a log path that stays inside its pod's log
 * directory (containerd and CRI-O trust the kubelet with the join; Berth does not).
 */
import { lstat } from "node:fs/promises";
import { isAbsolute, join, normalize, relative, sep } from "node:path";
import type { ContainerConfig } from "../api/gen/runtime/v1/api.js";
import { errnoCode, invalidArgument } from "../common/errors.js";
import { checkList, checkName, checkNoNul, checkStringMap, LIMITS } from "../common/limits.js";

const ENV_KEY = /^[^=\0]+$/;

export function checkArgv(what: string, argv: readonly string[]): void {
  let bytes = 0;
  for (const a of argv) bytes += Buffer.byteLength(checkNoNul(what, a)) + 1;
  if (bytes > LIMITS.argvBytes) throw invalidArgument(`${what}: ${bytes} bytes, at most ${LIMITS.argvBytes}`);
}

export function validateContainerConfig(config: ContainerConfig): void {
  const md = config.metadata;
  if (!md || md.name === "") throw invalidArgument("container metadata needs a name");
  checkName("container name", md.name);
  checkName("image", config.image?.image ?? "", LIMITS.pathBytes);
  checkArgv("command and args", [...config.command, ...config.args]);
  checkName("working_dir", config.workingDir, LIMITS.pathBytes);
  let envBytes = 0;
  for (const e of checkList("envs", config.envs, 16 * 1024)) {
    if (!ENV_KEY.test(e.key))
      throw invalidArgument(`environment variable name ${JSON.stringify(e.key)} is invalid`);
    checkNoNul(`environment variable ${e.key}`, e.value);
    envBytes += Buffer.byteLength(e.key) + Buffer.byteLength(e.value) + 2;
  }
  if (envBytes > LIMITS.envBytes)
    throw invalidArgument(`envs: ${envBytes} bytes, at most ${LIMITS.envBytes}`);
  for (const m of checkList("mounts", config.mounts)) {
    checkName("mount container_path", m.containerPath, LIMITS.pathBytes);
    checkName("mount host_path", m.hostPath, LIMITS.pathBytes);
  }
  for (const d of checkList("devices", config.devices)) {
    checkName("device container_path", d.containerPath, LIMITS.pathBytes);
    checkName("device host_path", d.hostPath, LIMITS.pathBytes);
  }
  checkStringMap("container labels", config.labels);
  checkStringMap("container annotations", config.annotations);
  checkName("log_path", config.logPath, LIMITS.pathBytes);
  const sc = config.linux?.securityContext;
  if (sc) {
    checkName("run_as_username", sc.runAsUsername);
    checkList("supplemental_groups", sc.supplementalGroups);
    checkList("masked_paths", sc.maskedPaths);
    checkList("readonly_paths", sc.readonlyPaths);
    for (const p of [...sc.maskedPaths, ...sc.readonlyPaths])
      checkName("masked/readonly path", p, LIMITS.pathBytes);
    const caps = sc.capabilities;
    if (caps) {
      checkList("add_capabilities", caps.addCapabilities, 64);
      checkList("drop_capabilities", caps.dropCapabilities, 64);
      checkList("add_ambient_capabilities", caps.addAmbientCapabilities, 64);
    }
  }
}

/**
 * The container's log file: `logPath` joined to the pod's absolute `logDir`, which it must not
 * leave (no "..", no absolute path), with no symlink on the way below the log directory and no
 * existing file there but a regular one. "" when either is empty (no CRI log).
 */
export async function confineLogPath(logDir: string, logPath: string): Promise<string> {
  if (logDir === "" || logPath === "") return "";
  if (!isAbsolute(logDir)) throw invalidArgument(`log directory ${JSON.stringify(logDir)} is not absolute`);
  if (isAbsolute(logPath)) {
    throw invalidArgument(`log_path ${JSON.stringify(logPath)} must be relative to the pod's log directory`);
  }
  const dir = normalize(logDir);
  const full = join(dir, logPath);
  const rel = relative(dir, full);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw invalidArgument(`log_path ${JSON.stringify(logPath)} leaves the pod's log directory ${logDir}`);
  }
  const parts = rel.split(sep);
  let cur = dir;
  for (const [i, part] of parts.entries()) {
    cur = join(cur, part);
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(cur);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") break; // the rest is created by berthd
      throw err;
    }
    if (st.isSymbolicLink())
      throw invalidArgument(`log_path ${JSON.stringify(logPath)}: ${cur} is a symlink`);
    const last = i === parts.length - 1;
    if (last ? !st.isFile() : !st.isDirectory()) {
      throw invalidArgument(
        `log_path ${JSON.stringify(logPath)}: ${cur} exists and is not a ${last ? "regular file" : "directory"}`,
      );
    }
  }
  return full;
}
