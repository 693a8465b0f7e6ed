import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ContainerConfig,
  LinuxContainerResources,
  MountPropagation,
  NamespaceMode,
  PodSandboxConfig,
} from "../../api/gen/runtime/v1/api.js";
import { isBerthError } from "../../common/errors.js";
import { containerCreateBody, dockerResources } from "./create-body.js";

const pod = PodSandboxConfig.fromPartial({ metadata: { name: "p", namespace: "n", uid: "u" } });
const opts = {
  sandboxId: "s".repeat(64),
  pod,
  imageId: "sha256:abc",
  labels: { a: "b" },
  cgroupParent: "/kubepods",
  seccompUseDefaultWhenEmpty: false,
  oomScoreAdjMin: 0,
};

describe("Docker create body", () => {
  it("joins the sandbox's namespaces; command and args replace entrypoint and cmd; binds keep propagation", async () => {
    const body = await containerCreateBody(
      ContainerConfig.fromPartial({
        command: ["/bin/sh"],
        args: ["-c", "true"],
        envs: [{ key: "A", value: "1=2" }],
        mounts: [
          {
            hostPath: "/h",
            containerPath: "/c",
            readonly: true,
            propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER,
          },
        ],
        linux: { securityContext: { runAsUser: { value: 1000n }, runAsGroup: { value: 3000n } } },
      }),
      opts,
    );
    const hc = body["HostConfig"] as Record<string, unknown>;
    assert.equal(hc["NetworkMode"], `container:${opts.sandboxId}`);
    assert.equal(hc["IpcMode"], `container:${opts.sandboxId}`);
    assert.equal(hc["PidMode"], "");
    assert.deepEqual(hc["Binds"], ["/h:/c:ro,rslave"]);
    assert.deepEqual(hc["SecurityOpt"], ["seccomp=unconfined"]);
    assert.deepEqual(body["Entrypoint"], ["/bin/sh"]);
    assert.deepEqual(body["Cmd"], ["-c", "true"]);
    assert.deepEqual(body["Env"], ["A=1=2"]);
    assert.equal(body["User"], "1000:3000");
  });

  it("pid POD shares the sandbox's pid namespace; NODE the host's", async () => {
    const pid = async (mode: NamespaceMode) =>
      (
        (
          await containerCreateBody(
            ContainerConfig.fromPartial({ linux: { securityContext: { namespaceOptions: { pid: mode } } } }),
            opts,
          )
        )["HostConfig"] as Record<string, unknown>
      )["PidMode"];
    assert.equal(await pid(NamespaceMode.POD), `container:${opts.sandboxId}`);
    assert.equal(await pid(NamespaceMode.NODE), "host");
  });

  it("refuses what the native backend refuses: group without user, privileged in an unprivileged pod, bad resources", async () => {
    const refused = (config: object) =>
      assert.rejects(containerCreateBody(ContainerConfig.fromPartial(config), opts), (err: unknown) =>
        isBerthError(err, "InvalidArgument"),
      );
    await refused({ linux: { securityContext: { runAsGroup: { value: 1n } } } });
    await refused({ linux: { securityContext: { privileged: true } } });
    await refused({ linux: { resources: { cpuShares: 1n } } });
    assert.deepEqual(
      dockerResources(LinuxContainerResources.fromPartial({ memoryLimitInBytes: 1n << 20n })),
      {
        Memory: 1 << 20,
        MemorySwap: 1 << 20,
      },
    );
  });
});
