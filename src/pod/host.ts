/**
 * What a pod needs of the host, behind one interface: pinned namespaces and the /dev/shm tmpfs
 * (mounts; root), and the pod network (CNI). The real one is `nodeHost`; the sandbox manager's
 * unit tests use fakes.
 */
import { errnoCode } from "../common/errors.js";
import { MNT_DETACH, native } from "../common/native.js";
import type { CniClient } from "../network/cni.js";
import {
  type CreatePodNamespacesOptions,
  createPodNamespaces,
  isNsfs,
  type PodNamespacePaths,
  removePodNamespaces,
} from "../network/namespaces.js";

export interface PodHost {
  createNamespaces(opts: CreatePodNamespacesOptions): Promise<PodNamespacePaths>;
  /** Unmounts and removes namespace pins; idempotent. */
  removeNamespaces(paths: PodNamespacePaths | readonly string[]): Promise<void>;
  /** Whether a pin still holds a namespace (false after a reboot). */
  isPinned(path: string): Promise<boolean>;
  mountShm(path: string, sizeBytes: number): Promise<void>;
  /** Detaches a mount; a path that is not mounted (or gone) is fine. */
  unmount(path: string): Promise<void>;
}

/** The pod network: what the sandbox manager uses of the CNI client. */
export type PodNetwork = Pick<CniClient, "setUpPod" | "tearDownPod" | "cachedAttachment">;

export const nodeHost: PodHost = {
  createNamespaces: createPodNamespaces,
  removeNamespaces: removePodNamespaces,
  isPinned: isNsfs,
  mountShm: (path, size) =>
    native().mount("shm", path, "tmpfs", 0x2 | 0x4 | 0x8 /* nosuid nodev noexec */, `mode=1777,size=${size}`),
  async unmount(path) {
    try {
      await native().umount2(path, MNT_DETACH);
    } catch (err) {
      if (errnoCode(err) !== "EINVAL" && errnoCode(err) !== "ENOENT") throw err;
    }
  },
};
