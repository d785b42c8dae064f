/**
 * Batch decrypt without a database: each name's outcome as the caller sees it (coarse), and the
 * audit record each name gets (detailed), stored before any value is returned.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/auth/audit-chain.js";
import type { Caller } from "../../src/auth/caller.js";
import { SecretValue } from "../../src/crypto/secret-value.js";
import { DomainError } from "../../src/domain/errors.js";
import type { DecryptOutcome } from "../../src/service/decrypt.js";
import type { SecretInput } from "../../src/service/secret-rules.js";
import { callerOf, type MemorySeald, memorySeald, secretInput } from "../harness/memory-seald.js";

const editor = callerOf("ed", "user", "editor@team-a");
const billing = callerOf("billing", "service_account", "decrypter@team-a");

function secret(name: string, value: string, overrides: Partial<SecretInput> = {}): SecretInput {
  return secretInput({
    name,
    value: { kind: "plaintext", value: SecretValue.fromString(value) },
    ...overrides,
  });
}

/** What the caller sees of one outcome: the value and its version, or the error. */
function seen(outcome: DecryptOutcome | undefined) {
  if (!outcome) return undefined;
  if ("error" in outcome) return outcome.error;
  return { value: outcome.value.unsafeRevealString(), version: outcome.version };
}

let seald: MemorySeald;

async function decrypt(caller: Caller, names: string[], version = 0, namespace = "team-a") {
  const outcomes = await seald.secrets.decrypt(caller, namespace, names, version);
  return Object.fromEntries([...outcomes].map(([name, o]) => [name, seen(o)]));
}

/** The decrypt audit records, as [principal, name, outcome, reason]. */
function decryptAudit(): [string, string, AuditRecord["outcome"], string | undefined][] {
  return seald
    .auditRecords()
    .filter((r) => r.action === "secret.securevalues:decrypt")
    .map((r) => [r.principal, r.name, r.outcome, r.reason]);
}

beforeEach(async () => {
  seald = await memorySeald({ maxVersions: 2 });
  await seald.secrets.create(editor, secret("db", "s3cret"));
});

