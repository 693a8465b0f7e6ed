/**
 * The `info` map of a verbose status answer: one JSON document under "info", as containerd
 * writes it (crictl inspect prints it). 64-bit integers become decimal strings, bytes base64.
 */
export function verboseInfo(value: Record<string, unknown>): Record<string, string> {
  const replacer = (_k: string, v: unknown) => {
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
    return v;
  };
  try {
    return { info: JSON.stringify(value, replacer) };
  } catch (err) {
    // A hostile image config nested deeper than the stack allows must not fail the status call.
    return { info: JSON.stringify({ error: `verbose info not shown: ${(err as Error).message}` }) };
  }
}
