/**
 * The secrets use cases without a database: write validation, the compare-and-set retry of
 * update, the field mask, and list page tokens, over the in-memory stores with the real key
 * ring, libsodium, guard and audit log. The same behaviour through a real server and FerretDB is
 * in secrets.test.ts.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { sealForPublicKey } from "../../src/crypto/sealed-box.js";
import { SecretValue } from "../../src/crypto/secret-value.js";
import { DomainError, type ErrorCode, type FieldViolation } from "../../src/domain/errors.js";
import type { ValueInput } from "../../src/service/secret-rules.js";
import { callerOf, type MemorySeald, memorySeald, secretInput } from "../harness/memory-seald.js";

const limit = 64;
const editor = callerOf("ed", "user", "editor@team-a");
const admin = callerOf("admin", "user", "admin@*");
/** A decrypter that may also read, so a missing name answers "not found" (see decrypt.ts). */
const billing = callerOf("billing", "service_account", "decrypter@team-a", "reader@team-a");

const plaintext = (value: string | Uint8Array): ValueInput => ({
  kind: "plaintext",
  value: typeof value === "string" ? SecretValue.fromString(value) : SecretValue.fromBytes(value),
});

const secret = secretInput;

/** The DomainError a call fails with; fails the test when the call succeeds. */
async function failure(call: Promise<unknown>): Promise<DomainError> {
  try {
    await call;
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error("expected the call to fail");
}

async function codeOf(call: Promise<unknown>): Promise<ErrorCode> {
  return (await failure(call)).code;
}

/** The field violations of an invalid_argument failure. */
async function violations(call: Promise<unknown>): Promise<readonly FieldViolation[]> {
  const err = await failure(call);
  expect(err.code).toBe("invalid_argument");
  return err.details.violations ?? [];
}

let seald: MemorySeald;

/** The current value of a secret as its decrypter gets it. */
async function decrypted(name: string, version = 0): Promise<string | { error: string }> {
  const outcome = (await seald.secrets.decrypt(billing, "team-a", [name], version)).get(name);
  if (!outcome) throw new Error(`no outcome for ${name}`);
  if ("error" in outcome) return { error: outcome.error };
  return outcome.value.unsafeRevealString();
}

beforeEach(async () => {
  seald = await memorySeald({ limits: { maxValueBytes: limit } });
});

describe("validation", () => {
  it("names every bad field in one error and stores nothing", async () => {
    const found = await violations(
      seald.secrets.create(
        editor,
        secret({
          name: "no spaces",
          labels: { "a=b": "x" },
          description: "d".repeat(1025),
          decrypters: ["billing", "billing"],
          ref: "vault:thing",
        }),
      ),
    );
    expect(found.map((v) => v.field)).toEqual([
      "name",
      'labels["a=b"]',
      "description",
      "decrypters[1]",
      "ref",
    ]);
    expect(found.find((v) => v.field === "description")?.message).toBe(
      "must be at most 1024 characters",
    );
    const listed = await seald.secrets.list(admin, {
      namespace: "",
      labels: [],
      fields: [],
      pageToken: "",
      pageSize: 0,
    });
    expect(listed.secrets).toEqual([]);
  });

  it("requires a value for a stored secret, and refuses an empty one", async () => {
    expect(await violations(seald.secrets.create(editor, secret({ value: undefined })))).toEqual([
      { field: "value", message: "is required" },
    ]);
    expect(
      await violations(seald.secrets.create(editor, secret({ value: plaintext("") }))),
    ).toEqual([{ field: "value", message: "must not be empty" }]);
  });

  it("takes a plaintext value of exactly the limit in bytes, and refuses one byte more", async () => {
    const atLimit = new Uint8Array(limit).fill(0x61);
    const created = await seald.secrets.create(editor, secret({ value: plaintext(atLimit) }));
    expect(created.version).toBe(1);
    expect(await decrypted("db")).toBe("a".repeat(limit));

    const over = new Uint8Array(limit + 1).fill(0x61);
    expect(
      await violations(
        seald.secrets.create(editor, secret({ name: "db2", value: plaintext(over) })),
      ),
    ).toEqual([
      { field: "value", message: `is ${limit + 1} bytes, more than the limit of ${limit}` },
    ]);
  });

  it("counts bytes, not characters", async () => {
    // "é" is two bytes in UTF-8: half the limit in characters is exactly the limit in bytes.
    await seald.secrets.create(editor, secret({ value: plaintext("é".repeat(limit / 2)) }));
    const found = await violations(
      seald.secrets.create(
        editor,
        secret({ name: "db2", value: plaintext(`${"é".repeat(limit / 2)}a`) }),
      ),
    );
    expect(found.map((v) => v.field)).toEqual(["value"]);
  });

  it("applies the same limit to a sealed box's plaintext: exactly the limit opens, one byte more is refused", async () => {
    const key = await seald.secrets.getPublicKey(editor, "team-a");
    const sealed = (bytes: Uint8Array): ValueInput => ({
      kind: "sealed",
      keyId: key.keyId,
      box: sealForPublicKey(key.publicKey, bytes),
    });
    await seald.secrets.create(editor, secret({ value: sealed(new Uint8Array(limit).fill(0x62)) }));
    expect(await decrypted("db")).toBe("b".repeat(limit));

    // The box itself is 48 bytes longer than its plaintext; only the plaintext counts.
    const found = await violations(
      seald.secrets.create(
        editor,
        secret({ name: "db2", value: sealed(new Uint8Array(limit + 1).fill(0x62)) }),
      ),
    );
    expect(found).toEqual([
      { field: "value", message: `is ${limit + 1} bytes, more than the limit of ${limit}` },
    ]);
    expect(await seald.secrets.get(editor, "team-a", "db2").catch((e: DomainError) => e.code)).toBe(
      "not_found",
    );
  });

  it("names value.sealed.key_id for a key the namespace never had, and value.sealed.box for a box that is not one", async () => {
    const key = await seald.secrets.getPublicKey(editor, "team-a");
    const box = sealForPublicKey(key.publicKey, new TextEncoder().encode("x"));
    const unknown = await violations(
      seald.secrets.create(editor, secret({ value: { kind: "sealed", keyId: "nope", box } })),
    );
    expect(unknown.map((v) => v.field)).toEqual(["value.sealed.key_id"]);
    const garbage = await violations(
      seald.secrets.create(
        editor,
        secret({ value: { kind: "sealed", keyId: key.keyId, box: "not base64!" } }),
      ),
    );
    expect(garbage.map((v) => v.field)).toEqual(["value.sealed.box"]);
  });

  it("checks an update's value against the limit too, leaving the stored value as it was", async () => {
    await seald.secrets.create(editor, secret());
    const found = await violations(
      seald.secrets.update(editor, secret({ value: plaintext(new Uint8Array(limit + 1)) })),
    );
    expect(found.map((v) => v.field)).toEqual(["value"]);
    expect((await seald.secrets.get(editor, "team-a", "db")).version).toBe(1);
    expect(await decrypted("db")).toBe("s3cret");
  });

  it("authorises before it validates: a caller without rights learns nothing about the input", async () => {
    const reader = callerOf("rita", "user", "reader@team-a");
    expect(await codeOf(seald.secrets.create(reader, secret({ name: "no spaces" })))).toBe(
      "permission_denied",
    );
  });
});

describe("compare-and-set retry", () => {
  beforeEach(async () => {
    await seald.secrets.create(editor, secret({ description: "before" }));
  });

  for (const lost of [1, 2, 3, 4]) {
    it(`wins after losing ${lost} race${lost > 1 ? "s" : ""}, on top of the other writer's change`, async () => {
      seald.stores.secrets.loseNextRaces(lost);
      const updated = await seald.secrets.update(editor, secret({ description: "after" }), {
        replace: ["description"],
      });
      expect(seald.stores.secrets.updateCalls).toBe(lost + 1);
      // Each retry re-read the head: the other writer's last label survives beside this change.
      expect(updated.description).toBe("after");
      expect(updated.labels).toEqual({ racer: String(lost) });
      const stored = await seald.secrets.get(editor, "team-a", "db");
      expect(stored).toMatchObject({ description: "after", labels: { racer: String(lost) } });
      expect(stored.resourceVersion).toBe(updated.resourceVersion);
    });
  }

  it("answers conflict after losing five races, leaving the other writer's record", async () => {
    seald.stores.secrets.loseNextRaces(5);
    const err = await failure(
      seald.secrets.update(editor, secret({ description: "after" }), { replace: ["description"] }),
    );
    expect(err.code).toBe("conflict");
    expect(err.message).toBe('secret "db" was changed by someone else; read it again and retry');
    expect(seald.stores.secrets.updateCalls).toBe(5);
    expect(await seald.secrets.get(editor, "team-a", "db")).toMatchObject({
      description: "before",
      labels: { racer: "5" },
    });
  });

  it("does not retry an update that named the resource version it expects", async () => {
    const current = await seald.secrets.get(editor, "team-a", "db");
    seald.stores.secrets.loseNextRaces(1);
    expect(
      await codeOf(
        seald.secrets.update(editor, secret({ description: "after" }), {
          expectedResourceVersion: current.resourceVersion,
        }),
      ),
    ).toBe("conflict");
    expect(seald.stores.secrets.updateCalls).toBe(1);
  });

  it("refuses a stale expected resource version without writing, and audits the conflict", async () => {
    expect(
      await codeOf(
        seald.secrets.update(editor, secret({ description: "after" }), {
          expectedResourceVersion: "0123456789abcdef",
        }),
      ),
    ).toBe("conflict");
    expect(seald.stores.secrets.updateCalls).toBe(0);
    expect(seald.auditRecords().at(-1)).toMatchObject({
      principal: "ed",
      action: "secret.securevalues:write",
      name: "db",
      outcome: "conflict",
      reason: "stale resource version",
    });
  });

  it("applies an expected resource version that still matches", async () => {
    const current = await seald.secrets.get(editor, "team-a", "db");
    const updated = await seald.secrets.update(editor, secret({ description: "after" }), {
      expectedResourceVersion: current.resourceVersion,
    });
    expect(updated.description).toBe("after");
    expect(updated.resourceVersion).not.toBe(current.resourceVersion);
  });
});

describe("the field mask of update", () => {
  const stored = secret({
    labels: { app: "shop" },
    annotations: { owner: "ops" },
    description: "the shop's database",
    decrypters: ["billing"],
  });
  beforeEach(async () => {
    await seald.secrets.create(editor, stored);
  });

  it("keeps every field the mask does not name, whatever the input carries", async () => {
    const updated = await seald.secrets.update(
      editor,
      secret({
        labels: { app: "other" },
        annotations: {},
        description: "new words",
        decrypters: [],
        value: plaintext("ignored"),
      }),
      { replace: ["description"] },
    );
    expect(updated).toMatchObject({
      description: "new words",
      labels: { app: "shop" },
      annotations: { owner: "ops" },
      decrypters: ["billing"],
      version: 1,
    });
    expect(await decrypted("db")).toBe("s3cret");
  });

  it("replaces the value when the mask names it, as a new version", async () => {
    const updated = await seald.secrets.update(
      editor,
      secret({ description: "ignored", value: plaintext("rotated") }),
      { replace: ["value"] },
    );
    expect(updated).toMatchObject({ version: 2, description: "the shop's database" });
    expect(await decrypted("db")).toBe("rotated");
    expect(await decrypted("db", 1)).toBe("s3cret");
  });

  it("without a mask replaces every field but an omitted value", async () => {
    const updated = await seald.secrets.update(
      editor,
      secret({ labels: {}, description: "", decrypters: ["billing"], value: undefined }),
    );
    expect(updated).toMatchObject({ labels: {}, annotations: {}, description: "", version: 1 });
    expect(await decrypted("db")).toBe("s3cret");
  });

  it("creates a missing secret with allowMissing, and answers not found without it", async () => {
    expect(await codeOf(seald.secrets.update(editor, secret({ name: "fresh" })))).toBe("not_found");
    const created = await seald.secrets.update(
      editor,
      secret({ name: "fresh", value: plaintext("new") }),
      {
        allowMissing: true,
        replace: ["value"],
      },
    );
    expect(created).toMatchObject({ name: "fresh", version: 1, createdBy: "ed" });
    expect(seald.auditRecords().at(-1)).toMatchObject({
      action: "secret.securevalues:create",
      name: "fresh",
      outcome: "success",
    });
    expect(await decrypted("fresh")).toBe("new");
  });

  it("validates what allowMissing would create", async () => {
    const found = await violations(
      seald.secrets.update(editor, secret({ name: "fresh", value: undefined }), {
        allowMissing: true,
      }),
    );
    expect(found).toEqual([{ field: "value", message: "is required" }]);
  });
});

describe("list page tokens", () => {
  const teamA = ["a1", "a2", "a3", "a4", "a5"];
  beforeEach(async () => {
    for (const name of [...teamA].reverse())
      await seald.secrets.create(admin, secret({ name, decrypters: [] }));
    for (const name of ["b1", "b2"])
      await seald.secrets.create(admin, secret({ namespace: "team-b", name, decrypters: [] }));
  });

  const list = (namespace: string, pageToken = "", pageSize = 2, caller = admin) =>
    seald.secrets.list(caller, { namespace, labels: [], fields: [], pageToken, pageSize });

  it("pages through a namespace in name order, each secret once, ending with an empty token", async () => {
    const seen: string[] = [];
    const tokens: string[] = [];
    let token = "";
    do {
      const page = await list("team-a", token);
      seen.push(...page.secrets.map((s) => s.name));
      token = page.nextPageToken;
      tokens.push(token);
    } while (token !== "");
    expect(seen).toEqual(teamA);
    expect(tokens).toHaveLength(3);
  });

  it("issues opaque tokens that name nothing in the clear", async () => {
    const { nextPageToken } = await list("team-a");
    expect(nextPageToken).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(nextPageToken).not.toContain("a2");
    expect(nextPageToken).not.toContain("team-a");
  });

  it("continues a list across every namespace from the token of its last page", async () => {
    const first = await list("", "", 4);
    expect(first.secrets.map((s) => `${s.namespace}/${s.name}`)).toEqual([
      "team-a/a1",
      "team-a/a2",
      "team-a/a3",
      "team-a/a4",
    ]);
    const rest = await list("", first.nextPageToken, 4);
    expect(rest.secrets.map((s) => `${s.namespace}/${s.name}`)).toEqual([
      "team-a/a5",
      "team-b/b1",
      "team-b/b2",
    ]);
    expect(rest.nextPageToken).toBe("");
  });

  it("lists across namespaces only the ones the caller may read", async () => {
    const reader = callerOf("rita", "user", "reader@team-b");
    const page = await list("", "", 100, reader);
    expect(page.secrets.map((s) => s.name)).toEqual(["b1", "b2"]);
  });

  it("leaves a damaged head out of a page but keeps its place, so paging stays exact", async () => {
    seald.stores.secrets.damage("team-a", "a2", "labels are not a list of {k, v} strings");
    const first = await list("team-a");
    expect(first.secrets.map((s) => s.name)).toEqual(["a1"]);
    const second = await list("team-a", first.nextPageToken);
    expect(second.secrets.map((s) => s.name)).toEqual(["a3", "a4"]);
    expect(await codeOf(seald.secrets.get(admin, "team-a", "a2"))).toBe("data_loss");
    // A damaged head can still be deleted.
    await seald.secrets.delete(admin, "team-a", "a2");
    expect(await codeOf(seald.secrets.get(admin, "team-a", "a2"))).toBe("not_found");
  });

  it("refuses a token issued for another namespace", async () => {
    const { nextPageToken } = await list("team-a");
    expect(await violations(list("team-b", nextPageToken))).toEqual([
      { field: "page_token", message: "was issued for another namespace" },
    ]);
  });

  it("refuses tokens this server did not issue", async () => {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const token of [
      "not a token",
      "%%%",
      Buffer.from("not json").toString("base64url"),
      encode({ x: 1 }),
      encode({ ns: "team-a", n: 7 }),
      encode(["team-a", "a2"]),
      encode(null),
    ]) {
      expect(await violations(list("team-a", token)), token).toEqual([
        { field: "page_token", message: "is not a page token this server issued" },
      ]);
    }
  });

  it("refuses a page size outside 0 to 1000", async () => {
    for (const size of [-1, 1001, 1.5]) {
      expect((await violations(list("team-a", "", size))).map((v) => v.field)).toEqual([
        "page_size",
      ]);
    }
  });
});

