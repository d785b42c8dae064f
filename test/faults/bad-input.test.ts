import { randomBytes } from "node:crypto";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { maxRequestBytes } from "../../src/server/http.js";
import { client } from "../harness/clients.js";
import { grpcFrame as frame, rawGrpc } from "../harness/raw-grpc.js";
import { adminToken, mongoUri, startTestSeald, uniqueDatabase } from "../harness/seald.js";

describe("bad input on the RPC endpoints", () => {
  const database = uniqueDatabase("badinput");
  let seald: Seald;
  let mongo: MongoClient;
  const path = "/secrets.v1.SecretsService/CreateSecret";
  beforeAll(async () => {
    seald = await startTestSeald({ database });
    mongo = await MongoClient.connect(mongoUri());
  });
  afterAll(async () => {
    await mongo?.close();
    await seald?.close();
  });

  const stored = () => mongo.db(database).collection("secrets").countDocuments();

  // Over gRPC (the lean path in src/server/grpc-fast.ts) a request message that does not decode
  // is the client's error: InvalidArgument, as are random bytes that decode but fail validation.
  const decodeFailure = ["3"];
  const grpcStatus = async (body: Buffer) => {
    const res = await rawGrpc(seald.url, path, body, { authorization: `Bearer ${adminToken}` });
    return String(res.trailers["grpc-status"] ?? res.headers["grpc-status"]);
  };

  it("answers random bytes and truncated frames over gRPC with an error status, and stays up", async () => {
    for (let i = 0; i < 20; i++) {
      const status = await grpcStatus(frame(randomBytes(1 + ((i * 37) % 300))));
      // Random bytes that happen to decode still fail validation (no name): InvalidArgument.
      expect(decodeFailure, `attempt ${i}`).toContain(status);
    }
    expect(decodeFailure).toContain(await grpcStatus(frame(randomBytes(10), 100)));
    expect(decodeFailure).toContain(await grpcStatus(Buffer.from([0, 0, 0])));
    expect(await stored()).toBe(0);
    expect((await fetch(`${seald.url}/healthz`)).status).toBe(200);
  });

  it("answers random bytes on the Connect binary protocol with invalid_argument, storing nothing", async () => {
    const send = (body: Buffer) =>
      fetch(`${seald.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/proto", authorization: `Bearer ${adminToken}` },
        body,
      });
    // A field tag with wire type 7 never decodes.
    const undecodable = await send(Buffer.from([0x0f, 0x01, 0x02]));
    expect(undecodable.status).toBe(400);
    expect(await undecodable.json()).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/^parse binary: /),
    });
    for (let i = 0; i < 10; i++) {
      const res = await send(randomBytes(1 + i * 53));
      // Random bytes that happen to decode still fail validation: invalid_argument as well.
      expect(res.status, `attempt ${i}`).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    }
    expect(await stored()).toBe(0);
    expect((await fetch(`${seald.url}/healthz`)).status).toBe(200);
  });

  it("refuses an oversized Connect body with resource_exhausted", async () => {
    const res = await fetch(`${seald.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({
        secret: {
          namespace: "x",
          name: "big",
          value: { plaintext: "v".repeat(maxRequestBytes + 10) },
        },
      }),
    });
    expect(((await res.json()) as { code: string }).code).toBe("resource_exhausted");
    expect(await stored()).toBe(0);
  });

  it("refuses operator objects and injection attempts in names, bodies and selectors, storing nothing", async () => {
    const post = (body: unknown) =>
      fetch(`${seald.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
        body: JSON.stringify(body),
      });
    for (const body of [
      { secret: { namespace: "x", name: { $gt: "" }, value: { plaintext: "v" } } },
      { secret: { namespace: { $ne: null }, name: "a", value: { plaintext: "v" } } },
      { secret: { namespace: "x", name: "$where", value: { plaintext: "v" } } },
      { secret: { namespace: "x", name: "a.b$c", value: { plaintext: "v" } } },
      {
        secret: {
          namespace: "x",
          name: "a",
          decrypters: [{ $in: ["a"] }],
          value: { plaintext: "v" },
        },
      },
      { secret: { namespace: "x", name: "a", value: { plaintext: { $gt: "" } } } },
    ]) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    }
    expect(await stored()).toBe(0);

    // Selectors are data, never query operators.
    const rpc = client(SecretsService, seald.url, adminToken);
    await rpc.createSecret({
      secret: {
        namespace: "x",
        name: "real",
        labels: { app: "web" },
        value: { kind: { case: "plaintext", value: "v" } },
      },
    });
    for (const selector of ["app=$ne", "$where=1", "app in ($gt,web2)"]) {
      expect(
        (await rpc.listSecrets({ namespace: "x", labelSelector: selector })).secrets,
        selector,
      ).toEqual([]);
    }
    for (const selector of ["name=$ne", "name!=real,name=$gt"]) {
      expect(
        (await rpc.listSecrets({ namespace: "x", fieldSelector: selector })).secrets,
        selector,
      ).toEqual([]);
    }
    expect(
      (await rpc.listSecrets({ namespace: "x", labelSelector: "app=web" })).secrets.map(
        (s) => s.name,
      ),
    ).toEqual(["real"]);
  });
});
