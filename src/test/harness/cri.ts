/**
 * A promise-returning RuntimeService client for integration tests: every method is called by
 * name with a plain object, turned into the request message with the generated `fromPartial`
 * (so unset fields are proto defaults, never undefined). Plus small helpers the container
 * tests share: ExecSync with text output, waiting for a container to exit, CRI log parsing.
 */
import { CriClient } from "../../api/client.js";
import { ContainerState } from "../../api/gen/runtime/v1/api.js";

/** What a failed call rejects with (a grpc-js ServiceError). */
export interface GrpcError extends Error {
  code: number;
  details: string;
}

export type RuntimeClient = ReturnType<typeof runtimeClient>;

export function runtimeClient(socket: string, deadlineMs = 120_000) {
  const client = new CriClient(socket, { timeoutMs: deadlineMs });
  const call = <T>(name: string, req: object = {}): Promise<T> => client.runtimeCall<T>(name, req);
  return { client, call };
}

/** Stops and removes every pod through the runtime, ignoring failures (for after() hooks). */
export async function removeAllPods(rt: RuntimeClient): Promise<void> {
  try {
    const { items } = await rt.call<{ items: Array<{ id: string }> }>("listPodSandbox", {});
    for (const p of items) {
      await rt.call("stopPodSandbox", { podSandboxId: p.id }).catch(() => {});
      await rt.call("removePodSandbox", { podSandboxId: p.id }).catch(() => {});
    }
  } catch {}
}

export interface ContainerStatusView {
  id: string;
  state: number;
  createdAt: bigint;
  startedAt: bigint;
  finishedAt: bigint;
  exitCode: number;
  reason: string;
  message: string;
  logPath: string;
}

export async function containerStatus(rt: RuntimeClient, containerId: string): Promise<ContainerStatusView> {
  const r = await rt.call<{ status: ContainerStatusView }>("containerStatus", { containerId });
  return r.status;
}

/** Polls ContainerStatus until the container is EXITED; throws after `timeoutMs`. */
export async function waitExited(
  rt: RuntimeClient,
  containerId: string,
  timeoutMs = 30_000,
): Promise<ContainerStatusView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await containerStatus(rt, containerId);
    if (s.state === ContainerState.CONTAINER_EXITED) return s;
    if (Date.now() > deadline) throw new Error(`container ${containerId} did not exit in ${timeoutMs} ms`);
    await sleep(100);
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export async function execSync(
  rt: RuntimeClient,
  containerId: string,
  cmd: string[],
  timeout = 20,
): Promise<ExecResult> {
  const r = await rt.call<{ stdout: Uint8Array; stderr: Uint8Array; exitCode: number }>("execSync", {
    containerId,
    cmd,
    timeout,
  });
  return {
    stdout: Buffer.from(r.stdout).toString(),
    stderr: Buffer.from(r.stderr).toString(),
    exitCode: r.exitCode,
  };
}

export interface CriLogLine {
  time: string;
  stream: string;
  tag: string;
  content: string;
}

const LOG_LINE = /^(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$/s;

/** Parses a CRI (k8s-file) log; a line that does not match the format throws. */
export function parseCriLogLines(text: string): CriLogLine[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const m = LOG_LINE.exec(l);
      if (!m) throw new Error(`not a CRI log line: ${JSON.stringify(l.slice(0, 200))}`);
      return { time: m[1]!, stream: m[2]!, tag: m[3]!, content: m[4]! };
    });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Splits a CRI (k8s-file) log into stdout and stderr, joining partial (`P`) lines. */
export function parseCriLog(log: Buffer | string): { stdout: Buffer; stderr: Buffer } {
  const out: string[] = [];
  const err: string[] = [];
  for (const l of parseCriLogLines(typeof log === "string" ? log : log.toString("utf8"))) {
    (l.stream === "stdout" ? out : err).push(l.tag === "P" ? l.content : `${l.content}\n`);
  }
  return { stdout: Buffer.from(out.join("")), stderr: Buffer.from(err.join("")) };
}
