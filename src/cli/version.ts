/** `berth version`: CRI Version through the small http2 client (no grpc-js to load). */
import type { Command } from "./context.js";
import { decodeStrings, unaryCall } from "./grpc-lite.js";

export const version: Command = async ({ endpoint, timeoutS, out }) => {
  // VersionRequest { version (1): "v1" }
  const body = Buffer.from([0x0a, 0x02, 0x76, 0x31]);
  const reply = await unaryCall(
    endpoint,
    "/runtime.v1.RuntimeService/Version",
    body,
    (timeoutS ?? 10) * 1000,
  );
  const f = decodeStrings(reply);
  out(
    [
      `Version:  ${f.get(1) ?? ""}`,
      `RuntimeName:  ${f.get(2) ?? ""}`,
      `RuntimeVersion:  ${f.get(3) ?? ""}`,
      `RuntimeApiVersion:  ${f.get(4) ?? ""}`,
    ].join("\n"),
  );
};
