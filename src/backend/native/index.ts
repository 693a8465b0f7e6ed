/**
 * The native backend: Berth's own image store and snapshots, pinned pod namespaces with CNI,
 * and containers under conmon + an OCI runtime per RuntimeClass handler.
 */
import type { ContainerManager, ContainerRecord } from "../../container/container-manager.js";
import type { EventBus } from "../../events/bus.js";
import type { CniClient } from "../../network/cni.js";
import type { SandboxManager } from "../../pod/sandbox-manager.js";
import type { ContainerBackend, SandboxBackend } from "../backend.js";
import { NativeContainerBackend } from "./containers.js";
import { NativeSandboxBackend } from "./sandboxes.js";
import { NativeStats } from "./stats.js";

export function nativeRuntimeBackend(opts: {
  root: string;
  pods: SandboxManager;
  containers: ContainerManager;
  cni: CniClient;
  events: EventBus<ContainerRecord>;
}): { sandboxes: SandboxBackend; containers: ContainerBackend } {
  const stats = new NativeStats(opts.containers, opts.root);
  return {
    sandboxes: new NativeSandboxBackend(opts.pods, opts.containers, opts.cni, stats),
    containers: new NativeContainerBackend(opts.containers, opts.pods, opts.events, stats),
  };
}
