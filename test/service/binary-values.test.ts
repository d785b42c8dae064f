/**
 * Values are bytes (issue #18, item 1): a binary value written in the bytes form comes back byte
 * for byte over gRPC and the Connect protocol's JSON (base64), a decrypt that mixes text and
 * binary values answers every name in the form the caller asked for, and a binary value asked for
 * as text fails only its own name, audited as a failure with the reason.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { AuditService } from "../../gen/secrets/v1/audit_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { client, type Protocol } from "../harness/clients.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";

/** Random bytes with a NUL and 0xFF 0xFE in them, so they are never valid UTF-8. */
function binaryValue(): Uint8Array {
  const bytes = randomBytes(96);
  bytes[0] = 0xff;
  bytes[1] = 0xfe;
  bytes[40] = 0x00;
  return new Uint8Array(bytes);
}

describe("binary secret values", () => {
  let seald: Seald;
  const tokens: Record<string, string> = {};
  const as = (who: string, protocol: Protocol = "grpc") =>
    client(SecretsService, seald.url, tokens[who] ?? "", protocol);

  beforeAll(async () => {
    seald = await startTestSeald({ database: uniqueDatabase("binary") });
    const admin = client(AccessService, seald.url, adminToken);
    for (const [name, kind, role] of [
      ["ed", PrincipalKind.USER, "editor"],
      ["billing", PrincipalKind.SERVICE_ACCOUNT, "decrypter"],
    ] as const) {
      await admin.createPrincipal({ principal: { name, kind } });
      await admin.grantRole({ binding: { principal: name, role, namespace: "team-a" } });
      tokens[name] = (await admin.createToken({ principal: name })).secret;
    }
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("stores a value sent as bytes over gRPC and returns it byte for byte over gRPC and Connect JSON", async () => {
    const value = binaryValue();
    await as("ed").createSecret({
      secret: {
        namespace: "team-a",
        name: "der-key",
        decrypters: ["billing"],
        value: { kind: { case: "plaintextBytes", value: Uint8Array.from(value) } },
      },
    });
    for (const protocol of ["grpc", "connect-json"] as const) {
      const res = await as("billing", protocol).decryptSecrets({
        namespace: "team-a",
        names: ["der-key"],
        asBytes: true,
      });
      const result = res.results["der-key"]?.result;
      expect(result?.case, protocol).toBe("valueBytes");
      expect(Buffer.from(result?.value as Uint8Array).equals(Buffer.from(value)), protocol).toBe(
        true,
      );
      expect(res.results["der-key"]?.version).toBe(1n);
    }

    // On the Connect protocol's JSON wire, the bytes form is base64 under "valueBytes".
    const raw = await fetch(`${seald.url}/secrets.v1.SecretsService/DecryptSecrets`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${tokens.billing}` },
      body: JSON.stringify({ namespace: "team-a", names: ["der-key"], asBytes: true }),
    });
    expect(raw.status).toBe(200);
    expect(await raw.json()).toEqual({
      results: {
        "der-key": { valueBytes: Buffer.from(value).toString("base64"), version: "1" },
      },
    });
  });

  it("stores a value sent as base64 plaintextBytes in Connect JSON", async () => {
    const value = binaryValue();
    const res = await fetch(`${seald.url}/secrets.v1.SecretsService/CreateSecret`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${tokens.ed}` },
      body: JSON.stringify({
        secret: {
          namespace: "team-a",
          name: "keystore",
          decrypters: ["billing"],
          value: { plaintextBytes: Buffer.from(value).toString("base64") },
        },
      }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const got = await as("billing").decryptSecrets({
      namespace: "team-a",
      names: ["keystore"],
      asBytes: true,
    });
    expect(got.results.keystore?.result).toEqual({ case: "valueBytes", value });
  });

  it("answers every name of a decrypt that mixes text and binary values, in the form asked for", async () => {
    const binary = binaryValue();
    const text = `grüße ✓ 😀 ${Math.random()}`;
    const ed = as("ed");
    await ed.createSecret({
      secret: {
        namespace: "team-a",
        name: "mixed-bin",
        decrypters: ["billing"],
        value: { kind: { case: "plaintextBytes", value: Uint8Array.from(binary) } },
      },
    });
    await ed.createSecret({
      secret: {
        namespace: "team-a",
        name: "mixed-text",
        decrypters: ["billing"],
        value: { kind: { case: "plaintext", value: text } },
      },
    });
    // Not one of billing's: an error for its own name, whatever the other names hold.
    await ed.createSecret({
      secret: {
        namespace: "team-a",
        name: "mixed-other",
        value: { kind: { case: "plaintext", value: `other-${Math.random()}` } },
      },
    });
    const names = ["mixed-text", "mixed-bin", "mixed-other"];

    // As bytes: every value, text included, byte for byte.
    const bytes = await as("billing").decryptSecrets({ namespace: "team-a", names, asBytes: true });
    expect(bytes.results["mixed-text"]?.result).toEqual({
      case: "valueBytes",
      value: new TextEncoder().encode(text),
    });
    expect(bytes.results["mixed-bin"]?.result).toEqual({ case: "valueBytes", value: binary });
    expect(bytes.results["mixed-other"]?.result).toEqual({
      case: "error",
      value: "not authorized",
    });

    // As text (the default, what clients built before the bytes form get): the text value, and
    // the binary one refused for its own name instead of failing the call or being rewritten.
    for (const protocol of ["grpc", "connect-json"] as const) {
      const asText = await as("billing", protocol).decryptSecrets({ namespace: "team-a", names });
      expect(asText.results["mixed-text"]?.result, protocol).toEqual({
        case: "value",
        value: text,
      });
      expect(asText.results["mixed-bin"]?.result, protocol).toEqual({
        case: "error",
        value: "not text",
      });
      expect(asText.results["mixed-bin"]?.version).toBe(0n);
      expect(asText.results["mixed-other"]?.result, protocol).toEqual({
        case: "error",
        value: "not authorized",
      });
    }

    // The audit trail says the text caller did not get the binary value, and why.
    const audited = await client(AuditService, seald.url, adminToken).listAuditEvents({
      principal: "billing",
      action: "secret.securevalues:decrypt",
      pageSize: 1000,
    });
    const bin = audited.events.filter((e) => e.name === "mixed-bin");
    expect(bin.map((e) => e.outcome).sort()).toEqual(["failed", "failed", "success"]);
    const refused = bin.filter((e) => e.outcome === "failed");
    for (const e of refused)
      expect(e.reason).toBe("the value is not valid UTF-8 and was asked for as text");
    const textEvents = audited.events.filter((e) => e.name === "mixed-text");
    expect(textEvents.map((e) => e.outcome)).toEqual(["success", "success", "success"]);
  });

  it("keeps a text value written as text byte-identical when read as bytes or as text", async () => {
    // NUL and a U+FFFD that was really sent are text, and must survive both ways.
    const text = `a\u0000b\uFFFDc-${Math.random()}`;
    await as("ed").createSecret({
      secret: {
        namespace: "team-a",
        name: "odd-text",
        decrypters: ["billing"],
        value: { kind: { case: "plaintext", value: text } },
      },
    });
    const got = await as("billing", "connect-json").decryptSecrets({
      namespace: "team-a",
      names: ["odd-text"],
    });
    expect(got.results["odd-text"]?.result).toEqual({ case: "value", value: text });
  });
});
