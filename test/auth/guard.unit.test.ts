/**
 * The guard over the real audit log on the in-memory audit store: a denial is recorded before
 * the caller is refused, and can be read back like any audit record.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { secretActions } from "../../src/auth/principal.js";
import { DomainError } from "../../src/domain/errors.js";
import { callerOf, type MemorySeald, memorySeald } from "../harness/memory-seald.js";

describe("Guard", () => {
  let seald: MemorySeald;
  beforeEach(async () => {
    seald = await memorySeald();
  });

  it("refuses with permission_denied after storing a denied record that names why", async () => {
    const reader = callerOf("rita", "user", "reader@team-a");
    const refusal = await seald.guard
      .require(reader, secretActions.write, "team-a", "db")
      .catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(DomainError);
    expect((refusal as DomainError).code).toBe("permission_denied");
    // The caller is told only "permission denied"; the audit record has the reason.
    expect((refusal as DomainError).message).toBe("permission denied");
    expect(seald.auditRecords()).toMatchObject([
      {
        seq: 1,
        principal: "rita",
        action: secretActions.write,
        namespace: "team-a",
        name: "db",
        outcome: "denied",
        reason: 'no role grants secret.securevalues:write in namespace "team-a"',
        requestId: reader.requestId,
        remoteAddress: reader.remoteAddress,
      },
    ]);
  });

  it("lets an allowed action through and records nothing for it", async () => {
    const reader = callerOf("rita", "user", "reader@team-a");
    await seald.guard.require(reader, secretActions.read, "team-a", "db");
    expect(seald.auditRecords()).toEqual([]);
  });

  it("lists the denial through the audit log, chained and verifiable", async () => {
    const stranger = callerOf("sam", "service_account");
    await expect(seald.guard.require(stranger, secretActions.decrypt, "team-b")).rejects.toThrow(
      "permission denied",
    );
    const page = await seald.audit.list({ outcome: "denied" }, { pageSize: 10 });
    expect(page.records.map((r) => [r.principal, r.namespace, r.outcome])).toEqual([
      ["sam", "team-b", "denied"],
    ]);
    expect(await seald.audit.verify()).toMatchObject({ ok: true, count: 1 });
  });

  it("fails with the audit store's error, not a refusal, when the denial cannot be recorded", async () => {
    seald.stores.audit.failNextInsert(new Error("database went away"));
    const reader = callerOf("rita", "user", "reader@team-a");
    await expect(seald.guard.require(reader, secretActions.delete, "team-a", "x")).rejects.toThrow(
      "database went away",
    );
    expect(seald.auditRecords()).toEqual([]);
  });
});
