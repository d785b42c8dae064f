import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { bearer, grpc, grpcClient, serverStream, unary } from "../harness/grpc.js";
import { adminToken, startTestSeald } from "../harness/seald.js";

describe("one port for every protocol", () => {
  let seald: Seald;
  beforeAll(async () => {
    seald = await startTestSeald();
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("answers grpc-js Health/Check over cleartext HTTP/2 with SERVING", async () => {
    const client = grpcClient(Health, seald.address);
    try {
      const res = await unary<HealthCheckResponse>(
        client,
        "check",
        create(HealthCheckRequestSchema, { service: "" }),
      );
      expect(res.status).toBe(Status.SERVING);
      const named = await unary<HealthCheckResponse>(client, "check", {
        service: "secrets.v1.SecretsService",
      });
      expect(named.status).toBe(Status.SERVING);
      await expect(unary(client, "check", { service: "no.such.Service" })).rejects.toMatchObject({
        code: grpc.status.NOT_FOUND,
      });
    } finally {
      client.close();
    }
  });

  it("answers a Connect JSON call from fetch over HTTP/1.1 on the same port", async () => {
    const res = await fetch(`${seald.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service: "" }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "SERVING" });
  });

  it("serves Connect binary and gRPC-Web over HTTP/1.1 too", async () => {
    for (const transport of [
      createConnectTransport({ baseUrl: seald.url, httpVersion: "1.1", useBinaryFormat: true }),
      createGrpcWebTransport({ baseUrl: seald.url, httpVersion: "1.1" }),
      createConnectTransport({ baseUrl: seald.url, httpVersion: "2" }),
    ]) {
      const health = createClient(Health, transport);
      expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
    }
  });

  it("answers SecretsService calls over gRPC and Connect with a status, not a transport error", async () => {
    const client = grpcClient(SecretsService, seald.address);
    try {
      await expect(
        unary(client, "getSecret", { namespace: "a", name: "b" }, bearer(adminToken)),
      ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      client.close();
    }
    const connect = createClient(
      SecretsService,
      createConnectTransport({ baseUrl: seald.url, httpVersion: "1.1" }),
    );
    const err = await connect
      .getSecret(
        { namespace: "a", name: "b" },
        { headers: { authorization: `Bearer ${adminToken}` } },
      )
      .catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.NotFound);
  });

  it("answers /healthz and /readyz over HTTP/1.1, and refuses other methods on them", async () => {
    expect((await fetch(`${seald.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${seald.url}/readyz`)).status).toBe(200);
    const post = await fetch(`${seald.url}/readyz`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${seald.url}/no/such/path`)).status).toBe(404);
  });

  it("streams Health/Watch over gRPC", async () => {
    const client = grpcClient(Health, seald.address);
    try {
      const first = await new Promise<HealthCheckResponse>((resolve, reject) => {
        const call = serverStream<HealthCheckResponse>(client, "watch", { service: "" });
        call.once("data", (msg: HealthCheckResponse) => {
          resolve(msg);
          call.cancel();
        });
        call.once("error", (e: grpc.ServiceError) => {
          if (e.code !== grpc.status.CANCELLED) reject(e);
        });
      });
      expect(first.status).toBe(Status.SERVING);
    } finally {
      client.close();
    }
  });
});
