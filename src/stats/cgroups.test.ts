import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import {
  cgroupDir,
  cgroupPathsOfPid,
  cpuUsageFromV2,
  detectCgroupVersion,
  isUnlimited,
  memoryFromV1,
  memoryFromV2,
  parseCgroupMounts,
  parseFlatKeyed,
  parseProcCgroup,
  parseSingleValue,
  readCgroupStats,
} from "./cgroups.js";

const PROC_CGROUP_V1 = `12:hugetlb:/
11:cpu,cpuacct:/kubepods/besteffort/pod123/berth-abc
10:memory:/kubepods/besteffort/pod123/berth-abc
9:pids:/kubepods/besteffort/pod123/berth-abc
8:name=systemd:/system.slice/x:y.service
0::/
`;

const PROC_CGROUP_V2 = "0::/kubepods/burstable/pod9/berth-def\n";

const MOUNTINFO = `24 29 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 /nested /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 31 0:40 / /mnt/with\\040space rw - cgroup cgroup rw,blkio
`;

// cgroup v1 memory.stat (trimmed from a real host): per-cgroup fields and hierarchical total_*.
const MEMORY_STAT_V1 = `cache 9490432
rss 6766592
pgfault 88422
pgmajfault 0
inactive_file 4096
hierarchical_memory_limit 9223372036854771712
total_cache 522117120
total_rss 303009792
total_pgfault 54900745
total_pgmajfault 4054
total_inactive_anon 296058880
total_active_anon 1605632
total_inactive_file 170700800
total_active_file 100000000
`;

const MEMORY_STAT_V2 = `anon 52428800
file 1048576
kernel 327680
shmem 0
file_mapped 0
inactive_anon 52400000
active_anon 28800
inactive_file 786432
active_file 262144
unevictable 0
slab 150000
workingset_refault_anon 0
pgscan 0
pgfault 13456
pgmajfault 7
thp_fault_alloc 0
`;

const CPU_STAT_V2 = `usage_usec 1234567
user_usec 1000000
system_usec 234567
core_sched.force_idle_usec 0
nr_periods 0
nr_throttled 0
throttled_usec 0
`;

