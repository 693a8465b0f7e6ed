/** The registry test harness itself: start, answer /v2/, stop cleans up (process, port, temp dir). */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, test } from "node:test";
import { request } from "undici";
import { type RegistryHandle, startRegistry } from "../tools/registry-server.js";

const skip = process.env["BERTH_UNIT_ONLY"] ? "BERTH_UNIT_ONLY is set" : false;
const started: RegistryHandle[] = [];
after(async () => {
  await Promise.all(started.map((r) => r.stop()));
});

async function status(url: string): Promise<{ status: number; auth?: string } | undefined> {
  try {
    const res = await request(url, { reset: true });
    await res.body.dump();
    const auth = res.headers["www-authenticate"];
    return { status: res.statusCode, ...(typeof auth === "string" ? { auth } : {}) };
  } catch {
    return undefined;
  }
}

test("plain registry starts and stops cleanly", { skip }, async () => {
  const reg = await startRegistry();
  started.push(reg);
  assert.equal(reg.url, `http://${reg.host}`);
  assert.equal((await status(`${reg.url}/v2/`))?.status, 200);
  assert.ok(existsSync(`${reg.dir}/config.yml`));
  await reg.stop();
  await reg.stop(); // idempotent
  assert.equal(existsSync(reg.dir), false);
  assert.equal(await status(`${reg.url}/v2/`), undefined, "nothing listens any more");
});

test("token-auth registry challenges with the harness token server", { skip }, async () => {
  const reg = await startRegistry({ tokenAuth: true });
  started.push(reg);
  const res = await status(`${reg.url}/v2/`);
  assert.equal(res?.status, 401);
  assert.match(res?.auth ?? "", new RegExp(`^Bearer realm="${reg.tokenServer!.url}"`));
  assert.deepEqual(reg.auth, { username: "berth", password: "secret" });
  await reg.stop();
  assert.equal(existsSync(reg.dir), false);
});
