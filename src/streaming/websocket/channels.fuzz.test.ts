import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { fuzzParams, mutatedString, typedOutcome } from "../../common/fuzz-testutil.js";
import { CLOSE_SIGNAL, decodeMessage, encodeMessage } from "./channels.js";
import { WS_EXEC_PROTOCOLS } from "./exec.js";
import { MAX_WS_PORTS, portsFromQuery, WS_PORTFORWARD_PROTOCOLS } from "./portforward.js";
import { negotiateProtocol, offeredProtocols } from "./upgrade.js";

const framing = fc.record({ base64: fc.boolean(), closeSignals: fc.boolean() });
const data = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b));

/** Plain Error with a message (portsFromQuery's contract: the text goes to the client as a 400). */
class PlainError extends Error {
  static override [Symbol.hasInstance](e: unknown): boolean {
    return e instanceof Error && e.constructor === Error && e.message !== "";
  }
}

describe("WebSocket channel framing (fuzz)", () => {
  it("decodeMessage on arbitrary messages: a channel message or undefined, never a throw", () => {
    fc.assert(
      fc.property(data, framing, (raw, f) => {
        const m = decodeMessage(raw, f);
        if (!m) return;
        assert.ok(Number.isInteger(m.channel) && m.channel >= 0 && m.channel <= 255);
        if ("data" in m) assert.ok(Buffer.isBuffer(m.data));
      }),
      fuzzParams(),
    );
  });

  it("encodeMessage / decodeMessage round-trip on every channel a port-forward can use", () => {
    fc.assert(
      fc.property(fc.nat(2 * MAX_WS_PORTS - 1), data, framing, (channel, payload, f) => {
        if (f.closeSignals && channel === CLOSE_SIGNAL) return;
        const raw = encodeMessage(channel, payload, f.base64);
        const m = decodeMessage(typeof raw === "string" ? Buffer.from(raw, "latin1") : raw, f);
        assert.deepEqual(m, { channel, data: payload });
      }),
      fuzzParams(),
    );
  });

  it("more than 5 port-forward ports over base64: channel 10 and up still decode", () => {
    const m = decodeMessage(Buffer.from(encodeMessage(12, Buffer.from("hi"), true) as string), {
      base64: true,
      closeSignals: false,
    });
    assert.deepEqual(m, { channel: 12, data: Buffer.from("hi") });
  });
});

describe("port-forward ports and subprotocols (fuzz)", () => {
  const port = fc.oneof(
    fc.integer({ min: 0, max: 70000 }).map(String),
    fc.constantFrom("", "x", "+1", "08080", "1e3", " 80", "80 "),
  );
  const query = fc.oneof(
    fc
      .array(fc.array(port, { minLength: 1, maxLength: 4 }), { maxLength: 4 })
      .map((vs) => `/portforward/t?${vs.map((v) => `port=${v.join(",")}`).join("&")}`),
    fc.integer({ min: 100, max: 300 }).map((n) => `/p/t?port=${Array(n).fill("80").join(",")}`),
  );

  it("portsFromQuery: valid ports, few enough for one channel byte each, or an Error for the client", () => {
    fc.assert(
      fc.property(
        fc.oneof(query, mutatedString(query), fc.string({ unit: "binary" })),
        fc.oneof(fc.constant([]), fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 120 })),
        (url, stored) => {
          const ports = typedOutcome(() => portsFromQuery(url, stored), PlainError);
          if (!ports) return;
          assert.ok(ports.length >= 1 && ports.length <= MAX_WS_PORTS);
          for (const p of ports) assert.ok(Number.isInteger(p) && p >= 1 && p <= 65535);
        },
      ),
      fuzzParams(),
    );
  });

  it(`refuses more than ${MAX_WS_PORTS} ports (their channels would wrap onto others)`, () => {
    const many = Array(MAX_WS_PORTS + 1).fill(80);
    assert.throws(() => portsFromQuery(`/p?port=${many.join(",")}`, []), /at most 104 ports/);
    assert.throws(() => portsFromQuery("/p", many), /at most 104 ports/);
    assert.equal(portsFromQuery(`/p?port=${many.slice(1).join(",")}`, []).length, MAX_WS_PORTS);
  });

  it("subprotocol negotiation picks a supported protocol or none", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constant(undefined),
          fc.string(),
          fc.array(fc.oneof(fc.string(), fc.constantFrom(...WS_EXEC_PROTOCOLS, ...WS_PORTFORWARD_PROTOCOLS))),
        ),
        fc.constantFrom(WS_EXEC_PROTOCOLS, WS_PORTFORWARD_PROTOCOLS),
        (header, supported) => {
          const p = negotiateProtocol(offeredProtocols(header), supported);
          if (p !== undefined) assert.ok((supported as readonly string[]).includes(p));
        },
      ),
      fuzzParams(),
    );
  });
});
