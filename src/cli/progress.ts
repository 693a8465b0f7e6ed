/**
 * Pulls with feedback: on a terminal a status line with the elapsed time (the CRI's PullImage is
 * one call, so there are no byte counts), otherwise one line when it starts and one when it
 * ends; `-q` prints nothing. The global --timeout bounds the pull.
 */
import type { AuthConfig } from "../api/gen/runtime/v1/api.js";
import type { CommandContext } from "./context.js";

export async function pullWithProgress(
  ctx: CommandContext,
  image: string,
  auth?: Partial<AuthConfig>,
): Promise<string> {
  const quiet = ctx.flags["quiet"] === true;
  const tty = process.stderr.isTTY === true && !quiet;
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  let timer: NodeJS.Timeout | undefined;
  if (tty) {
    const frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏";
    let i = 0;
    const draw = () =>
      process.stderr.write(`\r\x1b[2K${frames[i++ % frames.length]} Pulling ${image} ${elapsed()}`);
    draw();
    timer = setInterval(draw, 100);
  } else if (!quiet) process.stderr.write(`Pulling ${image}\n`);
  try {
    const res = await ctx.client.pullImage(image, auth, ctx.timeoutS ? ctx.timeoutS * 1000 : undefined);
    if (tty) process.stderr.write(`\r\x1b[2K✓ Pulled ${image} in ${elapsed()}\n`);
    else if (!quiet) process.stderr.write(`Pulled ${image} in ${elapsed()}\n`);
    return res.imageRef;
  } catch (err) {
    if (tty) process.stderr.write("\r\x1b[2K");
    throw err;
  } finally {
    clearInterval(timer);
  }
}
