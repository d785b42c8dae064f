import { MongoNetworkTimeoutError, MongoServerSelectionError } from "mongodb";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CallBounds } from "../../src/domain/deadline.js";
import { DomainError } from "../../src/domain/errors.js";
import { isDatabaseUnavailable, translatingOutages } from "../../src/store/unavailable.js";

/** A store whose calls never settle, as with a database that stalls. */
function stalledStore() {
  let lateReject: (err: unknown) => void = () => {};
  const store = {
    get: (_name: string, _bounds?: CallBounds) =>
      new Promise<string>((_resolve, reject) => {
        lateReject = reject;
      }),
    fine: async (name: string) => `got ${name}`,
    broken: async () => {
      throw new MongoNetworkTimeoutError("connection 3 to 127.0.0.1:1 timed out");
    },
    sync: () => 7,
  };
  return { store, lateReject: (err: unknown) => lateReject(err) };
}

/** A call's outcome once it settles, read after the fake timers have moved. */
function watch(p: Promise<unknown>): { settled: boolean; err: unknown } {
  const outcome = { settled: false, err: undefined as unknown };
  p.then(
    () => {
      outcome.settled = true;
    },
    (e: unknown) => {
      outcome.settled = true;
      outcome.err = e;
    },
  );
  return outcome;
}

// The bounds are timers: fake ones (and a fake Date.now) let each test say the exact
// millisecond a call ends, which no wall-clock bound on a loaded machine can.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("translatingOutages", () => {
  it("answers a call that does not settle as unavailable at the timeout", async () => {
    const { store, lateReject } = stalledStore();
    const s = translatingOutages(store, { timeoutMs: 100 });
    const call = watch(s.get("x"));
    await vi.advanceTimersByTimeAsync(99);
    expect(call.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(call.err).toBeInstanceOf(DomainError);
    expect((call.err as DomainError).code).toBe("unavailable");
    // The abandoned call failing later is dropped, not an unhandled rejection.
    lateReject(new MongoNetworkTimeoutError("late"));
    await vi.advanceTimersByTimeAsync(10);
  });

  it("ends the call at the caller's deadline when it comes first", async () => {
    const s = translatingOutages(stalledStore().store, { timeoutMs: 5000 });
    const call = watch(s.get("x", new CallBounds(Date.now() + 50)));
    await vi.advanceTimersByTimeAsync(49);
    expect(call.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((call.err as DomainError).code).toBe("unavailable");
    // A deadline already passed fails at once: without the clock moving at all.
    const past = watch(s.get("x", new CallBounds(Date.now() - 1)));
    await vi.advanceTimersByTimeAsync(0);
    expect((past.err as DomainError).code).toBe("unavailable");
  });

  it("fails with the signal's reason when the caller goes away", async () => {
    const s = translatingOutages(stalledStore().store, { timeoutMs: 5000 });
    const controller = new AbortController();
    const reason = new Error("client went away");
    setTimeout(() => controller.abort(reason), 20);
    const call = watch(s.get("x", new CallBounds(undefined, controller.signal)));
    await vi.advanceTimersByTimeAsync(19);
    expect(call.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(call.err).toBe(reason);
  });

  it("reads a deadline from a handler context", () => {
    expect(CallBounds.fromContext({ timeoutMs: () => undefined })).toBeUndefined();
    const b = CallBounds.fromContext({ timeoutMs: () => 1000 });
    expect(b?.deadline).toBe(Date.now() + 1000);
  });

  it("maps driver outages to unavailable and passes everything else through", async () => {
    const s = translatingOutages(stalledStore().store, { timeoutMs: 1000 });
    expect(await s.fine("a")).toBe("got a");
    expect(s.sync()).toBe(7);
    await expect(s.broken()).rejects.toMatchObject({ code: "unavailable" });
    expect(isDatabaseUnavailable(new MongoServerSelectionError("no server", {} as never))).toBe(
      true,
    );
    const waitQueue = new Error("Timed out while checking out a connection from connection pool");
    Object.defineProperty(waitQueue, "name", { value: "MongoWaitQueueTimeoutError" });
    expect(isDatabaseUnavailable(waitQueue)).toBe(true);
    expect(isDatabaseUnavailable(new Error("boom"))).toBe(false);
  });
});
