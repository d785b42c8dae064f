import { MongoNetworkTimeoutError, MongoServerSelectionError } from "mongodb";
import { describe, expect, it } from "vitest";
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

async function timed<T>(p: Promise<T>): Promise<{ ms: number; err: unknown }> {
  const started = Date.now();
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { ms: Date.now() - started, err };
}

describe("translatingOutages", () => {
  it("answers a call that does not settle as unavailable at the timeout", async () => {
    const { store, lateReject } = stalledStore();
    const s = translatingOutages(store, { timeoutMs: 100 });
    const { ms, err } = await timed(s.get("x"));
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe("unavailable");
    expect(ms).toBeGreaterThanOrEqual(90);
    expect(ms).toBeLessThan(500);
    // The abandoned call failing later is dropped, not an unhandled rejection.
    lateReject(new MongoNetworkTimeoutError("late"));
    await new Promise((r) => setTimeout(r, 10));
  });

  it("ends the call at the caller's deadline when it comes first", async () => {
    const s = translatingOutages(stalledStore().store, { timeoutMs: 5000 });
    const { ms, err } = await timed(s.get("x", new CallBounds(Date.now() + 50)));
    expect((err as DomainError).code).toBe("unavailable");
    expect(ms).toBeLessThan(1000);
    // A deadline already passed fails at once.
    const past = await timed(s.get("x", new CallBounds(Date.now() - 1)));
    expect(past.ms).toBeLessThan(50);
  });

  it("fails with the signal's reason when the caller goes away", async () => {
    const s = translatingOutages(stalledStore().store, { timeoutMs: 5000 });
    const controller = new AbortController();
    const reason = new Error("client went away");
    setTimeout(() => controller.abort(reason), 20);
    const { ms, err } = await timed(s.get("x", new CallBounds(undefined, controller.signal)));
    expect(err).toBe(reason);
    expect(ms).toBeLessThan(1000);
  });

  it("reads a deadline from a handler context", () => {
    expect(CallBounds.fromContext({ timeoutMs: () => undefined })).toBeUndefined();
    const b = CallBounds.fromContext({ timeoutMs: () => 1000 });
    expect(b?.deadline).toBeGreaterThan(Date.now() + 900);
  });

  it("maps driver outages to unavailable and passes everything else through", async () => {
    const s = translatingOutages(stalledStore().store, { timeoutMs: 1000 });
    expect(await s.fine("a")).toBe("got a");
    expect(s.sync()).toBe(7);
    expect(((await timed(s.broken())).err as DomainError).code).toBe("unavailable");
    expect(isDatabaseUnavailable(new MongoServerSelectionError("no server", {} as never))).toBe(
      true,
    );
    const waitQueue = new Error("Timed out while checking out a connection from connection pool");
    Object.defineProperty(waitQueue, "name", { value: "MongoWaitQueueTimeoutError" });
    expect(isDatabaseUnavailable(waitQueue)).toBe(true);
    expect(isDatabaseUnavailable(new Error("boom"))).toBe(false);
  });
});
