/**
 * A sandbox runtime (runtime_type "sandbox": gVisor's runsc) behind the same interface as runc.
 * runsc groups a pod's containers into one sandbox by the CRI annotations: the pod's root
 * container (container-type "sandbox", started at RunPodSandbox, pod-init.ts) starts it, and
 * each app container (container-type "container", sandbox-id = the pod id) joins it. conmon still
 * owns each container's stdio, log and attach socket; the exit comes from `runsc wait` through
 * the wrapper conmon runs (sandbox-shim.ts), released by `start`. What runsc cannot do is an
 * error naming the handler.
 */
import { constants } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, internal, unimplemented } from "../common/errors.js";
import { run } from "../common/process.js";
import { readPidFile } from "./conmon.js";
import { ConmonOciRuntime, type RuntimeDescription } from "./oci-runtime.js";
import { type RuntimeBinary, runtimeError } from "./runc.js";
import type { OciProcess, RuncExecOptions } from "./runc-exec.js";
import {
  installShim,
  SANDBOX_PID_FILE,
  SHIM_RUNTIME_FLAG,
  START_FIFO,
  START_LOG,
  START_STATUS,
} from "./sandbox-shim.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SandboxOciRuntime extends ConmonOciRuntime {
  readonly sandboxed = true;
  private shim: Promise<string> | undefined;

  /** gVisor keeps its own checkpoint format (runsc checkpoint), not CRIU's: not offered. */
  override checkpointProblem(): Promise<string | undefined> {
    return Promise.resolve(
      `runtime handler "${this.handler}" runs containers in a gVisor sandbox: CheckpointContainer and restore need a runc-like (CRIU) handler`,
    );
  }

  override get description(): RuntimeDescription {
    return { ...super.description, runtimeType: "sandbox" };
  }

  protected override async monitorRuntime(): Promise<RuntimeBinary> {
    this.shim ??= installShim(this.o.stateDir);
    const { path, root, args } = this.runc.binary;
    return { path: await this.shim, root, args: [`${SHIM_RUNTIME_FLAG}${path}`, ...(args ?? [])] };
  }

  /**
   * The waiter under conmon runs `runsc start`: runsc hands its own stdio to an app container,
   * and only the waiter holds the container's pipes. Resolves once it recorded the status.
   */
  override async start(id: string): Promise<void> {
    const dir = this.containerDir(id);
    await this.release(id, "start");
    const deadline = Date.now() + 60_000;
    for (;;) {
      const text = await readFile(join(dir, START_STATUS), "utf8").catch(() => undefined);
      if (text !== undefined) {
        if (text.trim() === "0") return;
        const log = await readFile(join(dir, START_LOG), "utf8").catch(() => "");
        throw runtimeError("start", id, log || `runsc start exited with ${text.trim()}`);
      }
      if (Date.now() > deadline || !(await this.monitorAlive(id))) {
        throw internal(`runtime handler "${this.handler}": container ${id} did not report its start`);
      }
      await sleep(10);
    }
  }

  /**
   * Tells the container's waiter to go on: "start" (wait for the exit) or anything else (exit).
   * It blocks opening the FIFO, so a non-blocking open finds it; ENXIO means it is not there yet.
   */
  private async release(id: string, word: string): Promise<void> {
    const fifo = join(this.containerDir(id), START_FIFO);
    for (let i = 0; ; i++) {
      try {
        const fh = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        try {
          await fh.write(`${word}\n`);
        } finally {
          await fh.close();
        }
        return;
      } catch (err) {
        if (errnoCode(err) !== "ENXIO" || i >= 100) {
          throw internal(`runtime handler "${this.handler}": cannot release the exit waiter of ${id}`, err);
        }
        await sleep(20);
      }
    }
  }

  /** The sandbox's pid (every container of a pod runs in it), as runsc reported it at create. */
  override async initPid(id: string): Promise<number> {
    return (await readPidFile(join(this.containerDir(id), SANDBOX_PID_FILE))) ?? 0;
  }

  override async delete(id: string): Promise<void> {
    // A container never started still has its waiter on the FIFO: end it, so conmon exits now.
    await this.killWaiter(id);
    try {
      await super.delete(id);
    } catch (err) {
      // runsc cannot reach a sandbox that died (killed, OOM) to destroy the container in it, but
      // it forgets the container all the same: then the rest of the clean-up goes on.
      if ((await this.runc.state(id).catch(() => "unknown")) !== undefined) throw err;
      await super.delete(id);
    }
  }

  private async killWaiter(id: string): Promise<void> {
    const pid = await readPidFile(join(this.containerDir(id), "pidfile"));
    if (pid === undefined) return;
    const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
    if (comm.trim() !== "sandbox-shim") return; // gone (or the pid was reused)
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }

  /** An exec'd process runs in the sandbox: a client that goes away has it killed there. */
  protected override execTarget(id: string, processSpec: OciProcess): Omit<RuncExecOptions, "tty"> {
    return {
      ...super.execTarget(id, processSpec),
      killInSandbox: async (pid) => {
        const { path } = this.runc.binary;
        await (this.o.runner ?? run)(
          path,
          [...this.runc.globalArgs(), "kill", "--pid", String(pid), id, "KILL"],
          {
            timeoutMs: 10_000,
          },
        );
      },
    };
  }

  override async update(_id: string, _resources: object): Promise<void> {
    throw unimplemented(
      `runtime handler "${this.handler}" (a sandbox runtime, gVisor) cannot change a running container's resources`,
    );
  }
}
