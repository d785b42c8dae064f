import * as http2 from "node:http2";
import * as https from "node:https";
import type { TLSSocket } from "node:tls";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { Seald } from "../../src/app.js";
import { startTestSeald } from "../harness/seald.js";

describe("TLS with ALPN h2 and http/1.1 on the one port", () => {
  let seald: Seald;
  let ca: string;
  beforeAll(async () => {
    const pems = await generate([{ name: "commonName", value: "localhost" }], {
      keySize: 2048,
      extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
    });
    ca = pems.cert;
    seald = await startTestSeald({
      tls: { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) },
    });
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("serves https URLs", () => {
    expect(seald.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("negotiates h2 and answers over it", async () => {
    const session = http2.connect(seald.url, { ca });
    try {
      const { status, alpn } = await new Promise<{ status: number; alpn: string | false }>(
        (resolve, reject) => {
          const req = session.request({ ":path": "/healthz" });
          req.on("response", (h) =>
            resolve({
              status: Number(h[":status"]),
              alpn: (session.socket as TLSSocket).alpnProtocol ?? false,
            }),
          );
          req.on("error", reject);
          req.end();
        },
      );
      expect(alpn).toBe("h2");
      expect(status).toBe(200);
    } finally {
      session.close();
    }
  });

  it("negotiates http/1.1 for a client that offers only that", async () => {
    const { status, alpn } = await new Promise<{ status: number; alpn: string | false }>(
      (resolve, reject) => {
        const options: https.RequestOptions & { ALPNProtocols: string[] } = {
          ca,
          ALPNProtocols: ["http/1.1"],
        };
        const req = https.get(`${seald.url}/readyz`, options, (res) => {
          res.resume();
          resolve({
            status: res.statusCode ?? 0,
            alpn: (res.socket as TLSSocket).alpnProtocol ?? false,
          });
        });
        req.on("error", reject);
      },
    );
    expect(alpn).toBe("http/1.1");
    expect(status).toBe(200);
  });

  it("serves gRPC over h2 and Connect over http/1.1", async () => {
    const grpcHealth = createClient(
      Health,
      createGrpcTransport({ baseUrl: seald.url, nodeOptions: { ca } }),
    );
    expect((await grpcHealth.check({})).status).toBe(Status.SERVING);
    const connectHealth = createClient(
      Health,
      createConnectTransport({ baseUrl: seald.url, httpVersion: "1.1", nodeOptions: { ca } }),
    );
    expect((await connectHealth.check({})).status).toBe(Status.SERVING);
  });
});
