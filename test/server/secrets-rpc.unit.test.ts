/**
 * The RPC layer without a server or database: SecretsService through connect's
 * createRouterTransport, with the real interceptors (outcomes, error mapping, authentication) and
 * the real service implementations over the use cases on in-memory stores. What a Connect client
 * sees: codes, messages naming request fields, and results. The same over real sockets, gRPC and
 * FerretDB is in test/service/secrets.test.ts.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { beforeEach, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { decodeStandardBase64 } from "../../src/crypto/base64.js";
import { sealForPublicKey } from "../../src/crypto/sealed-box.js";
import { type MemorySeald, memorySeald, unitAdminToken } from "../harness/memory-seald.js";
import { type InMemoryRpc, inMemoryRpc } from "../harness/router-transport.js";

async function errorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

const plaintext = (value: string) => ({ kind: { case: "plaintext" as const, value } });

describe("SecretsService through the in-memory router", () => {
  let seald: MemorySeald;
  let rpc: InMemoryRpc;
  const tokens: Record<string, string> = {};
  const as = (who: string) => rpc.client(SecretsService, tokens[who]);

  beforeEach(async () => {
    seald = await memorySeald({ limits: { maxValueBytes: 64 } });
    rpc = inMemoryRpc(seald);
    const admin = rpc.client(AccessService, unitAdminToken);
    const people: [string, PrincipalKind, string][] = [
      ["ed", PrincipalKind.USER, "editor"],
      ["rita", PrincipalKind.USER, "reader"],
      ["billing", PrincipalKind.SERVICE_ACCOUNT, "decrypter"],
    ];
    for (const [name, kind, role] of people) {
      await admin.createPrincipal({ principal: { name, kind } });
      await admin.grantRole({ binding: { principal: name, role, namespace: "team-a" } });
      tokens[name] = (await admin.createToken({ principal: name })).secret;
    }
  });

  const create = (name: string, value = "s3cret") =>
    as("ed").createSecret({
      secret: { namespace: "team-a", name, decrypters: ["billing"], value: plaintext(value) },
    });

  it("refuses a call without credentials as Unauthenticated, audits it, and notes the outcome", async () => {
    const err = await errorOf(as("nobody").getSecret({ namespace: "team-a", name: "db" }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toBe("missing or unsupported credentials");
    expect(seald.auditRecords().at(-1)).toMatchObject({
      principal: "",
      action: "rpc:secrets.v1.SecretsService/GetSecret",
      outcome: "unauthenticated",
    });
    expect(rpc.requests.at(-1)).toMatchObject({ principal: undefined, outcome: "Unauthenticated" });
  });

  it("refuses a token that does not exist as Unauthenticated", async () => {
    tokens.forged = `seald_${"F".repeat(43)}`;
    const err = await errorOf(as("forged").listSecrets({ namespace: "team-a" }));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toBe("invalid credentials");
  });

  it("answers Health without credentials", async () => {
    const health = rpc.client(Health);
    expect((await health.check({ service: "" })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );
  });

  it("answers InvalidArgument naming every bad field by its path in the request", async () => {
    const err = await errorOf(
      as("ed").createSecret({
        secret: {
          namespace: "team-a",
          name: "no spaces",
          labels: { "a=b": "x" },
          value: plaintext("x".repeat(65)),
        },
      }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    const fields = err.rawMessage.split("; ").map((part) => part.slice(0, part.indexOf(":")));
    expect(fields).toEqual(["secret.name", 'secret.labels["a=b"]', "secret.value"]);
    expect(err.rawMessage).toContain("secret.value: is 65 bytes, more than the limit of 64");
    expect(rpc.requests.at(-1)).toMatchObject({ principal: "ed", outcome: "InvalidArgument" });
  });

  it("names list request fields without the secret. prefix", async () => {
    const token = await errorOf(as("ed").listSecrets({ namespace: "team-a", pageToken: "%%" }));
    expect(token.code).toBe(Code.InvalidArgument);
    expect(token.rawMessage).toBe("page_token: is not a page token this server issued");
    const selector = await errorOf(
      as("ed").listSecrets({ namespace: "team-a", labelSelector: "a in" }),
    );
    expect(selector.code).toBe(Code.InvalidArgument);
    expect(selector.rawMessage).toMatch(/^label_selector: /);
  });

  it("answers NotFound for a secret that does not exist", async () => {
    const err = await errorOf(as("ed").getSecret({ namespace: "team-a", name: "nope" }));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe('secret "nope" not found');
  });

  it("answers PermissionDenied to a reader that writes, and audits the denial", async () => {
    const err = await errorOf(
      as("rita").createSecret({
        secret: { namespace: "team-a", name: "db", value: plaintext("x") },
      }),
    );
    expect(err.code).toBe(Code.PermissionDenied);
    expect(seald.auditRecords().at(-1)).toMatchObject({
      principal: "rita",
      action: "secret.securevalues:create",
      outcome: "denied",
    });
  });

  it("creates, gets, lists and decrypts", async () => {
    const created = (await create("db")).secret;
    expect(created).toMatchObject({
      namespace: "team-a",
      name: "db",
      version: 1n,
      keeper: "system",
      decrypters: ["billing"],
      createdBy: "ed",
    });
    expect(created?.resourceVersion).toMatch(/^[0-9a-f]{16}$/);
    // The value never comes back on a read.
    expect(created?.value).toBeUndefined();

    const got = (await as("rita").getSecret({ namespace: "team-a", name: "db" })).secret;
    expect(got?.uid).toBe(created?.uid);

    await create("db2");
    const listed = await as("rita").listSecrets({ namespace: "team-a", pageSize: 1 });
    expect(listed.secrets.map((s) => s.name)).toEqual(["db"]);
    const rest = await as("rita").listSecrets({
      namespace: "team-a",
      pageToken: listed.nextPageToken,
    });
    expect(rest.secrets.map((s) => s.name)).toEqual(["db2"]);
    expect(rest.nextPageToken).toBe("");

    const decrypted = await as("billing").decryptSecrets({
      namespace: "team-a",
      names: ["db", "missing"],
    });
    expect(decrypted.results.db?.result).toEqual({ case: "value", value: "s3cret" });
    expect(decrypted.results.db?.version).toBe(1n);
    // billing may decrypt but not read: a missing name answers as one it may not decrypt.
    expect(decrypted.results.missing?.result).toEqual({ case: "error", value: "not authorized" });
    expect(rpc.requests.at(-1)).toMatchObject({ principal: "billing", outcome: "ok" });
  });

  it("takes a value sealed for the namespace's public key", async () => {
    const key = await as("ed").getPublicKey({ namespace: "team-a" });
    const publicKey = decodeStandardBase64(key.publicKey);
    if (!publicKey) throw new Error("public key is not base64");
    const box = sealForPublicKey(publicKey, new TextEncoder().encode("sealed on the client"));
    await as("ed").createSecret({
      secret: {
        namespace: "team-a",
        name: "sealed",
        decrypters: ["billing"],
        value: { kind: { case: "sealed", value: { keyId: key.keyId, box } } },
      },
    });
    const decrypted = await as("billing").decryptSecrets({
      namespace: "team-a",
      names: ["sealed"],
    });
    expect(decrypted.results.sealed?.result).toEqual({
      case: "value",
      value: "sealed on the client",
    });
  });

  it("answers Aborted to an update whose expected resource version is stale", async () => {
    const created = (await create("db")).secret;
    await as("ed").updateSecret({
      secret: { namespace: "team-a", name: "db", description: "first" },
      expectedResourceVersion: created?.resourceVersion ?? "",
    });
    const err = await errorOf(
      as("ed").updateSecret({
        secret: { namespace: "team-a", name: "db", description: "second" },
        expectedResourceVersion: created?.resourceVersion ?? "",
      }),
    );
    expect(err.code).toBe(Code.Aborted);
    expect(
      (await as("ed").getSecret({ namespace: "team-a", name: "db" })).secret?.description,
    ).toBe("first");
  });

  it("answers an unexpected failure as a bare Internal error, with nothing of its cause", async () => {
    await create("db");
    seald.stores.secrets.get = async () => {
      throw new Error("driver said: connection string mongodb://u:hunter2@db");
    };
    const err = await errorOf(as("ed").getSecret({ namespace: "team-a", name: "db" }));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("internal error");
    expect(JSON.stringify(err)).not.toContain("hunter2");
    // The cause goes to the log instead, and the request log line says Internal.
    expect(rpc.requests.at(-1)?.outcome).toBe("Internal");
    expect(rpc.logs).toMatchObject([
      {
        level: "error",
        msg: "unexpected error in RPC",
        procedure: "GetSecret",
        service: "secrets.v1.SecretsService",
        err: { message: expect.stringContaining("driver said") },
      },
    ]);
  });
});
