/** The native container backend: overlay rootfs, OCI bundles, conmon + runc (src/container). */
import type {
  Container,
  ContainerConfig,
  ContainerFilter,
  ContainerStats,
  ContainerStatsFilter,
  ContainerStatus,
  LinuxContainerResources,
} from "../../api/gen/runtime/v1/api.js";
import { failedPrecondition, notFound } from "../../common/errors.js";
import type { ContainerManager, ContainerRecord } from "../../container/container-manager.js";
import type { EventBus } from "../../events/bus.js";
import type { SandboxManager } from "../../pod/sandbox-manager.js";
import type { ExecIO } from "../../streaming/remotecommand.js";
import type { ContainerBackend, EventStream, ExecSyncResult, StdioConfig, WithInfo } from "../backend.js";
import { verboseInfo } from "../verbose-info.js";
import { CONTAINER_STATES, toContainer, toContainerStatus, toEventResponse } from "./convert.js";
import { selectContainers } from "./filters.js";
import type { NativeStats } from "./stats.js";

export class NativeContainerBackend implements ContainerBackend {
  constructor(
    private readonly containers: ContainerManager,
    private readonly pods: SandboxManager,
    private readonly bus: EventBus<ContainerRecord>,
    private readonly statsOf: NativeStats,
  ) {}

  async create(podId: string, config: ContainerConfig): Promise<string> {
    return (await this.containers.create(podId, config)).id;
  }

  start(id: string): Promise<void> {
    return this.containers.start(id);
  }

  stop(id: string, timeoutSec: number): Promise<void> {
    return this.containers.stop(id, timeoutSec);
  }

  remove(id: string): Promise<void> {
    return this.containers.remove(id);
  }

  async status(id: string, verbose: boolean): Promise<WithInfo<ContainerStatus>> {
    const c = await this.containers.refresh(this.containers.store.resolve(id).id);
    if (!c) throw notFound(`container "${id}" not found`);
    return {
      status: toContainerStatus(c),
      info: verbose ? verboseInfo(await this.containers.verboseInfo(c)) : {},
    };
  }

  async list(f: ContainerFilter | undefined): Promise<Container[]> {
    // States are current without a refresh here: exits arrive through conmon's exit files.
    return selectContainers(this.containers.store.list(), f)
      .filter((c) => f?.state === undefined || CONTAINER_STATES[c.state] === f.state.state)
      .map(toContainer);
  }

  async checkpoint(id: string, location: string, timeoutSec: number): Promise<void> {
    const c = this.containers.store.resolve(id);
    await this.containers.checkpoint(c.id, location, timeoutSec, toContainerStatus(c));
  }

  updateResources(id: string, resources: LinuxContainerResources | undefined): Promise<void> {
    return this.containers.updateResources(id, resources);
  }

  reopenLog(id: string): Promise<void> {
    return this.containers.reopenLog(id);
  }

  execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecSyncResult> {
    return this.containers.execSync(id, cmd, timeoutSec);
  }

  async streamTarget(id: string): Promise<{ id: string; stdio: StdioConfig }> {
    const c = this.containers.store.resolve(id);
    if (c.state !== "CONTAINER_RUNNING") throw failedPrecondition(`container ${c.id} is not running`);
    return { id: c.id, stdio: this.containers.stdioConfig(c.id) };
  }

  exec(id: string, cmd: string[], tty: boolean, io: ExecIO): Promise<number> {
    return this.containers.exec(id, cmd, tty, io);
  }

  attach(id: string, io: ExecIO): Promise<number> {
    return this.containers.attach(id, io);
  }

  stats(id: string): Promise<ContainerStats> {
    return this.statsOf.forContainer(this.containers.store.resolve(id));
  }

  listStats(f: ContainerStatsFilter | undefined): Promise<ContainerStats[]> {
    this.statsOf.prune();
    const list = selectContainers(this.containers.store.list(), f);
    return Promise.all(list.map((c) => this.statsOf.forContainer(c)));
  }

  events(): EventStream {
    const sub = this.bus.subscribe();
    return {
      next: async () => {
        const e = await sub.next();
        return e && toEventResponse(e, this.pods.store.get(e.podId));
      },
      close: (reason) => sub.close(reason),
      get closedReason() {
        return sub.closedReason;
      },
    };
  }
}
