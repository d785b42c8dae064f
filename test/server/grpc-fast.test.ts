/**
 * The lean unary gRPC path (src/server/grpc-fast.ts) against connect's gRPC handler on the same
 * server: a request whose path carries a query string is declined by the lean path and served by
 * connect, so the same call can be answered both ways and the answers compared.
 */
import * as http2 from "node:http2";
import { Writable } from "node:stream";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createServiceImplSpec,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { GetSecretRequestSchema, SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { type Seald, startSeald } from "../../src/app.js";
import { defaultEdgeLimits } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { contextValuesOf } from "../../src/server/context.js";
import { createGrpcFastPath } from "../../src/server/grpc-fast.js";
import { maxRequestBytes } from "../../src/server/http.js";
import { type Listener, listen } from "../../src/server/listener.js";
import { client } from "../harness/clients.js";
import { bearer, grpc, grpcClient, unary } from "../harness/grpc.js";
import { grpcFrame as frame, rawGrpc as raw } from "../harness/raw-grpc.js";
import { adminToken, eventually, testConfig } from "../harness/seald.js";

/** Headers without those that differ between any two answers. */
function comparable(h: http2.IncomingHttpHeaders): Record<string, unknown> {
  const { date, "x-request-id": _id, ...rest } = h;
  expect(date).toBeTruthy();
  return rest;
}

describe("the lean unary gRPC path", () => {
  let seald: Seald;
  const lines: Record<string, unknown>[] = [];
  const health = "/grpc.health.v1.Health/Check";
  const getSecret = "/secrets.v1.SecretsService/GetSecret";
  // A GetSecret request for the secret the tests create, framed for the wire.
  const big = frame(
    toBinary(
      GetSecretRequestSchema,
      create(GetSecretRequestSchema, { namespace: "fast", name: "big" }),
    ),
  );
  const auth = { authorization: `Bearer ${adminToken}` };

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString("utf8").split("\n")) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    seald = await startSeald(testConfig({ authMaxFailures: 3 }), createLogger("debug", sink));
    await seald.databaseStarted;
    // Labels big enough that the response is compressed for a client that accepts gzip.
    const labels: Record<string, string> = {};
    for (let i = 0; i < 40; i++) labels[`label-${i}`] = `value-${i}-${"x".repeat(20)}`;
    await client(SecretsService, seald.url, adminToken).createSecret({
      secret: {
        namespace: "fast",
        name: "big",
        labels,
        value: { kind: { case: "plaintext", value: "v" } },
      },
    });
  });
  afterAll(async () => {
    await seald?.close();
  });

  /** The same call through the lean path and through connect (declined: query string). */
  async function both(path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}) {
    const fast = await raw(seald.url, path, body, headers);
    const viaConnect = await raw(seald.url, `${path}?via=connect`, body, headers);
    return { fast, viaConnect };
  }

  it("answers with the same headers, message bytes and trailers as connect's gRPC handler", async () => {
    const healthy = frame(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)));
    const unknown = frame(
      toBinary(
        HealthCheckRequestSchema,
        create(HealthCheckRequestSchema, { service: "no such/ü" }),
      ),
    );
    const cases: [string, string, Buffer, http2.OutgoingHttpHeaders][] = [
      ["ok", health, healthy, {}],
      [
        "ok, grpc-js's accept-encoding",
        health,
        healthy,
        { "grpc-accept-encoding": "identity,deflate,gzip" },
      ],
      ["NotFound with a message to percent-encode", health, unknown, {}],
      ["Unauthenticated", getSecret, big, {}],
      ["compressed response", getSecret, big, { ...auth, "grpc-accept-encoding": "gzip" }],
      ["uncompressed response", getSecret, big, auth],
      ["application/grpc+proto", health, healthy, { "content-type": "application/grpc+proto" }],
    ];
    for (const [name, path, body, headers] of cases) {
      const { fast, viaConnect } = await both(path, body, headers);
      expect(comparable(fast.headers), name).toEqual(comparable(viaConnect.headers));
      expect(fast.data.toString("hex"), name).toBe(viaConnect.data.toString("hex"));
      expect(fast.trailers, name).toEqual(viaConnect.trailers);
      expect(fast.trailers["grpc-status"], name).toBeDefined();
    }
    const { fast } = await both(getSecret, big, { ...auth, "grpc-accept-encoding": "gzip" });
    expect(fast.headers["grpc-encoding"]).toBe("gzip");
    expect(fast.data[0]).toBe(1);
    const notFound = await raw(seald.url, health, unknown);
    expect(notFound.trailers).toMatchObject({
      "grpc-status": "5",
      "grpc-message": encodeURIComponent('unknown service "no such/ü"'),
    });
  });

  it("answers a message that does not decode with InvalidArgument, as seald's connect path does", async () => {
    // Field 1, length-delimited, promises 5 bytes and carries 1.
    const bad = frame(Buffer.from([0x0a, 0x05, 0x01]));
    const { fast, viaConnect } = await both(health, bad);
    expect(fast.trailers["grpc-status"]).toBe("3");
    expect(decodeURIComponent(String(fast.trailers["grpc-message"]))).toMatch(/^parse binary: /);
    // connect itself says Internal; src/server/decode-errors.ts mends its answer.
    expect(viaConnect.trailers["grpc-status"]).toBe("3");
    expect(viaConnect.trailers["grpc-message"]).toBe(fast.trailers["grpc-message"]);
  });

  it("answers truncated, extra, compressed and missing messages with a status", async () => {
    const msg = Buffer.from(
      toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "x" })),
    );
    const status = async (body: Buffer) =>
      (await raw(seald.url, health, body)).trailers["grpc-status"];
    expect(await status(frame(msg, msg.length + 10))).toBe("3");
    expect(await status(Buffer.from([0, 0, 0]))).toBe("3");
    expect(await status(Buffer.concat([frame(msg), frame(msg)]))).toBe("3");
    // The compressed flag without grpc-encoding: INTERNAL, as the gRPC compression spec says.
    expect(await status(frame(msg, msg.length, 1))).toBe("13");
    expect(await status(Buffer.alloc(0))).toBe("12");
  });

  it("refuses a declared length over the limit at once, without waiting for the bytes", async () => {
    // The rest of the message never comes, so any status at all shows the server did not wait
    // for it; no clock is read, so a loaded machine cannot fail this. Only the request timeout
    // (60 s) could end such a wait, and it resets the stream with CANCEL and no status.
    const session = http2.connect(seald.url);
    try {
      const answer = await new Promise<{ status: unknown; rstCode: number | undefined }>(
        (resolve, reject) => {
          const req = session.request({
            ":method": "POST",
            ":path": getSecret,
            "content-type": "application/grpc",
            te: "trailers",
            ...auth,
          });
          let status: unknown;
          req.on("trailers", (t) => {
            status = t["grpc-status"];
          });
          req.on("error", () => {});
          req.on("close", () => resolve({ status, rstCode: req.rstCode }));
          req.resume();
          // The prefix and a little of the message; the rest never comes.
          req.write(frame(Buffer.alloc(100), maxRequestBytes + 1));
          // A generous bound, well short of the request timeout.
          setTimeout(() => reject(new Error("no answer within 20 s")), 20_000).unref();
        },
      );
      expect(answer.status).toBe("8");
      // The server ends the stream itself although the client never stops sending: the lean
      // path's reset after its grace period (NO_ERROR), not the request timeout's (CANCEL).
      expect(answer.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    } finally {
      session.close();
    }
  });

  it("answers DeadlineExceeded when grpc-timeout passes before the implementation answers", async () => {
    const res = await raw(seald.url, getSecret, big, { ...auth, "grpc-timeout": "0m" });
    expect(res.trailers["grpc-status"]).toBe("4");
    const bad = await raw(seald.url, getSecret, big, { ...auth, "grpc-timeout": "soon" });
    expect(bad.trailers["grpc-status"]).toBe("3");
    // A grpc-js client with a deadline that leaves time still succeeds.
    const c = grpcClient(SecretsService, seald.address);
    try {
      const got = await unary<{ secret?: { name: string } }>(
        c,
        "getSecret",
        { namespace: "fast", name: "big" },
        bearer(adminToken),
      );
      expect(got.secret?.name).toBe("big");
    } finally {
      c.close();
    }
  });

  it("authenticates through the interceptors: missing and wrong credentials are Unauthenticated", async () => {
    const c = grpcClient(SecretsService, seald.address);
    try {
      await expect(unary(c, "getSecret", { namespace: "fast", name: "big" })).rejects.toMatchObject(
        {
          code: grpc.status.UNAUTHENTICATED,
        },
      );
      const md = new grpc.Metadata();
      md.set("authorization", "Bearer nonsense");
      await expect(
        unary(c, "getSecret", { namespace: "fast", name: "big" }, md),
      ).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      c.close();
    }
  });

  it("echoes x-request-id and writes the request log line and metric", async () => {
    const res = await raw(seald.url, getSecret, big, { ...auth, "x-request-id": "fast-trace-1" });
    expect(res.headers["x-request-id"]).toBe("fast-trace-1");
    expect(res.trailers["grpc-status"]).toBe("0");
    // The line is written when the stream closes, which may come after the client has the answer.
    await eventually(() => lines.some((l) => l.requestId === "fast-trace-1"));
    const line = lines.find((l) => l.requestId === "fast-trace-1");
    expect(line).toMatchObject({
      msg: "request",
      principal: "admin",
      protocol: "grpc",
      method: "POST",
      route: getSecret,
      status: 200,
      outcome: "ok",
    });
    expect(typeof line?.durationMs).toBe("number");
    const generated = await raw(seald.url, health, frame(Buffer.alloc(0)));
    expect(generated.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const metrics = await (await fetch(`${seald.url}/metrics`)).text();
    expect(metrics).toMatch(
      /seald_requests_total\{protocol="grpc",route="\/secrets\.v1\.SecretsService\/GetSecret",outcome="ok"\} \d+/,
    );
    expect(metrics).toMatch(
      /seald_requests_total\{protocol="grpc",route="\/grpc\.health\.v1\.Health\/Check",outcome="InvalidArgument"\} \d+/,
    );
  });

  it("leaves streaming methods, gRPC-Web and compressed requests to connect", async () => {
    const msg = Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)));
    // A compressed request is declined; connect decompresses it.
    const { gzipSync } = await import("node:zlib");
    const gz = await raw(seald.url, health, frame(gzipSync(msg), gzipSync(msg).length, 1), {
      "grpc-encoding": "gzip",
    });
    expect(gz.trailers["grpc-status"]).toBe("0");
    const web = await raw(seald.url, health, frame(msg), {
      "content-type": "application/grpc-web+proto",
    });
    expect(web.headers[":status"]).toBe(200);
    expect(web.headers["content-type"]).toBe("application/grpc-web+proto");
  });

  it("sends error metadata in the trailers as connect does (retry-after when refused)", async () => {
    const body = frame(
      toBinary(
        GetSecretRequestSchema,
        create(GetSecretRequestSchema, { namespace: "a", name: "b" }),
      ),
    );
    const wrong = { authorization: `Bearer seald_${"w".repeat(43)}` };
    // Wrong credentials until the address is refused (this test runs last: it stays refused).
    for (let i = 0; i < 10; i++) {
      const status = (await raw(seald.url, getSecret, body, wrong)).trailers["grpc-status"];
      if (status === "8") break;
      expect(status).toBe("16");
    }
    const { fast, viaConnect } = await both(getSecret, body, wrong);
    expect(fast.trailers["grpc-status"]).toBe("8");
    expect(fast.trailers["retry-after"]).toMatch(/^\d+$/);
    expect(fast.trailers).toEqual(viaConnect.trailers);
  });
});

