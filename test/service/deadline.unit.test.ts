/**
 * The caller's deadline reaches the store: a use case called with a deadline hands it to every
 * store read (writes keep to the database timeout, so that none lands unaudited), and the outage wrapper (the one app.ts puts around the MongoDB stores) ends a call
 * that outlives it, long before the database timeout. The store here never answers, as a paused
 * database does not.
 */
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import type { SecretStore } from "../../src/service/ports.js";
import { SecretUseCases } from "../../src/service/secrets.js";
import { translatingOutages } from "../../src/store/unavailable.js";
import { callerOf, memorySeald } from "../harness/memory-seald.js";

/** A secret store whose every call hangs, wrapped as app.ts wraps the real one (60 s timeout). */
function stalledStore(): SecretStore {
  const never = () => new Promise<never>(() => {});
  const store = new Proxy({} as SecretStore, { get: () => never });
  return translatingOutages(store, { timeoutMs: 60_000 });
}

describe("a caller's deadline", () => {
  it("ends every store read of a use case at the deadline, not at the database timeout", async () => {
    const seald = await memorySeald();
    const secrets = new SecretUseCases({
      store: stalledStore(),
      ring: seald.ring,
      guard: seald.guard,
      keepers: seald.providers,
    });
    const editor = callerOf("ed", "user", "editor@team-a");
    const service = callerOf("svc", "service_account", "decrypter@team-a");
    const calls: [string, (deadline: number) => Promise<unknown>][] = [
      ["get", (deadline) => secrets.get({ ...editor, deadline }, "team-a", "db")],
      [
        "list",
        (deadline) =>
          secrets.list(
            { ...editor, deadline },
            { namespace: "team-a", labels: [], fields: [], pageToken: "", pageSize: 0 },
          ),
      ],
      ["decrypt", (deadline) => secrets.decrypt({ ...service, deadline }, "team-a", ["db"])],
    ];
    for (const [what, call] of calls) {
      const started = Date.now();
      const err = await call(Date.now() + 150).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(DomainError);
      expect((err as DomainError).message, what).toBe(
        "deadline passed before the database answered",
      );
      expect(Date.now() - started, what).toBeLessThan(10_000);
    }
    // Without a deadline the same call is still waiting (for the 60 s database timeout).
    const pending = await Promise.race([
      secrets.get(editor, "team-a", "db").then(
        () => "settled",
        () => "settled",
      ),
      new Promise((resolve) => setTimeout(() => resolve("pending"), 400)),
    ]);
    expect(pending).toBe("pending");
  });
});
