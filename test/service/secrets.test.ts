import { Code, ConnectError } from "@connectrpc/connect";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { AuditService } from "../../gen/secrets/v1/audit_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { decodeStandardBase64 } from "../../src/crypto/base64.js";
import { sealForPublicKey } from "../../src/crypto/sealed-box.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import { client, type Protocol } from "../harness/clients.js";
import { adminToken, mongoUri, startTestSeald, uniqueDatabase } from "../harness/seald.js";

/** A message's fields without its type tag, to send back with changes. */
function fields<T extends { $typeName: string }>(
  m: T | undefined,
): Omit<T, "$typeName" | "$unknown"> | undefined {
  if (!m) return undefined;
  const { $typeName: _t, $unknown: _u, ...rest } = m as T & { $unknown?: unknown };
  return rest;
}

const codeOf = async (p: Promise<unknown>): Promise<Code | "ok"> => {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
};
const errorOf = async (p: Promise<unknown>): Promise<ConnectError> => {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
};

describe("SecretsService end to end", () => {
  const database = uniqueDatabase("secrets");
  let seald: Seald;
  let mongo: MongoClient;
  const tokens: Record<string, string> = {};
  const plaintexts: string[] = [];

  const as = (who: string, protocol: Protocol = "grpc") =>
    client(SecretsService, seald.url, tokens[who] ?? "", protocol);
  const admin = () => client(AccessService, seald.url, adminToken);
  const remember = (v: string) => {
    plaintexts.push(v);
    return v;
  };

  beforeAll(async () => {
    await loadSodium();
    seald = await startTestSeald({ database, maxVersions: 3, maxValueBytes: 1024 });
    mongo = await MongoClient.connect(mongoUri());
    const principals: [string, PrincipalKind, string, string][] = [
      ["ed", PrincipalKind.USER, "editor", "team-a"],
      ["billing", PrincipalKind.SERVICE_ACCOUNT, "decrypter", "team-a"],
      ["stranger", PrincipalKind.SERVICE_ACCOUNT, "decrypter", "team-a"],
      ["other-ns", PrincipalKind.SERVICE_ACCOUNT, "decrypter", "team-b"],
      ["rootuser", PrincipalKind.USER, "admin", "*"],
      ["reporter", PrincipalKind.SERVICE_ACCOUNT, "decrypter", "team-a"],
    ];
    for (const [name, kind, role, namespace] of principals) {
      await admin().createPrincipal({ principal: { name, kind } });
      await admin().grantRole({ binding: { principal: name, role, namespace } });
      tokens[name] = (await admin().createToken({ principal: name })).secret;
    }
    // A decrypter that may also read (and so list) the namespace.
    await admin().grantRole({
      binding: { principal: "reporter", role: "reader", namespace: "team-a" },
    });
  });
  afterAll(async () => {
    await mongo?.close();
    await seald?.close();
  });

  for (const protocol of ["grpc", "connect-json"] as const) {
    it(`round-trips every RPC over ${protocol}`, async () => {
      const ed = as("ed", protocol);
      const name = `db-password-${protocol}`;
      const value = remember(`hunter2-${protocol}-${Math.random()}`);
      const created = await ed.createSecret({
        secret: {
          namespace: "team-a",
          name,
          labels: { "app.kubernetes.io/name": "web", tier: "db" },
          annotations: { note: "rotated monthly" },
          description: "the database password",
          decrypters: ["billing"],
          value: { kind: { case: "plaintext", value } },
        },
      });
      expect(created.secret).toMatchObject({
        namespace: "team-a",
        name,
        keeper: "system",
        version: 1n,
        createdBy: "ed",
      });
      expect(created.secret?.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(created.secret?.value).toBeUndefined();

      const got = await ed.getSecret({ namespace: "team-a", name });
      expect(got.secret?.labels).toEqual({ "app.kubernetes.io/name": "web", tier: "db" });
      expect(got.secret?.resourceVersion).toBe(created.secret?.resourceVersion);
      expect(
        JSON.stringify(got.secret, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
      ).not.toContain(value);

      const listed = await ed.listSecrets({
        namespace: "team-a",
        labelSelector: "app.kubernetes.io/name=web,tier in (db)",
      });
      expect(listed.secrets.map((s) => s.name)).toContain(name);

      const decrypted = await as("billing", protocol).decryptSecrets({
        namespace: "team-a",
        names: [name],
      });
      expect(decrypted.results[name]?.result).toEqual({ case: "value", value });
      expect(decrypted.results[name]?.version).toBe(1n);

      const newValue = remember(`rotated-${protocol}-${Math.random()}`);
      const updated = await ed.updateSecret({
        secret: { ...fields(got.secret), value: { kind: { case: "plaintext", value: newValue } } },
        expectedResourceVersion: got.secret?.resourceVersion ?? "",
      });
      expect(updated.secret?.version).toBe(2n);
      expect(updated.secret?.resourceVersion).not.toBe(got.secret?.resourceVersion);
      const again = await as("billing", protocol).decryptSecrets({
        namespace: "team-a",
        names: [name],
      });
      expect(again.results[name]?.result).toEqual({ case: "value", value: newValue });
      const old = await as("billing", protocol).decryptSecrets({
        namespace: "team-a",
        names: [name],
        version: 1n,
      });
      expect(old.results[name]?.result).toEqual({ case: "value", value });

      await ed.deleteSecret({ namespace: "team-a", name });
      expect(await codeOf(ed.getSecret({ namespace: "team-a", name }))).toBe(Code.NotFound);
      expect(await codeOf(ed.deleteSecret({ namespace: "team-a", name }))).toBe(Code.NotFound);
      const gone = await as("billing", protocol).decryptSecrets({
        namespace: "team-a",
        names: [name],
      });
      // billing may decrypt but not read team-a: a deleted name answers as one it may not decrypt.
      expect(gone.results[name]?.result).toEqual({ case: "error", value: "not authorized" });
    });
  }

  it("accepts a value sealed on the client with libsodium for the namespace key", async () => {
    const ed = as("ed");
    const key = await ed.getPublicKey({ namespace: "team-a" });
    expect(key.keyId).not.toBe("");
    const publicKey = decodeStandardBase64(key.publicKey);
    expect(publicKey?.length).toBe(32);
    // Asked again (or by another replica), the namespace keeps the same key.
    expect((await ed.getPublicKey({ namespace: "team-a" })).keyId).toBe(key.keyId);

    const value = remember(`sealed-on-client-${Math.random()}`);
    const box = sealForPublicKey(publicKey ?? new Uint8Array(), new TextEncoder().encode(value));
    await ed.createSecret({
      secret: {
        namespace: "team-a",
        name: "client-sealed",
        decrypters: ["billing"],
        value: { kind: { case: "sealed", value: { keyId: key.keyId, box } } },
      },
    });
    const res = await as("billing").decryptSecrets({
      namespace: "team-a",
      names: ["client-sealed"],
    });
    expect(res.results["client-sealed"]?.result).toEqual({ case: "value", value });
  });

  it("rejects bad sealed boxes with a message saying which check failed, storing nothing", async () => {
    const ed = as("ed");
    const key = await ed.getPublicKey({ namespace: "team-a" });
    const otherKey = await client(SecretsService, seald.url, adminToken).getPublicKey({
      namespace: "team-z",
    });
    const valid = sealForPublicKey(
      decodeStandardBase64(key.publicKey) ?? new Uint8Array(),
      new Uint8Array([1, 2, 3]),
    );
    const forOther = sealForPublicKey(
      decodeStandardBase64(otherKey.publicKey) ?? new Uint8Array(),
      new Uint8Array([1]),
    );
    const cases: [string, string, RegExp][] = [
      ["nope", valid, /secret\.value\.sealed\.key_id: unknown key id "nope"/],
      [key.keyId, "###", /secret\.value\.sealed\.box: .*base64/],
      [key.keyId, Buffer.alloc(20).toString("base64"), /secret\.value\.sealed\.box: .*(short|48)/],
      [key.keyId, forOther, /secret\.value\.sealed\.box: .*(open)/],
    ];
    for (const [keyId, box, message] of cases) {
      const err = await errorOf(
        ed.createSecret({
          secret: {
            namespace: "team-a",
            name: "bad-box",
            value: { kind: { case: "sealed", value: { keyId, box } } },
          },
        }),
      );
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(message);
    }
    expect(await codeOf(ed.getSecret({ namespace: "team-a", name: "bad-box" }))).toBe(
      Code.NotFound,
    );
  });

  it("answers decrypt per name: authorised, not in decrypters, a user, an admin, another namespace, missing", async () => {
    const value = remember(`decrypt-matrix-${Math.random()}`);
    await as("ed").createSecret({
      secret: {
        namespace: "team-a",
        name: "matrix",
        decrypters: ["billing", "other-ns", "rootuser", "ed", "reporter"],
        value: { kind: { case: "plaintext", value } },
      },
    });
    const ask = (who: string) =>
      as(who).decryptSecrets({ namespace: "team-a", names: ["matrix", "no-such-secret"] });
    const billing = await ask("billing");
    expect(billing.results.matrix?.result).toEqual({ case: "value", value });
    // billing may decrypt but not read team-a: a missing name looks like one it may not decrypt.
    expect(billing.results["no-such-secret"]?.result).toEqual({
      case: "error",
      value: "not authorized",
    });
    // A decrypter that may read the namespace can list it anyway, and is told the truth.
    const reporter = await ask("reporter");
    expect(reporter.results.matrix?.result).toEqual({ case: "value", value });
    expect(reporter.results["no-such-secret"]?.result).toEqual({
      case: "error",
      value: "not found",
    });
    // Every name is audited with its own outcome, all under the one request.
    const audited = await client(AuditService, seald.url, adminToken).listAuditEvents({
      principal: "billing",
      action: "secret.securevalues:decrypt",
      pageSize: 100,
    });
    const asked = audited.events.filter((e) => ["matrix", "no-such-secret"].includes(e.name));
    expect(asked.map((e) => [e.name, e.outcome]).sort()).toEqual([
      ["matrix", "success"],
      ["no-such-secret", "not_found"],
    ]);
    expect(new Set(asked.map((e) => e.requestId)).size).toBe(1);
    for (const who of ["stranger", "ed", "rootuser", "other-ns"]) {
      const res = await ask(who);
      expect(res.results.matrix?.result, who).toEqual({ case: "error", value: "not authorized" });
    }
    // With the grant but not in the decrypters and no right to read: an existing secret and a
    // missing one answer alike.
    const stranger = await ask("stranger");
    expect(stranger.results["no-such-secret"]?.result).toEqual(stranger.results.matrix?.result);
    // Without the grant in the namespace, a missing name looks exactly like an existing one.
    const outsider = await ask("other-ns");
    expect(outsider.results["no-such-secret"]?.result).toEqual({
      case: "error",
      value: "not authorized",
    });
    expect(
      await codeOf(
        as("billing").decryptSecrets({
          namespace: "team-a",
          names: Array.from({ length: 101 }, (_, i) => `n${i}`),
        }),
      ),
    ).toBe(Code.InvalidArgument);
  });

  it("keeps older versions decryptable by number until pruned", async () => {
    const ed = as("ed");
    const values = [1, 2, 3, 4].map((i) => remember(`v${i}-${Math.random()}`));
    await ed.createSecret({
      secret: {
        namespace: "team-a",
        name: "history",
        decrypters: ["billing"],
        value: { kind: { case: "plaintext", value: values[0] ?? "" } },
      },
    });
    for (const v of values.slice(1)) {
      const current = await ed.getSecret({ namespace: "team-a", name: "history" });
      await ed.updateSecret({
        secret: { ...fields(current.secret), value: { kind: { case: "plaintext", value: v } } },
      });
    }
    const at = async (version: bigint) =>
      (await as("billing").decryptSecrets({ namespace: "team-a", names: ["history"], version }))
        .results.history?.result;
    // SEALD_MAX_VERSIONS is 3 here: versions 2, 3 and 4 are kept, 1 is pruned.
    expect(await at(0n)).toEqual({ case: "value", value: values[3] });
    expect(await at(4n)).toEqual({ case: "value", value: values[3] });
    expect(await at(3n)).toEqual({ case: "value", value: values[2] });
    expect(await at(2n)).toEqual({ case: "value", value: values[1] });
    expect(await at(1n)).toEqual({ case: "error", value: "not found" });
    // Pruned, not hidden: only the kept versions are stored.
    const uid = (await mongo.db(database).collection("secrets").findOne({ name: "history" }))?.uid;
    const kept = await mongo.db(database).collection("secret_versions").find({ uid }).toArray();
    expect(kept.map((d) => d.version).sort()).toEqual([2, 3]);

    // A lower limit after a restart serves only the versions inside the new window at once,
    // before any update has pruned the rest.
    const lower = await startTestSeald({ database, maxVersions: 2, maxValueBytes: 1024 });
    try {
      const billing = client(SecretsService, lower.url, tokens.billing ?? "");
      const atLower = async (version: bigint) =>
        (await billing.decryptSecrets({ namespace: "team-a", names: ["history"], version })).results
          .history?.result;
      expect(await atLower(3n)).toEqual({ case: "value", value: values[2] });
      expect(await atLower(2n)).toEqual({ case: "error", value: "not found" });
    } finally {
      await lower.close();
    }
  });

  it("updates without a value keep the stored one and the version", async () => {
    const ed = as("ed");
    const value = remember(`kept-${Math.random()}`);
    await ed.createSecret({
      secret: {
        namespace: "team-a",
        name: "keep",
        decrypters: ["billing"],
        value: { kind: { case: "plaintext", value } },
      },
    });
    const current = await ed.getSecret({ namespace: "team-a", name: "keep" });
    const updated = await ed.updateSecret({
      secret: { ...fields(current.secret), value: undefined, description: "new words" },
    });
    expect(updated.secret?.version).toBe(1n);
    expect(updated.secret?.description).toBe("new words");
    const res = await as("billing").decryptSecrets({ namespace: "team-a", names: ["keep"] });
    expect(res.results.keep?.result).toEqual({ case: "value", value });
    // A stale resource version is Aborted; allow_missing creates.
    expect(
      await codeOf(
        ed.updateSecret({
          secret: fields(current.secret),
          expectedResourceVersion: current.secret?.resourceVersion ?? "",
        }),
      ),
    ).toBe(Code.Aborted);
    expect(
      await codeOf(
        ed.updateSecret({
          secret: {
            namespace: "team-a",
            name: "fresh",
            value: { kind: { case: "plaintext", value: "x" } },
          },
        }),
      ),
    ).toBe(Code.NotFound);
    const made = await ed.updateSecret({
      secret: {
        namespace: "team-a",
        name: "fresh",
        value: { kind: { case: "plaintext", value: "x" } },
      },
      allowMissing: true,
    });
    expect(made.secret?.version).toBe(1n);
  });

  it("lets exactly one of two concurrent updates with the same resource version win", async () => {
    const ed = as("ed");
    await ed.createSecret({
      secret: {
        namespace: "team-a",
        name: "race",
        value: { kind: { case: "plaintext", value: "0" } },
      },
    });
    const current = await ed.getSecret({ namespace: "team-a", name: "race" });
    for (let round = 0; round < 5; round++) {
      const fresh = await ed.getSecret({ namespace: "team-a", name: "race" });
      const rv = fresh.secret?.resourceVersion ?? "";
      const attempts = await Promise.all(
        ["a", "b"].map((who) =>
          codeOf(
            ed.updateSecret({
              secret: { ...fields(current.secret), description: who },
              expectedResourceVersion: rv,
            }),
          ),
        ),
      );
      expect(attempts.filter((c) => c === "ok")).toHaveLength(1);
      expect(attempts.filter((c) => c === Code.Aborted)).toHaveLength(1);
    }
  });

  it("validates at the boundaries and names the field", async () => {
    const ed = as("ed");
    const create = (secret: Record<string, unknown>) =>
      ed.createSecret({ secret: { namespace: "team-a", ...secret } });
    const plain = (value: string) => ({ kind: { case: "plaintext" as const, value } });
    expect(await codeOf(create({ name: "at-limit", value: plain("v".repeat(1024)) }))).toBe("ok");
    const over = await errorOf(create({ name: "over-limit", value: plain("v".repeat(1025)) }));
    expect(over.code).toBe(Code.InvalidArgument);
    expect(over.rawMessage).toContain("secret.value: is 1025 bytes, more than the limit of 1024");
    expect(await codeOf(create({ name: "n".repeat(253), value: plain("x") }))).toBe("ok");
    expect(
      (await errorOf(create({ name: "n".repeat(254), value: plain("x") }))).rawMessage,
    ).toContain("secret.name");
    expect((await errorOf(create({ name: "empty", value: plain("") }))).rawMessage).toContain(
      "secret.value: must not be empty",
    );
    expect((await errorOf(create({ name: "none" }))).rawMessage).toContain(
      "secret.value: is required",
    );
    expect(
      (await errorOf(create({ name: "both", keeper: "env", ref: "X", value: plain("x") })))
        .rawMessage,
    ).toContain("secret.value: must be empty");
    expect((await errorOf(create({ name: "$where", value: plain("x") }))).rawMessage).toContain(
      "secret.name",
    );
    expect(
      (await errorOf(create({ name: "dup-dec", decrypters: ["a", "a"], value: plain("x") })))
        .rawMessage,
    ).toContain("secret.decrypters[1]");
    const odd = { $gt: "1", "a.b.c": "$ne", ключ: "значение ✓", "x/y": "with spaces and $ and ." };
    await create({ name: "odd-labels", labels: odd, value: plain("x") });
    expect(
      (await ed.getSecret({ namespace: "team-a", name: "odd-labels" })).secret?.labels,
    ).toEqual(odd);
    const found = await ed.listSecrets({ namespace: "team-a", labelSelector: "$gt=1" });
    expect(found.secrets.map((s) => s.name)).toEqual(["odd-labels"]);
    expect(
      (await errorOf(ed.listSecrets({ namespace: "team-a", labelSelector: "a in (" }))).rawMessage,
    ).toContain("label_selector");
    expect(
      (await errorOf(ed.listSecrets({ namespace: "team-a", fieldSelector: "spec.nope=1" })))
        .rawMessage,
    ).toContain("field_selector");
    expect(await codeOf(ed.getSecret({ namespace: "team-a", name: "over-limit" }))).toBe(
      Code.NotFound,
    );
  });

  it("pages 1,000 secrets in pages of 37, each exactly once, while other writers run", async () => {
    const rootToken = adminToken;
    const writer = client(SecretsService, seald.url, rootToken);
    const names = Array.from({ length: 1000 }, (_, i) => `p-${String(i).padStart(4, "0")}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(
        names.slice(i, i + 50).map((name) =>
          writer.createSecret({
            secret: {
              namespace: "paging",
              name,
              value: { kind: { case: "plaintext", value: "x" } },
            },
          }),
        ),
      );
    }
    let stop = false;
    let extra = 0;
    const churn = (async () => {
      while (!stop) {
        const name = `churn-${extra++}`;
        await writer.createSecret({
          secret: { namespace: "paging", name, value: { kind: { case: "plaintext", value: "x" } } },
        });
        await writer.deleteSecret({ namespace: "paging", name });
      }
    })();
    const seen = new Map<string, number>();
    let pageToken = "";
    let pages = 0;
    do {
      const page = await writer.listSecrets({ namespace: "paging", pageSize: 37, pageToken });
      for (const s of page.secrets) seen.set(s.name, (seen.get(s.name) ?? 0) + 1);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    stop = true;
    await churn;
    for (const name of names) expect(seen.get(name), name).toBe(1);
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(1000 / 37));
    expect(extra).toBeGreaterThan(0);
  }, 180_000);

  it("leaves no plaintext, nor its base64 or hex, in any collection", async () => {
    const db = mongo.db(database);
    let dump = "";
    for (const c of await db.listCollections().toArray()) {
      const docs = await db.collection(c.name).find().toArray();
      // Binary fields serialise as base64 in EJSON-ish JSON; search raw bytes too.
      dump += JSON.stringify(docs);
      for (const d of docs) dump += Buffer.from(JSON.stringify(d)).toString("latin1");
    }
    expect(plaintexts.length).toBeGreaterThan(5);
    for (const p of plaintexts) {
      for (const form of [p, Buffer.from(p).toString("base64"), Buffer.from(p).toString("hex")]) {
        expect(dump).not.toContain(form);
      }
    }
  });

  it("fails closed when ciphertexts are swapped between records or a byte is flipped", async () => {
    const ed = as("ed");
    for (const name of ["swap-a", "swap-b", "flip"]) {
      await ed.createSecret({
        secret: {
          namespace: "team-a",
          name,
          decrypters: ["billing"],
          value: { kind: { case: "plaintext", value: remember(`${name}-${Math.random()}`) } },
        },
      });
    }
    const secrets = mongo
      .db(database)
      .collection<{ _id: string; sealed: { ciphertext: { buffer: Uint8Array } } }>("secrets");
    const a = await secrets.findOne({ namespace: "team-a", name: "swap-a" });
    const b = await secrets.findOne({ namespace: "team-a", name: "swap-b" });
    if (!a || !b) throw new Error("records missing");
    await secrets.updateOne({ _id: a._id }, { $set: { sealed: b.sealed } });
    await secrets.updateOne({ _id: b._id }, { $set: { sealed: a.sealed } });
    const flip = await secrets.findOne({ namespace: "team-a", name: "flip" });
    const ct = Buffer.from(flip?.sealed.ciphertext.buffer ?? []);
    ct[0] = (ct[0] ?? 0) ^ 1;
    await secrets.updateOne({ _id: flip?._id ?? "" }, { $set: { "sealed.ciphertext": ct } });
    const res = await as("billing").decryptSecrets({
      namespace: "team-a",
      names: ["swap-a", "swap-b", "flip"],
    });
    for (const name of ["swap-a", "swap-b", "flip"]) {
      expect(res.results[name]?.result, name).toEqual({
        case: "error",
        value: "decryption failed",
      });
    }
  });
});