describe("external references", () => {
  it("refuses a ref outside the namespace's scope of the env provider, naming the field", async () => {
    seald = await memorySeald({ envPrefix: "APP_" });
    const env = { keeper: "env", value: undefined } as const;
    const found = await violations(
      seald.secrets.create(editor, secret({ ...env, ref: "APP_TEAM_B__PASSWORD" })),
    );
    expect(found).toEqual([
      {
        field: "ref",
        message:
          'the env provider resolves only variables starting with "APP_TEAM_A__" for namespace "team-a"',
      },
    ]);
    const created = await seald.secrets.create(editor, secret({ ...env, ref: "APP_TEAM_A__PW" }));
    expect(created).toMatchObject({ keeper: "env", ref: "APP_TEAM_A__PW", version: 1 });
  });
});

describe("create and delete", () => {
  it("answers already_exists for a taken name, audits it, and keeps the first secret", async () => {
    const first = await seald.secrets.create(editor, secret());
    expect(await codeOf(seald.secrets.create(editor, secret({ value: plaintext("other") })))).toBe(
      "already_exists",
    );
    expect(seald.auditRecords().at(-1)).toMatchObject({
      action: "secret.securevalues:create",
      outcome: "conflict",
      reason: "name taken",
    });
    expect((await seald.secrets.get(editor, "team-a", "db")).uid).toBe(first.uid);
    expect(await decrypted("db")).toBe("s3cret");
  });

  it("deletes only at the expected resource version when one is given, then answers not found", async () => {
    const created = await seald.secrets.create(editor, secret());
    expect(await codeOf(seald.secrets.delete(editor, "team-a", "db", "0000000000000000"))).toBe(
      "conflict",
    );
    await seald.secrets.delete(editor, "team-a", "db", created.resourceVersion);
    expect(await codeOf(seald.secrets.get(editor, "team-a", "db"))).toBe("not_found");
    expect(await codeOf(seald.secrets.delete(editor, "team-a", "db"))).toBe("not_found");
    expect(await decrypted("db")).toEqual({ error: "not found" });
  });
});
