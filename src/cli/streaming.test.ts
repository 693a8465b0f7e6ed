import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { expandTtyFlags } from "./main.js";
import { parsePortPair } from "./streaming.js";

describe("berth CLI streaming arguments", () => {
  it("parses [LOCAL:]REMOTE ports", () => {
    assert.deepEqual(parsePortPair("8080"), { local: 8080, remote: 8080 });
    assert.deepEqual(parsePortPair("0:80"), { local: 0, remote: 80 });
    for (const bad of ["", "x", "80:", ":80", "1:0", "70000", "1:2:3", "-1"])
      assert.throws(() => parsePortPair(bad), /invalid port/, bad);
  });

  it("reads -t as --tty after exec/attach only, and splits -it", () => {
    assert.deepEqual(expandTtyFlags(["-t", "5", "exec", "-it", "c", "--", "ls", "-t"]), [
      "-t",
      "5",
      "exec",
      "-i",
      "--tty",
      "c",
      "--",
      "ls",
      "-t",
    ]);
    assert.deepEqual(expandTtyFlags(["attach", "-t", "c"]), ["attach", "--tty", "c"]);
    assert.deepEqual(expandTtyFlags(["pull", "-t", "5", "img"]), ["pull", "-t", "5", "img"]);
  });
});
