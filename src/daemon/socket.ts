import { lstat, unlink } from "node:fs/promises";
import { connect } from "node:net";
import { errnoCode, failedPrecondition } from "../common/errors.js";

/** True when something accepts connections on the unix socket at `path`. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Clears the way for a listening socket: a stale socket file left by a crash is removed;
 * a live one (another berthd) is an error; any other kind of file is left alone.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return;
    throw err;
  }
  if (!st.isSocket()) throw failedPrecondition(`${path} exists and is not a socket; refusing to replace it`);
  if (await socketAlive(path)) {
    throw failedPrecondition(`another process (berthd?) is already serving on ${path}`);
  }
  await unlink(path);
}
