import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { createLogger, redactSecrets } from "./logger.js";

function capture(): { out: Writable; text: () => string } {
  const lines: string[] = [];
  const out = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { out, text: () => lines.join("") };
}

describe("logger secrets", () => {
  it("redacts AuthConfig fields and Authorization headers, at the top level or one down", () => {
    const c = capture();
    const log = createLogger("info", c.out);
    log.info({ auth: { username: "u", password: "pw-1" }, password: "pw-2", registryToken: "rt-3" }, "a");
    log.info({ req: { identityToken: "it-4", headers: { authorization: "Basic cHctNQ==" } } }, "b");
    log.info({ request: { auth: "YWJjOnB3LTY=" } }, "c");
    const text = c.text();
    for (const secret of ["pw-1", "pw-2", "rt-3", "it-4", "cHctNQ==", "YWJjOnB3LTY="]) {
      assert.ok(!text.includes(secret), `${secret} logged:\n${text}`);
    }
    assert.match(text, /\[redacted\]/);
  });

  it("scrubs URL userinfo and Basic/Bearer credentials from messages and errors", () => {
    assert.equal(
      redactSecrets("GET https://u:pw@mirror.example/v2/ with Bearer abcdefghijkl"),
      "GET https://<credentials>@mirror.example/v2/ with Bearer [redacted]",
    );
    const c = capture();
    createLogger("info", c.out).error({ err: new Error("fetch http://u:pw-7@h/x failed") }, "x");
    assert.doesNotMatch(c.text(), /pw-7/);
  });
});
