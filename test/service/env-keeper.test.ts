import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { envScope } from "../../src/service/env-keeper.js";
import { client } from "../harness/clients.js";
import { adminToken, mongoUri, startTestSeald, uniqueDatabase } from "../harness/seald.js";

describe("the env keeper", () => {
  const providerEnv = {
    APP_OPS__DB_PASSWORD: "from-the-environment",
    APP_TEAM_A__TOKEN: "team-a's own",
    APP_OPS_X__DB: "ops-x's own",
    SEALD_MASTER_KEYS: "never-readable",
    OTHER: "x",
  };
  const database = uniqueDatabase("env");
  let withPrefix: Seald;
  let withoutPrefix: Seald;
  let mongo: MongoClient;
  let token = "";

  beforeAll(async () => {
    withPrefix = await startTestSeald({ database, envProviderPrefix: "APP_" }, { providerEnv });
    withoutPrefix = await startTestSeald({ database }, { providerEnv });
    mongo = await MongoClient.connect(mongoUri());
    const access = client(AccessService, withPrefix.url, adminToken);
    await access.createPrincipal({
      principal: { name: "app", kind: PrincipalKind.SERVICE_ACCOUNT },
    });
    for (const namespace of ["ops", "team-b"]) {
      await access.grantRole({ binding: { principal: "app", role: "decrypter", namespace } });
    }
    token = (await access.createToken({ principal: "app" })).secret;
    await client(SecretsService, withPrefix.url, adminToken).createSecret({
      secret: {
        namespace: "ops",
        name: "db",
        keeper: "env",
        ref: "APP_OPS__DB_PASSWORD",
        decrypters: ["app"],
      },
    });
    // Written through the server without a prefix, which holds no write to a scope, so that the
    // prefixed server's own refusal at decrypt time is what is tested.
    for (const [name, ref] of [
      ["master", "SEALD_MASTER_KEYS"],
      ["unset", "APP_OPS__NOT_SET"],
      ["other", "OTHER"],
    ] as const) {
      await client(SecretsService, withoutPrefix.url, adminToken).createSecret({
        secret: { namespace: "ops", name, keeper: "env", ref, decrypters: ["app"] },
      });
    }
  });
  afterAll(async () => {
    await mongo?.close();
    await withPrefix?.close();
    await withoutPrefix?.close();
  });

  it("resolves only variables under the configured prefix", async () => {
    const res = await client(SecretsService, withPrefix.url, token).decryptSecrets({
      namespace: "ops",
      names: ["db", "master", "unset", "other"],
    });
    expect(res.results.db?.result).toEqual({ case: "value", value: "from-the-environment" });
    for (const name of ["master", "unset", "other"]) {
      expect(res.results[name]?.result, name).toEqual({
        case: "error",
        value: "decryption failed",
      });
    }
  });

  it("resolves nothing when no prefix is configured", async () => {
    const res = await client(SecretsService, withoutPrefix.url, token).decryptSecrets({
      namespace: "ops",
      names: ["db"],
    });
    expect(res.results.db?.result).toEqual({ case: "error", value: "decryption failed" });
  });

  it("requires a ref and refuses a value for an external keeper", async () => {
    const admin = client(SecretsService, withPrefix.url, adminToken);
    await expect(
      admin.createSecret({ secret: { namespace: "ops", name: "noref", keeper: "env" } }),
    ).rejects.toThrow(/secret\.ref: is required for keeper "env"/);
  });

  it("scopes each namespace to its own variables, and no scope holds another", () => {
    expect(envScope("APP_", "team-a")).toBe("APP_TEAM_A__");
    expect(envScope("APP_", "ops")).toBe("APP_OPS__");
    expect(envScope("APP_", "a.b--c:d")).toBe("APP_A_B_C_D__");
    // "ops" must not reach "ops-x"'s variables, though "ops" is a prefix of "ops-x".
    expect("APP_OPS_X__DB".startsWith(envScope("APP_", "ops"))).toBe(false);
  });

  it("refuses at write time a variable of another namespace, and stores nothing", async () => {
    const admin = client(SecretsService, withPrefix.url, adminToken);
    for (const ref of ["APP_OPS__DB_PASSWORD", "APP_TEAM_A__TOKEN", "APP_DB_PASSWORD"]) {
      await expect(
        admin.createSecret({
          secret: { namespace: "team-b", name: "stolen", keeper: "env", ref, decrypters: ["app"] },
        }),
        ref,
      ).rejects.toThrow(
        /secret\.ref: the env provider resolves only variables starting with "APP_TEAM_B__"/,
      );
    }
    // "ops" is a prefix of "ops-x", but its scope is not.
    await expect(
      admin.createSecret({
        secret: { namespace: "ops", name: "ox", keeper: "env", ref: "APP_OPS_X__DB" },
      }),
    ).rejects.toThrow(/starting with "APP_OPS__"/);
    // Moving an existing reference out of its namespace is refused the same way.
    await expect(
      admin.updateSecret({
        secret: {
          namespace: "ops",
          name: "db",
          keeper: "env",
          ref: "APP_TEAM_A__TOKEN",
          decrypters: ["app"],
        },
      }),
    ).rejects.toThrow(/starting with "APP_OPS__"/);
    const listed = await admin.listSecrets({ namespace: "team-b" });
    expect(listed.secrets).toEqual([]);
    const db = await admin.getSecret({ namespace: "ops", name: "db" });
    expect(db.secret?.ref).toBe("APP_OPS__DB_PASSWORD");
  });

  it("does not resolve a reference edited in the database to point into another namespace", async () => {
    const admin = client(SecretsService, withPrefix.url, adminToken);
    await admin.createSecret({
      secret: {
        namespace: "team-b",
        name: "own",
        keeper: "env",
        ref: "APP_TEAM_B__X",
        decrypters: ["app"],
      },
    });
    await mongo
      .db(database)
      .collection("secrets")
      .updateOne({ namespace: "team-b", name: "own" }, { $set: { ref: "APP_OPS__DB_PASSWORD" } });
    const res = await client(SecretsService, withPrefix.url, token).decryptSecrets({
      namespace: "team-b",
      names: ["own"],
    });
    // The edit breaks the head's integrity MAC (it covers the ref) and the ref leaves the scope;
    // either refuses it. app may not read team-b, so it is not told why.
    expect(res.results.own?.result).toEqual({ case: "error", value: "not authorized" });
  });
});
