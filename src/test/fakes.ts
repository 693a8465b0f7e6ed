/**
 * Fakes for the managers' unit tests (no root, no runc): a host that pins nothing, a CNI that
 * hands out one address, and an OCI runtime that keeps its containers in a map.
 */
import { join } from "node:path";
import { failedPrecondition, internal, notFound, unimplemented } from "../common/errors.js";
import type { PodNamespacePaths } from "../network/namespaces.js";
import type { PodHost, PodNetwork } from "../pod/host.js";
import type { ExitStatus, OciRuntime, RuntimeDescription } from "../runtime/oci-runtime.js";
import type { OciState } from "../runtime/runc.js";

export class FakeHost implements PodHost {
  readonly calls: string[] = [];
  readonly pinned = new Set<string>();
  async createNamespaces(o: { dir: string; id: string; net: boolean; ipc: boolean; uts: boolean }) {
    this.calls.push(`create ${o.id}`);
    const paths: PodNamespacePaths = {};
    for (const kind of ["net", "ipc", "uts"] as const) {
      if (!o[kind]) continue;
      paths[kind] = join(o.dir, kind, o.id);
      this.pinned.add(paths[kind]);
    }
    return paths;
  }
  async removeNamespaces(paths: PodNamespacePaths | readonly string[]) {
    const files = Array.isArray(paths) ? paths : Object.values(paths as PodNamespacePaths);
    for (const f of files) {
      this.calls.push(`remove ${f}`);
      this.pinned.delete(f);
    }
  }
  async isPinned(path: string) {
    return this.pinned.has(path);
  }
  async mountShm(path: string) {
    this.calls.push(`shm ${path}`);
  }
  async unmount(path: string) {
    this.calls.push(`unmount ${path}`);
  }
}

export class FakeNetwork implements PodNetwork {
  failAdd = false;
  failDel = false;
  readonly added = new Set<string>();
  deletes = 0;
  async setUpPod(req: { podId: string }) {
    if (this.failAdd) throw new Error("CNI ADD failed");
    this.added.add(req.podId);
    return { ips: ["10.9.0.7"] } as Awaited<ReturnType<PodNetwork["setUpPod"]>>;
  }
  async tearDownPod(req: { podId: string }) {
    this.deletes++;
    if (this.failDel) throw new Error("CNI DEL failed");
    this.added.delete(req.podId);
  }
  async cachedAttachment() {
    return null;
  }
}

interface FakeContainer {
  status: OciState["status"];
  pid: number;
  exit?: ExitStatus;
}

export class FakeRuntime implements OciRuntime {
  readonly handler = "runc";
  readonly description: RuntimeDescription = {
    runtimeType: "fake",
    runtimeOptions: { binaryName: "fake", root: "/fake", monitor: "none" },
  };
  readonly containers = new Map<string, FakeContainer>();
  failCreate = false;
  /** The exit code a stop produces (as if the process died of SIGTERM). */
  stopExitCode = 143;
  private nextPid = 100;

  async create(spec: { id: string }) {
    if (this.failCreate) throw internal("runc create failed");
    const pid = this.nextPid++;
    this.containers.set(spec.id, { status: "created", pid });
    return { pid, conmonPid: pid + 1000 };
  }
  /** Runs as `start` returns (e.g. an exit, and the exit watch's refresh, that come first). */
  onStart: ((id: string) => Promise<void>) | undefined;
  async start(id: string) {
    const c = this.containers.get(id);
    if (!c) throw internal(`no container ${id}`);
    c.status = "running";
    await this.onStart?.(id);
  }
  async state(id: string): Promise<OciState | undefined> {
    const c = this.containers.get(id);
    return c && { status: c.status, pid: c.status === "stopped" ? 0 : c.pid };
  }
  /** The container's process ends by itself with `exitCode`. */
  exit(id: string, exitCode: number): void {
    const c = this.containers.get(id);
    if (c) Object.assign(c, { status: "stopped", exit: { exitCode, finishedAt: new Date() } });
  }
  async stop(id: string) {
    const c = this.containers.get(id);
    if (c && !c.exit) this.exit(id, this.stopExitCode);
    return c?.exit;
  }
  async kill(id: string) {
    this.exit(id, 137);
  }
  /** Ids `delete` was called with, in order. */
  readonly deleted: string[] = [];
  async delete(id: string) {
    this.deleted.push(id);
    this.containers.delete(id);
  }
  async exitStatus(id: string) {
    return this.containers.get(id)?.exit;
  }
  async monitorAlive(id: string) {
    const c = this.containers.get(id);
    return c !== undefined && c.exit === undefined;
  }
  async checkpointProblem() {
    return "the fake runtime cannot checkpoint";
  }
  async checkpoint(): Promise<void> {
    throw failedPrecondition("the fake runtime cannot checkpoint");
  }
  async initPid(id: string) {
    return this.containers.get(id)?.pid ?? 0;
  }
  async watchExits() {
    return () => {};
  }
  async update() {}
  async reopenLog() {}
  execSync(): never {
    throw unimplemented("fake runtime: no exec");
  }
  exec(): never {
    throw unimplemented("fake runtime: no exec");
  }
  attach(): never {
    throw unimplemented("fake runtime: no attach");
  }
}

/** A handler lookup holding one runtime under "runc". */
export function fakeHandlers(runtime: OciRuntime) {
  return {
    defaultHandler: "runc",
    get: (name: string) => {
      if (name !== "runc") throw notFound(`no runtime handler "${name}"`);
      return runtime;
    },
    names: () => ["runc"],
  };
}
