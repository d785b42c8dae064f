import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { client } from "../harness/clients.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";

describe("the env keeper", () => {
  const providerEnv = {
    APP_DB_PASSWORD: "from-the-environment",
    SEALD_MASTER_KEYS: "never-readable",
    OTHER: "x",
  };
  const database = uniqueDatabase("env");
  let withPrefix: Seald;
  let withoutPrefix: Seald;
  let token = "";

  beforeAll(async () => {
    withPrefix = await startTestSeald({ database, envProviderPrefix: "APP_" }, { providerEnv });
    withoutPrefix = await startTestSeald({ database }, { providerEnv });
    const access = client(AccessService, withPrefix.url, adminToken);
    await access.createPrincipal({
      principal: { name: "app", kind: PrincipalKind.SERVICE_ACCOUNT },
    });
    await access.grantRole({ binding: { principal: "app", role: "decrypter", namespace: "ops" } });
    token = (await access.createToken({ principal: "app" })).secret;
    const admin = client(SecretsService, withPrefix.url, adminToken);
    for (const [name, ref] of [
      ["db", "APP_DB_PASSWORD"],
      ["master", "SEALD_MASTER_KEYS"],
      ["unset", "APP_NOT_SET"],
      ["other", "OTHER"],
    ] as const) {
      await admin.createSecret({
        secret: { namespace: "ops", name, keeper: "env", ref, decrypters: ["app"] },
      });
    }
  });
  afterAll(async () => {
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
});