describe("decrypt outcomes", () => {
  it("gives a listed service account with the grant the value and its version", async () => {
    expect(await decrypt(billing, ["db"])).toEqual({ db: { value: "s3cret", version: 1 } });
    expect(decryptAudit()).toEqual([["billing", "db", "success", undefined]]);
  });

  it("refuses a user, even one with the decrypt grant or an admin", async () => {
    const user = callerOf("billing", "user", "decrypter@team-a");
    const admin = callerOf("root", "user", "admin@*");
    expect(await decrypt(user, ["db"])).toEqual({ db: "not authorized" });
    expect(await decrypt(admin, ["db"])).toEqual({ db: "not authorized" });
    expect(decryptAudit()).toEqual([
      ["billing", "db", "denied", "only service accounts decrypt"],
      ["root", "db", "denied", "only service accounts decrypt"],
    ]);
  });

  it("refuses a service account that is not in the secret's decrypters", async () => {
    const other = callerOf("payroll", "service_account", "decrypter@team-a");
    expect(await decrypt(other, ["db"])).toEqual({ db: "not authorized" });
    expect(decryptAudit()).toEqual([["payroll", "db", "denied", "not in the secret's decrypters"]]);
  });

  it("refuses without the grant in the namespace, for names that exist and names that do not alike", async () => {
    const elsewhere = callerOf("billing", "service_account", "decrypter@team-b");
    expect(await decrypt(elsewhere, ["db", "no-such"])).toEqual({
      db: "not authorized",
      "no-such": "not authorized",
    });
    const reason = 'no role grants secret.securevalues:decrypt in namespace "team-a"';
    expect(decryptAudit()).toEqual([
      ["billing", "db", "denied", reason],
      ["billing", "no-such", "denied", reason],
    ]);
  });

  it("answers not found for a missing name to a caller that may read, per name, beside the ones that succeed", async () => {
    const reading = callerOf("billing", "service_account", "decrypter@team-a", "reader@team-a");
    expect(await decrypt(reading, ["db", "no-such", "db"])).toEqual({
      db: { value: "s3cret", version: 1 },
      "no-such": "not found",
    });
    expect(decryptAudit()).toEqual([
      ["billing", "db", "success", undefined],
      ["billing", "no-such", "not_found", undefined],
    ]);
  });

  it("answers a missing name as not authorized to a decrypter that may not read, with the truth in the audit", async () => {
    // The decrypt grant alone must not reveal which names exist.
    expect(await decrypt(billing, ["no-such"])).toEqual({ "no-such": "not authorized" });
    expect(decryptAudit()).toEqual([
      [
        "billing",
        "no-such",
        "not_found",
        "no such secret (answered as not authorized: the caller may not read the namespace)",
      ],
    ]);
  });

  it("opens the kept older versions and answers not found for versions not kept", async () => {
    await seald.secrets.update(editor, secret("db", "second"));
    await seald.secrets.update(editor, secret("db", "third"));
    // Two values are kept (maxVersions 2): the current one, 3, and 2.
    expect(await decrypt(billing, ["db"], 2)).toEqual({ db: { value: "second", version: 2 } });
    expect(await decrypt(billing, ["db"], 3)).toEqual({ db: { value: "third", version: 3 } });
    expect(await decrypt(billing, ["db"], 1)).toEqual({ db: "not found" });
    expect(await decrypt(billing, ["db"], 4)).toEqual({ db: "not found" });
    expect(decryptAudit().slice(-2)).toEqual([
      ["billing", "db", "not_found", "version 1 not kept"],
      ["billing", "db", "not_found", "version 4 not kept"],
    ]);
  });

  it("answers decryption failed for a corrupted ciphertext, with the reason only in the audit record", async () => {
    seald.stores.secrets.tamper("team-a", "db", (stored) => {
      if (!stored.envelope) throw new Error("no envelope");
      const ciphertext = Uint8Array.from(stored.envelope.ciphertext);
      ciphertext[0] = (ciphertext[0] ?? 0) ^ 1;
      return { ...stored, envelope: { ...stored.envelope, ciphertext } };
    });
    expect(await decrypt(billing, ["db"])).toEqual({ db: "decryption failed" });
    expect(decryptAudit()).toEqual([
      ["billing", "db", "failed", "decryption failed: value_failed"],
    ]);
  });

  it("answers decryption failed for another record's sealed value copied onto this one", async () => {
    await seald.secrets.create(editor, secret("other", "not yours"));
    const other = await seald.stores.secrets.get("team-a", "other");
    seald.stores.secrets.tamper("team-a", "db", (stored) => ({
      ...stored,
      envelope: other?.envelope,
    }));
    expect(await decrypt(billing, ["db"])).toEqual({ db: "decryption failed" });
    expect(decryptAudit().at(-1)?.[2]).toBe("failed");
  });

  it("resolves a value held by the env provider, and fails it when the variable is unset", async () => {
    // Namespace team-a may name only variables in its scope, APP_TEAM_A__*.
    seald = await memorySeald({ env: { APP_TEAM_A__TOKEN: "from-env" }, envPrefix: "APP_" });
    const env = { keeper: "env", value: undefined } as const;
    await seald.secrets.create(editor, secret("set", "", { ...env, ref: "APP_TEAM_A__TOKEN" }));
    await seald.secrets.create(editor, secret("unset", "", { ...env, ref: "APP_TEAM_A__MISSING" }));
    expect(await decrypt(billing, ["set", "unset"])).toEqual({
      set: { value: "from-env", version: 1 },
      unset: "decryption failed",
    });
    expect(decryptAudit()).toEqual([
      ["billing", "set", "success", undefined],
      ["billing", "unset", "failed", 'environment variable "APP_TEAM_A__MISSING" is not set'],
    ]);
  });
});

