import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isBerthError } from "../common/errors.js";
import { DEFAULT_PATH_ENV } from "./defaults.js";
import { mergeEnv, parseGroup, parsePasswd, resolveArgs, resolveUser, resolveWorkingDir } from "./process.js";

const isInvalid = (err: unknown) => isBerthError(err, "InvalidArgument");

describe("resolveArgs (Kubernetes command rules)", () => {
  const image = { Entrypoint: ["/ep"], Cmd: ["cmd1", "cmd2"] };
  const cases: Array<[string, string[], string[], typeof image | object | undefined, string[] | "error"]> = [
    ["neither: Entrypoint + Cmd", [], [], image, ["/ep", "cmd1", "cmd2"]],
    ["command overrides Entrypoint and drops Cmd", ["/bin/x"], [], image, ["/bin/x"]],
    ["command + args", ["/bin/x"], ["-a"], image, ["/bin/x", "-a"]],
    ["args alone override Cmd", [], ["a1"], image, ["/ep", "a1"]],
    ["args alone without Entrypoint", [], ["/bin/a"], { Cmd: ["c"] }, ["/bin/a"]],
    ["Cmd only", [], [], { Cmd: ["/bin/sh"] }, ["/bin/sh"]],
    ["nothing at all", [], [], {}, "error"],
    ["no image config", [], [], undefined, "error"],
  ];
  for (const [name, command, args, img, want] of cases) {
    it(name, () => {
      if (want === "error") {
        assert.throws(
          () => resolveArgs(command, args, img),
          (e) => isInvalid(e) && /no command specified/.test(String(e)),
        );
      } else {
        assert.deepEqual(resolveArgs(command, args, img), want);
      }
    });
  }
});

describe("mergeEnv", () => {
  const cases: Array<[string, string[] | undefined, Array<[string, string]>, string[]]> = [
    ["default PATH only", undefined, [], [DEFAULT_PATH_ENV]],
    ["image PATH replaces the default in place", ["PATH=/x", "A=1"], [], ["PATH=/x", "A=1"]],
    [
      "CRI overrides by name",
      ["A=1", "B=2"],
      [
        ["A", "9"],
        ["C", "3"],
      ],
      [DEFAULT_PATH_ENV, "A=9", "B=2", "C=3"],
    ],
    ["values with =", ["A=x=y"], [["B", "p=q"]], [DEFAULT_PATH_ENV, "A=x=y", "B=p=q"]],
    ["empty CRI value kept", ["A=1"], [["A", ""]], [DEFAULT_PATH_ENV, "A="]],
  ];
  for (const [name, image, cri, want] of cases) {
    it(name, () => {
      assert.deepEqual(
        mergeEnv(
          image,
          cri.map(([key, value]) => ({ key, value })),
        ),
        want,
      );
    });
  }
});

describe("resolveWorkingDir", () => {
  it("CRI > image > /", () => {
    assert.equal(resolveWorkingDir("/cri", { WorkingDir: "/img" }), "/cri");
    assert.equal(resolveWorkingDir("", { WorkingDir: "/img" }), "/img");
    assert.equal(resolveWorkingDir("", {}), "/");
    assert.throws(() => resolveWorkingDir("rel", undefined), isInvalid);
  });
});

const PASSWD = `root:x:0:0:root:/root:/bin/sh
# comment
daemon:x:1:1::/:/usr/sbin/nologin
app:x:1000:1001:App:/home/app:/bin/sh
broken:x:notanumber:1::/:
nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin
`;
const GROUP = `root:x:0:
daemon:x:1:
wheel:x:10:root,app
appgrp:x:1001:
extra:x:2000:app
docker:x:999:daemon , app
nogroup:x:65534:
`;
const reader = (files: Record<string, string>) => async (p: string) => files[p];
const rootfs = reader({ "/etc/passwd": PASSWD, "/etc/group": GROUP });
const i64 = (n: number) => ({ value: BigInt(n) });

describe("passwd / group parsing", () => {
  it("skips comments and malformed lines", () => {
    assert.deepEqual(
      parsePasswd(PASSWD).map((p) => p.name),
      ["root", "daemon", "app", "nobody"],
    );
    assert.deepEqual(parseGroup(GROUP).find((g) => g.name === "docker")?.members, ["daemon", "app"]);
  });
});

describe("resolveUser", () => {
  type Case = [
    string,
    Parameters<typeof resolveUser>[0],
    { uid: number; gid: number; additionalGids: number[] } | "error",
  ];
  const cases: Case[] = [
    ["nothing → root with its groups", {}, { uid: 0, gid: 0, additionalGids: [10] }],
    [
      "run_as_user known",
      { runAsUser: i64(1000) },
      { uid: 1000, gid: 1001, additionalGids: [10, 2000, 999] },
    ],
    ["run_as_user unknown → gid 0", { runAsUser: i64(4242) }, { uid: 4242, gid: 0, additionalGids: [] }],
    [
      "run_as_user + run_as_group",
      { runAsUser: i64(1000), runAsGroup: i64(5) },
      { uid: 1000, gid: 5, additionalGids: [10, 2000, 999] },
    ],
    [
      "run_as_user beats image User",
      { runAsUser: i64(1), imageUser: "app" },
      { uid: 1, gid: 1, additionalGids: [999] },
    ],
    ["run_as_username", { runAsUsername: "app" }, { uid: 1000, gid: 1001, additionalGids: [10, 2000, 999] }],
    ["run_as_username unknown", { runAsUsername: "ghost" }, "error"],
    ["image name", { imageUser: "daemon" }, { uid: 1, gid: 1, additionalGids: [999] }],
    ["image uid", { imageUser: "65534" }, { uid: 65534, gid: 65534, additionalGids: [] }],
    ["image uid unknown", { imageUser: "777" }, { uid: 777, gid: 0, additionalGids: [] }],
    ["image uid:gid", { imageUser: "777:888" }, { uid: 777, gid: 888, additionalGids: [] }],
    ["image name:group", { imageUser: "app:extra" }, { uid: 1000, gid: 2000, additionalGids: [10, 999] }],
    ["image uid:group name", { imageUser: "0:wheel" }, { uid: 0, gid: 10, additionalGids: [] }],
    ["image name:unknown group", { imageUser: "app:ghosts" }, "error"],
    ["image unknown name", { imageUser: "ghost" }, "error"],
    ["image ':5'", { imageUser: ":5" }, "error"],
    [
      "supplemental groups appended, deduped",
      { runAsUser: i64(1000), supplementalGroups: [3000n, 10n, 1001n] },
      { uid: 1000, gid: 1001, additionalGids: [10, 2000, 999, 3000] },
    ],
    ["run_as_group without user", { runAsGroup: i64(5) }, "error"],
    ["negative uid", { runAsUser: i64(-1) }, "error"],
  ];
  for (const [name, input, want] of cases) {
    it(name, async () => {
      if (want === "error") {
        await assert.rejects(resolveUser(input, rootfs), isInvalid);
      } else {
        const got = await resolveUser(input, rootfs);
        assert.deepEqual({ uid: got.uid, gid: got.gid, additionalGids: got.additionalGids }, want);
      }
    });
  }

  it("works without /etc/passwd for numeric users and fails for names", async () => {
    const empty = reader({});
    assert.deepEqual(await resolveUser({ imageUser: "12:34" }, empty), {
      uid: 12,
      gid: 34,
      additionalGids: [],
    });
    assert.deepEqual(await resolveUser({}, empty), { uid: 0, gid: 0, additionalGids: [] });
    await assert.rejects(resolveUser({ imageUser: "root" }, empty), isInvalid);
  });
});
