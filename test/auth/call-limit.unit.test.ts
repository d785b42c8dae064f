import { describe, expect, it } from "vitest";
import { CallLimiter } from "../../src/auth/call-limit.js";
import { DomainError } from "../../src/domain/errors.js";
import type { RequestMeta } from "../../src/domain/request.js";

const meta = (remoteAddress: string): RequestMeta => ({ requestId: "r", remoteAddress });

function refusal(fn: () => void): DomainError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  return undefined;
}

describe("calls in flight per principal and per address", () => {
  it("refuses a principal over its bound with a retry hint, and admits it again on release", () => {
    const limiter = new CallLimiter({ maxPerPrincipal: 2, maxPerAddress: 10 });
    const a = meta("10.0.0.1");
    const b = meta("10.0.0.2");
    limiter.admit(a, "reader");
    limiter.admit(b, "reader");
    const err = refusal(() => limiter.admit(meta("10.0.0.3"), "reader"));
    expect(err?.code).toBe("resource_exhausted");
    expect(err?.details.retryAfterSeconds).toBe(1);
    // Another principal is not affected.
    limiter.admit(meta("10.0.0.3"), "billing");
    limiter.release(a);
    limiter.release(a); // idempotent
    expect(limiter.inFlight("reader")).toBe(1);
    limiter.admit(meta("10.0.0.4"), "reader");
  });

  it("refuses an address over its bound whatever the principal", () => {
    const limiter = new CallLimiter({ maxPerPrincipal: 10, maxPerAddress: 2 });
    limiter.admit(meta("10.0.0.1"), "p1");
    limiter.admit(meta("10.0.0.1"), "p2");
    expect(refusal(() => limiter.admit(meta("10.0.0.1"), "p3"))?.message).toMatch(/address/);
    limiter.admit(meta("10.0.0.2"), "p3");
  });

  it("counts a call admitted twice once", () => {
    const limiter = new CallLimiter({ maxPerPrincipal: 1, maxPerAddress: 1 });
    const m = meta("10.0.0.1");
    limiter.admit(m, "p");
    limiter.admit(m, "p");
    limiter.release(m);
    expect(limiter.inFlight("p")).toBe(0);
  });

  it("does not count a call whose response closed while it was being authenticated", () => {
    const limiter = new CallLimiter({ maxPerPrincipal: 1, maxPerAddress: 10 });
    const gone = meta("10.0.0.9");
    // The client went away during the token lookup: the edge released it before the gate admits.
    limiter.release(gone);
    limiter.admit(gone, "reader");
    expect(limiter.inFlight("reader")).toBe(0);
    // So the principal's one place is still free.
    limiter.admit(meta("10.0.0.9"), "reader");
    expect(limiter.inFlight("reader")).toBe(1);
  });
});
