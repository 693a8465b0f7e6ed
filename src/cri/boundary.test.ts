import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { BerthError, type ErrorCode } from "../common/errors.js";
import { toGrpcError } from "./boundary.js";

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
