import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { type ServerErrorResponse, status } from "@grpc/grpc-js";
import { BerthError, type ErrorCode, unavailable } from "../common/errors.js";
import { createLogger } from "../common/logger.js";
import { abortCalls, toGrpcError, unary } from "./boundary.js";

describe("error boundary", () => {
  const cases: Array<[ErrorCode, status]> = [
    ["InvalidArgument", status.INVALID_ARGUMENT],
    ["NotFound", status.NOT_FOUND],
    ["AlreadyExists", status.ALREADY_EXISTS],
    ["FailedPrecondition", status.FAILED_PRECONDITION],
    ["Unavailable", status.UNAVAILABLE],
    ["Unimplemented", status.UNIMPLEMENTED],
    ["Unauthenticated", status.UNAUTHENTICATED],
    ["PermissionDenied", status.PERMISSION_DENIED],
    ["ResourceExhausted", status.RESOURCE_EXHAUSTED],
    ["DataLoss", status.DATA_LOSS],
    ["Aborted", status.ABORTED],
    ["Cancelled", status.CANCELLED],
    ["DeadlineExceeded", status.DEADLINE_EXCEEDED],
  ];
  for (const [code, grpc] of cases) {
    it(`maps ${code} to gRPC ${status[grpc]}`, () => {
      const e = toGrpcError(new BerthError(code, "why"));
      assert.equal(e.code, grpc);
      assert.equal(e.details, "why");
    });
  }
  it("maps anything untyped to INTERNAL", () => {
    assert.equal(toGrpcError(new TypeError("boom")).code, status.INTERNAL);
    assert.equal(toGrpcError("text").details, "text");
  });
});

/** A stand-in for a unary server call: request, deadline, and the "cancelled" event. */
class FakeCall extends EventEmitter {
  cancelled = false;
  constructor(
    readonly request: unknown,
    private readonly deadline: number = Number.POSITIVE_INFINITY,
  ) {
    super();
  }
  getDeadline(): number {
    return this.deadline;
  }
  cancel(): void {
    this.cancelled = true;
    this.emit("cancelled", "cancelled");
  }
}

function logSink(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const lines: string[] = [];
  const out = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: createLogger("debug", out), text: () => lines.join("") };
}

/** Runs `handler` through `unary` on `call`; resolves what the callback got. */
function invoke(
  handler: (req: unknown, log: unknown, signal: AbortSignal) => Promise<unknown>,
  call: FakeCall,
  logger = logSink().logger,
): Promise<{ err: ServerErrorResponse | null; res: unknown }> {
  return new Promise((resolve) => {
    unary(
      logger,
      "Test",
      handler,
    )(call as never, ((err: ServerErrorResponse | null, res: unknown) => resolve({ err, res })) as never);
  });
}

/** A handler that waits for its signal and then fails the way aborted work does. */
const untilAborted = (_req: unknown, _log: unknown, signal: AbortSignal) =>
  new Promise<never>((_, reject) =>
    signal.addEventListener("abort", () => reject(new Error("stream destroyed"))),
  );

describe("call signals", () => {
  it("aborts the handler's signal when the client cancels: CANCELLED", async () => {
    const call = new FakeCall({});
    const answered = invoke(untilAborted, call);
    call.cancel();
    const { err } = await answered;
    assert.equal(err?.code, status.CANCELLED);
  });

  it("aborts when the deadline passes: DEADLINE_EXCEEDED", async () => {
    const { err } = await invoke(untilAborted, new FakeCall({}, Date.now() + 50));
    assert.equal(err?.code, status.DEADLINE_EXCEEDED);
  });

  it("abortCalls aborts every call in flight with its reason", async () => {
    const answered = invoke(untilAborted, new FakeCall({}));
    assert.equal(abortCalls(unavailable("shutting down")), 1);
    const { err } = await answered;
    assert.equal(err?.code, status.UNAVAILABLE);
    assert.equal(err?.details, "shutting down");
    assert.equal(abortCalls(unavailable("again")), 0, "finished calls are forgotten");
  });

  it("handlers that ignore the signal keep working", async () => {
    const { err, res } = await invoke(
      async (req) => ({ echo: req }),
      new FakeCall("hi", Date.now() + 60_000),
    );
    assert.equal(err, null);
    assert.deepEqual(res, { echo: "hi" });
  });

  it("never logs the credentials of a reference or an AuthConfig", async () => {
    const sink = logSink();
    const request = {
      image: { image: "user:s3cr3t@registry.example/app:v1" },
      auth: { username: "user", password: "s3cr3t", auth: "dXNlcjpzM2NyM3Q=" },
    };
    await invoke(
      async (_req, log) => {
        (log as ReturnType<typeof createLogger>).info({ auth: request.auth }, "auth seen");
        throw new BerthError("Unavailable", "cannot reach https://user:s3cr3t@mirror.example/v2");
      },
      new FakeCall(request),
      sink.logger,
    );
    const text = sink.text();
    assert.match(text, /<credentials>@registry\.example\/app:v1/);
    assert.match(text, /https:\/\/<credentials>@mirror\.example/);
    assert.doesNotMatch(text, /s3cr3t|dXNlcjpzM2NyM3Q=/);
  });
});
