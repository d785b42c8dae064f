/**
 * Namespace sealing keys without a database: one key per namespace however often it is asked
 * for, and after a rotation the previous key accepted for the grace period and not a moment
 * longer, on a clock the test moves.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { sealForPublicKey } from "../../src/crypto/sealed-box.js";
import { DomainError } from "../../src/domain/errors.js";
import type { SecretInput } from "../../src/service/secret-rules.js";
import { callerOf, type MemorySeald, memorySeald, secretInput } from "../harness/memory-seald.js";

const editor = callerOf("ed", "user", "editor@team-a");
const admin = callerOf("admin", "user", "admin@*");
const billing = callerOf("billing", "service_account", "decrypter@team-a");
const graceMs = 60_000;

let seald: MemorySeald;
let clock: Date;

beforeEach(async () => {
  clock = new Date("2026-06-01T12:00:00.000Z");
  seald = await memorySeald({ now: () => clock, publicKeyGraceMs: graceMs });
});

const advance = (ms: number) => {
  clock = new Date(clock.getTime() + ms);
};

function sealedSecret(name: string, key: { keyId: string; publicKey: Uint8Array }, text: string) {
  return secretInput({
    name,
    value: {
      kind: "sealed",
      keyId: key.keyId,
      box: sealForPublicKey(key.publicKey, new TextEncoder().encode(text)),
    },
  });
}

/** The field violations of a create that fails as invalid_argument. */
async function refused(input: SecretInput) {
  const err = await seald.secrets.create(editor, input).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  expect((err as DomainError).code).toBe("invalid_argument");
  return (err as DomainError).details.violations ?? [];
}

describe("namespace sealing keys", () => {
  it("hands out one key per namespace, created on first use", async () => {
    const first = await seald.secrets.getPublicKey(editor, "team-a");
    expect(await seald.secrets.getPublicKey(editor, "team-a")).toEqual(first);
    const other = await seald.secrets.getPublicKey(admin, "team-b");
    expect(other.keyId).not.toBe(first.keyId);
  });

  it("accepts the previous key until the grace period ends, then names the field and why", async () => {
    const old = await seald.secrets.getPublicKey(editor, "team-a");
    const rotated = await seald.keys.rotatePublicKey(admin, "team-a");
    expect(rotated.previous?.keyId).toBe(old.keyId);
    expect(rotated.graceUntil).toEqual(new Date(clock.getTime() + graceMs));
    const current = await seald.secrets.getPublicKey(editor, "team-a");
    expect(current.keyId).toBe(rotated.current.keyId);

    advance(graceMs - 1);
    await seald.secrets.create(editor, sealedSecret("in-grace", old, "old key, in time"));
    const outcome = (await seald.secrets.decrypt(billing, "team-a", ["in-grace"])).get("in-grace");
    expect(outcome && "value" in outcome && outcome.value.unsafeRevealString()).toBe(
      "old key, in time",
    );

    advance(1);
    const late = await refused(sealedSecret("late", old, "old key, too late"));
    expect(late.map((v) => v.field)).toEqual(["value.sealed.key_id"]);
    expect(late[0]?.message).toContain("was rotated out and stopped being accepted at");
    await seald.secrets.create(editor, sealedSecret("current", current, "new key"));
  });

  it("forgets the key before the previous one at the next rotation", async () => {
    const first = await seald.secrets.getPublicKey(editor, "team-a");
    await seald.keys.rotatePublicKey(admin, "team-a");
    await seald.keys.rotatePublicKey(admin, "team-a");
    const found = await refused(sealedSecret("db", first, "two keys ago"));
    expect(found.map((v) => v.field)).toEqual(["value.sealed.key_id"]);
    expect(found[0]?.message).toContain(`unknown key id "${first.keyId}"`);
  });

  it("lets only administrators rotate, and audits the rotation", async () => {
    await expect(seald.keys.rotatePublicKey(editor, "team-a")).rejects.toThrow("permission denied");
    const { current } = await seald.keys.rotatePublicKey(admin, "team-a");
    expect(seald.auditRecords().at(-1)).toMatchObject({
      principal: "admin",
      action: "keys:namespace.rotate",
      namespace: "team-a",
      outcome: "success",
      reason: `new key ${current.keyId}`,
    });
  });
});