describe("decrypt of damaged heads", () => {
  const reading = callerOf("billing", "service_account", "decrypter@team-a", "reader@team-a");

  it("fails only the name whose head was edited in a field its MAC covers", async () => {
    await seald.secrets.create(editor, secret("other", "fine"));
    // Someone with database access adds themselves to the decrypters.
    seald.stores.secrets.tamper("team-a", "db", (stored) => ({
      ...stored,
      decrypters: [...stored.decrypters, "mallory"],
    }));
    const mallory = callerOf("mallory", "service_account", "decrypter@team-a", "reader@team-a");
    expect(await decrypt(mallory, ["db"])).toEqual({ db: "decryption failed" });
    expect(await decrypt(reading, ["db", "other"])).toEqual({
      db: "decryption failed",
      other: { value: "fine", version: 1 },
    });
    // One that may not read the namespace is not told that a record exists there.
    expect(await decrypt(billing, ["db"])).toEqual({ db: "not authorized" });
    expect(decryptAudit().at(-3)).toEqual([
      "billing",
      "db",
      "failed",
      "the stored record is damaged: the head's integrity MAC does not hold",
    ]);
  });

  it("does not open a head rebuilt from kept history", async () => {
    await seald.secrets.update(editor, secret("db", "second"));
    const v1 = await seald.stores.secrets.getVersion(
      (await seald.secrets.get(editor, "team-a", "db")).uid,
      1,
      2,
    );
    // Version 1's sealed value put back into the head, with the version it was sealed for.
    seald.stores.secrets.tamper("team-a", "db", (stored) => ({
      ...stored,
      version: 1,
      envelope: v1,
    }));
    expect(await decrypt(reading, ["db"])).toEqual({ db: "decryption failed" });
  });
});

describe("decrypt and the audit trail", () => {
  it("returns nothing until every name's audit record is stored", async () => {
    const release = seald.stores.audit.holdInserts();
    let settled = false;
    const call = seald.secrets.decrypt(billing, "team-a", ["db", "no-such"]).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    expect(decryptAudit()).toEqual([]);
    release();
    const outcomes = await call;
    expect(seen(outcomes.get("db"))).toEqual({ value: "s3cret", version: 1 });
    expect(decryptAudit().map(([, name, outcome]) => [name, outcome])).toEqual([
      ["db", "success"],
      ["no-such", "not_found"],
    ]);
  });

  it("fails the whole call, returning no value, when the audit records cannot be stored", async () => {
    seald.stores.audit.failNextInsert(new Error("audit store unreachable"));
    await expect(seald.secrets.decrypt(billing, "team-a", ["db"])).rejects.toThrow(
      "audit store unreachable",
    );
    expect(decryptAudit()).toEqual([]);
  });

  it("chains every decrypt record onto the log so that verify() accepts it", async () => {
    await decrypt(billing, ["db", "no-such"]);
    await decrypt(callerOf("u", "user", "decrypter@team-a"), ["db"]);
    expect(await seald.audit.verify()).toMatchObject({
      ok: true,
      count: seald.auditRecords().length,
    });
  });
});

describe("decrypt requests", () => {
  it("names the field of a bad request before looking anything up", async () => {
    const fieldsOf = async (names: string[], version = 0, namespace = "team-a") => {
      const err = await seald.secrets.decrypt(billing, namespace, names, version).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DomainError);
      return (err as DomainError).details.violations?.map((v) => v.field);
    };
    expect(await fieldsOf([])).toEqual(["names"]);
    expect(await fieldsOf(Array.from({ length: 101 }, (_, i) => `n${i}`))).toEqual(["names"]);
    expect(await fieldsOf(["db"], -1)).toEqual(["version"]);
    expect(await fieldsOf(["db"], 0, "bad namespace")).toEqual(["namespace"]);
    expect(decryptAudit()).toEqual([]);
  });
});
