/**
 * Pulls with feedback. The CRI's PullImage is one call with no progress; on Berth the CLI
 * watches it through berth.v1 PullProgress (per-layer bytes). On a terminal: one bar a layer,
 * redrawn in place; otherwise a line when the pull starts and one when it ends; `-q` prints
 * nothing. Other runtimes (no PullProgress) get the elapsed time only. --timeout bounds the pull.
 */
import type { LayerProgress, PullProgressResponse } from "../api/gen/berth/v1/berth.js";
import type { AuthConfig } from "../api/gen/runtime/v1/api.js";
import type { CommandContext } from "./context.js";
import { humanSize } from "./format.js";

/** One line a layer: short digest, a bar, bytes so far of its size. */
export function renderLayers(layers: LayerProgress[], width = 80): string[] {
  const barW = Math.max(10, Math.min(40, width - 45));
  return layers.map((l) => {
    const size = Number(l.size);
    const got = Number(l.downloaded);
    const short = l.digest.replace(/^sha256:/, "").slice(0, 12);
    if (l.state === "waiting") return `${short}  waiting`;
    const frac = l.state === "done" ? 1 : size > 0 ? Math.min(1, got / size) : 0;
    const full = Math.round(frac * barW);
    const bar = "=".repeat(Math.max(0, full - 1)) + (full > 0 ? (frac >= 1 ? "=" : ">") : "");
    const what = l.state === "done" ? `done ${humanSize(size)}` : `${humanSize(got)}/${humanSize(size)}`;
    return `${short}  [${bar.padEnd(barW)}] ${what}`;
  });
}

export async function pullWithProgress(
  ctx: CommandContext,
  image: string,
  auth?: Partial<AuthConfig>,
): Promise<string> {
  const quiet = ctx.flags["quiet"] === true;
  const tty = process.stderr.isTTY === true && !quiet;
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  let drawn = 0;
  let last: LayerProgress[] = [];
  const draw = (status: string) => {
    if (!tty) return;
    const lines = [...renderLayers(last, process.stderr.columns || 80), status];
    process.stderr.write(`${drawn > 1 ? `\x1b[${drawn - 1}A` : ""}\r\x1b[J${lines.join("\n")}`);
    drawn = lines.length;
  };
  let timer: NodeJS.Timeout | undefined;
  let stream: { cancel(): void } | undefined;
  // Resolves when the progress stream has said its last word (done, end or an error).
  let streamOver: Promise<void> = Promise.resolve();
  if (tty) {
    draw(`Pulling ${image} ${elapsed()}`);
    timer = setInterval(() => draw(`Pulling ${image} ${elapsed()}`), 250);
    const { PullProgressRequest } = await import("../api/gen/berth/v1/berth.js");
    const s = ctx.client.berth.pullProgress(PullProgressRequest.fromPartial({ image, intervalMs: 200 }));
    streamOver = new Promise<void>((resolve) => {
      s.on("data", (m: PullProgressResponse) => {
        if (m.done) resolve();
        else last = m.layers;
      });
      s.on("end", () => resolve());
      // another runtime (UNIMPLEMENTED) or cancelled: elapsed time only
      s.on("error", () => resolve());
    });
    stream = s;
  } else if (!quiet) process.stderr.write(`Pulling ${image}\n`);
  try {
    const res = await ctx.client.pullImage(image, auth, ctx.timeoutS ? ctx.timeoutS * 1000 : undefined);
    if (tty) {
      // A fast pull can end before the first progress sample reached us: the server keeps the
      // finished pull's layers a moment, so wait (briefly) for its last word before drawing.
      await Promise.race([streamOver, new Promise((r) => setTimeout(r, 1000).unref())]);
      last = last.map((l) => ({ ...l, state: "done" }));
      draw(`Pulled ${image} in ${elapsed()}\n`);
    } else if (!quiet) process.stderr.write(`Pulled ${image} in ${elapsed()}\n`);
    return res.imageRef;
  } catch (err) {
    if (tty) draw(`Pull of ${image} failed after ${elapsed()}\n`);
    throw err;
  } finally {
    clearInterval(timer);
    stream?.cancel();
  }
}