describe("the lean path and connect on an implementation that uses its whole context", () => {
  // Reads the request headers and the signal, sets response headers and trailers, throws with
  // metadata; behind an interceptor that copies the request, as interceptors may.
  const impl: ServiceImpl<typeof Health> = {
    async check(req, ctx) {
      ctx.responseHeader.set("x-impl", ctx.requestHeader.get("x-client") ?? "none");
      ctx.responseTrailer.set("x-aborted", String(ctx.signal.aborted));
      ctx.responseTrailer.set("x-deadline", String(ctx.timeoutMs() !== undefined));
      if (req.service === "fail") {
        throw new ConnectError("failed: 100%", Code.FailedPrecondition, { "x-meta": "m" });
      }
      return { status: HealthCheckResponse_ServingStatus.SERVING };
    },
    async *watch() {},
  };
  const copying: Interceptor = (next) => (req) => next({ ...req });
  const acceptCompression = [compressionGzip, compressionBrotli];
  const shutdown = new AbortController();
  let listener: Listener;
  let url: string;

  beforeAll(async () => {
    const connect = connectNodeAdapter({
      routes: (router) => router.service(Health, impl),
      interceptors: [copying],
      acceptCompression,
    });
    listener = await listen({
      host: "127.0.0.1",
      port: 0,
      limits: defaultEdgeLimits(),
      handler: (req, res) => {
        res.setHeader("x-request-id", "fixed");
        connect(req, res);
      },
      stream: createGrpcFastPath({
        services: [createServiceImplSpec<typeof Health>(Health, impl)],
        interceptors: [copying],
        readMaxBytes: 1024,
        acceptCompression,
        shutdownSignal: shutdown.signal,
        newRequest: (_headers, remoteAddress) => ({
          requestId: "fixed",
          remoteAddress,
          principal: undefined,
          outcome: undefined,
        }),
        contextValues: contextValuesOf,
        finished: () => {},
      }),
    });
    url = `http://127.0.0.1:${listener.address.port}`;
  });
  afterAll(async () => {
    await listener?.close(100);
  });

  it("answers both ways alike", async () => {
    const path = "/grpc.health.v1.Health/Check";
    for (const [service, headers] of [
      ["", { "x-client": "c1" }],
      ["", { "grpc-timeout": "5S" }],
      ["fail", { "x-client": "c2", "grpc-accept-encoding": "gzip" }],
    ] as const) {
      const body = frame(
        toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service })),
      );
      const fast = await raw(url, path, body, headers);
      const viaConnect = await raw(url, `${path}?via=connect`, body, headers);
      expect(fast.headers, service).toEqual(
        expect.objectContaining({ "x-impl": headers["x-client" as never] ?? "none" }),
      );
      expect(comparable(fast.headers), service).toEqual(comparable(viaConnect.headers));
      expect(fast.data.toString("hex"), service).toBe(viaConnect.data.toString("hex"));
      expect(fast.trailers, service).toEqual(viaConnect.trailers);
    }
  });
});