describe("cgroup parsers", () => {
  it("parses v1 /proc/<pid>/cgroup, splitting co-mounted controllers", () => {
    const p = parseProcCgroup(PROC_CGROUP_V1);
    assert.equal(p.v1.get("cpu"), "/kubepods/besteffort/pod123/berth-abc");
    assert.equal(p.v1.get("cpuacct"), "/kubepods/besteffort/pod123/berth-abc");
    assert.equal(p.v1.get("memory"), "/kubepods/besteffort/pod123/berth-abc");
    assert.equal(p.v1.get("pids"), "/kubepods/besteffort/pod123/berth-abc");
    assert.equal(p.v1.get("name=systemd"), "/system.slice/x:y.service");
    assert.equal(p.unified, "/");
  });

  it("parses the v2 line", () => {
    const p = parseProcCgroup(PROC_CGROUP_V2);
    assert.equal(p.v1.size, 0);
    assert.equal(p.unified, "/kubepods/burstable/pod9/berth-def");
  });

  it("finds cgroup mounts in mountinfo", () => {
    const m = parseCgroupMounts(MOUNTINFO);
    assert.deepEqual(m.v1.get("cpu"), { mountpoint: "/sys/fs/cgroup/cpu,cpuacct", root: "/" });
    assert.deepEqual(m.v1.get("cpuacct"), { mountpoint: "/sys/fs/cgroup/cpu,cpuacct", root: "/" });
    assert.deepEqual(m.v1.get("memory"), { mountpoint: "/sys/fs/cgroup/memory", root: "/" });
    assert.deepEqual(m.v1.get("pids"), { mountpoint: "/sys/fs/cgroup/pids", root: "/nested" });
    assert.deepEqual(m.v1.get("name=systemd"), { mountpoint: "/sys/fs/cgroup/systemd", root: "/" });
    assert.deepEqual(m.v1.get("blkio"), { mountpoint: "/mnt/with space", root: "/" });
    assert.ok(!m.v1.has("xattr") && !m.v1.has("rw") && !m.v1.has("release_agent=/x"));
    assert.deepEqual(m.unified, { mountpoint: "/sys/fs/cgroup/unified", root: "/" });
    assert.equal(parseCgroupMounts("").unified, undefined);
  });

  it("joins a cgroup path onto a mount, stripping the mount root", () => {
    const plain = { mountpoint: "/sys/fs/cgroup/memory", root: "/" };
    assert.equal(cgroupDir(plain, "/a/b"), "/sys/fs/cgroup/memory/a/b");
    assert.equal(cgroupDir(plain, "a/b/"), "/sys/fs/cgroup/memory/a/b");
    assert.equal(cgroupDir(plain, "/"), "/sys/fs/cgroup/memory");
    const nested = { mountpoint: "/sys/fs/cgroup/pids", root: "/nested" };
    assert.equal(cgroupDir(nested, "/nested/x"), "/sys/fs/cgroup/pids/x");
    assert.equal(cgroupDir(nested, "/nested"), "/sys/fs/cgroup/pids");
    assert.equal(cgroupDir(nested, "/nestedother"), "/sys/fs/cgroup/pids/nestedother");
    assert.equal(cgroupDir(plain, "/../../etc"), "/sys/fs/cgroup/memory/etc");
  });

  it("parses flat-keyed and single-value files", () => {
    const m = parseFlatKeyed("a 1\nb  22\n\nbad\nc x\nd 1 2\n");
    assert.deepEqual(
      [...m],
      [
        ["a", 1n],
        ["b", 22n],
      ],
    );
    assert.equal(parseSingleValue("123456789012345678\n"), 123456789012345678n);
    assert.equal(parseSingleValue("max\n"), undefined);
    assert.equal(parseSingleValue(""), undefined);
    assert.equal(parseSingleValue("-1"), undefined);
  });

  it("treats huge limits and max as unlimited", () => {
    assert.ok(isUnlimited(9223372036854771712n));
    assert.ok(isUnlimited(undefined));
    assert.ok(!isUnlimited(268435456n));
  });

  it("computes v1 memory: working set = usage − total_inactive_file, total_* fields", () => {
    const m = memoryFromV1("400000000\n", MEMORY_STAT_V1, "9223372036854771712\n");
    assert.deepEqual(m, {
      usageBytes: 400000000n,
      workingSetBytes: 400000000n - 170700800n,
      rssBytes: 303009792n,
      pageFaults: 54900745n,
      majorPageFaults: 4054n,
    });
    const limited = memoryFromV1("400000000\n", MEMORY_STAT_V1, "536870912\n");
    assert.equal(limited?.limitBytes, 536870912n);
    assert.equal(limited?.availableBytes, 536870912n - (400000000n - 170700800n));
    // Inactive file larger than usage (racy reads): clamps to zero; available never negative.
    const small = memoryFromV1("1000\n", MEMORY_STAT_V1, "10\n");
    assert.equal(small?.workingSetBytes, 0n);
    assert.equal(small?.availableBytes, 10n);
    const over = memoryFromV1("200000000\n", "total_inactive_file 0\n", "100000000\n");
    assert.equal(over?.availableBytes, 0n);
    assert.equal(memoryFromV1("", MEMORY_STAT_V1), undefined);
  });

  it("computes v2 memory: working set = memory.current − inactive_file, rss = anon", () => {
    const m = memoryFromV2("60000000\n", MEMORY_STAT_V2, "max\n");
    assert.deepEqual(m, {
      usageBytes: 60000000n,
      workingSetBytes: 60000000n - 786432n,
      rssBytes: 52428800n,
      pageFaults: 13456n,
      majorPageFaults: 7n,
    });
    const limited = memoryFromV2("60000000\n", MEMORY_STAT_V2, "104857600\n");
    assert.equal(limited?.availableBytes, 104857600n - (60000000n - 786432n));
    assert.equal(memoryFromV2("60000000\n", "")?.pageFaults, 0n);
  });

  it("converts v2 cpu.stat usage_usec to ns", () => {
    assert.equal(cpuUsageFromV2(CPU_STAT_V2), 1234567000n);
    assert.equal(cpuUsageFromV2("user_usec 1\n"), undefined);
  });
});

describe("cgroup file access", () => {
  it("detects the host's cgroup version", async () => {
    const v = await detectCgroupVersion();
    assert.ok(v === 1 || v === 2);
    assert.equal(await detectCgroupVersion("/nonexistent-berth"), 1);
  });

  it("reads nothing (no throw) for cgroups that do not exist", async () => {
    const s = await readCgroupStats({
      version: 1,
      cpuacct: "/sys/fs/cgroup/cpuacct/berth-nonexistent",
      memory: "/sys/fs/cgroup/memory/berth-nonexistent",
      pids: "/sys/fs/cgroup/pids/berth-nonexistent",
    });
    assert.deepEqual(s, {});
    assert.deepEqual(await readCgroupStats({ version: 2, memory: "/nonexistent/x" }), {});
  });
});

describe("cgroupPathsOfPid", () => {
  it("resolves this process and never the host's root cgroup", async () => {
    const p = await cgroupPathsOfPid(process.pid);
    assert.ok(p !== undefined);
    const own = parseProcCgroup(await readFile("/proc/self/cgroup", "utf8"));
    if (p.version === 1) {
      for (const c of ["cpuacct", "memory", "pids"] as const) {
        const path = own.v1.get(c);
        if (path === undefined || path === "/") assert.equal(p[c], undefined, c);
        else assert.ok(p[c]?.endsWith(path), `${c}: ${p[c]}`);
      }
    }
    assert.equal(await cgroupPathsOfPid(0), undefined);
    assert.equal(await cgroupPathsOfPid(2 ** 22 + 1), undefined);
  });
});
