import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AccessService,
  type CreateTokenResponse,
  type GetPrincipalResponse,
  PrincipalKind,
} from "../../gen/secrets/v1/access_service_pb.js";
import { AuditService } from "../../gen/secrets/v1/audit_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { bearer, grpc, grpcClient, unary } from "../harness/grpc.js";
import {
  adminToken,
  mongoUri,
  startTestSeald,
  testClock,
  uniqueDatabase,
} from "../harness/seald.js";

type Client = ReturnType<typeof grpcClient>;

describe("access control over gRPC", () => {
  const database = uniqueDatabase("access");
  let seald: Seald;
  let access: Client;
  let audit: Client;
  let secrets: Client;
  const tokens: Record<string, string> = {};
  // Both replicas read this clock; tests of expiry and of the cache bound move it.
  const clock = testClock();

  const call = <T>(client: Client, method: string, req: unknown, token = adminToken) =>
    unary<T>(client, method, req, bearer(token));
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error("expected the call to fail");
      },
      (e: grpc.ServiceError) => e,
    );
  const code = async (p: Promise<unknown>) => {
    try {
      await p;
      return grpc.status.OK;
    } catch (err) {
      return (err as grpc.ServiceError).code;
    }
  };

  async function principal(name: string, kind: PrincipalKind, role?: string, namespace = "team-a") {
    await call(access, "createPrincipal", { principal: { name, kind } });
    if (role) await call(access, "grantRole", { binding: { principal: name, role, namespace } });
    const res = await call<CreateTokenResponse>(access, "createToken", {
      principal: name,
      description: "test",
    });
    tokens[name] = res.secret;
  }

  beforeAll(async () => {
    seald = await startTestSeald({ database, authMaxFailures: 5 }, { now: clock.now });
    access = grpcClient(AccessService, seald.address);
    audit = grpcClient(AuditService, seald.address);
    secrets = grpcClient(SecretsService, seald.address);
    await principal("root2", PrincipalKind.USER, "admin", "*");
    await principal("ed", PrincipalKind.USER, "editor");
    await principal("rd", PrincipalKind.USER, "reader");
    await principal("billing", PrincipalKind.SERVICE_ACCOUNT, "decrypter");
    await principal("nobody", PrincipalKind.SERVICE_ACCOUNT);
  });
  afterAll(async () => {
    for (const c of [access, audit, secrets]) c?.close();
    await seald?.close();
  });

  it("issues tokens with a recognisable prefix and 32 random bytes", () => {
    for (const t of Object.values(tokens)) expect(t).toMatch(/^seald_[A-Za-z0-9_-]{43}$/);
    expect(new Set(Object.values(tokens)).size).toBe(Object.keys(tokens).length);
  });

  it("lets only admins (bound in every namespace) call every AccessService and AuditService method", async () => {
    const methods: [Client, string, unknown][] = [
      [access, "createPrincipal", { principal: { name: "x1", kind: PrincipalKind.USER } }],
      [access, "getPrincipal", { name: "ed" }],
      [access, "listPrincipals", {}],
      [access, "createToken", { principal: "ed" }],
      [access, "listTokens", { principal: "ed" }],
      [access, "grantRole", { binding: { principal: "ed", role: "reader", namespace: "team-z" } }],
      [access, "listRoleBindings", {}],
      [access, "revokeRole", { binding: { principal: "ed", role: "reader", namespace: "team-z" } }],
      [access, "deletePrincipal", { name: "x1" }],
      [audit, "listAuditEvents", {}],
      [audit, "verifyAuditLog", {}],
    ];
    for (const who of ["ed", "rd", "billing", "nobody"]) {
      for (const [client, method, req] of methods) {
        expect(await code(call(client, method, req, tokens[who])), `${who} ${method}`).toBe(
          grpc.status.PERMISSION_DENIED,
        );
      }
    }
    for (const [client, method, req] of methods) {
      expect(await code(call(client, method, req, tokens.root2)), `admin ${method}`).toBe(
        grpc.status.OK,
      );
    }
  });

  it("returns a token once: listing shows metadata only", async () => {
    const listed = await call<{ tokens: { id: string; principal: string }[] }>(
      access,
      "listTokens",
      { principal: "ed" },
    );
    expect(listed.tokens.length).toBeGreaterThan(0);
    const text = JSON.stringify(listed, (_k, v) => (typeof v === "bigint" ? String(v) : v));
    expect(text).not.toContain(tokens.ed);
    expect(text).not.toContain("seald_");
  });

  it("stores no token, nor its base64 or hex form, in the tokens collection", async () => {
    const client = await MongoClient.connect(mongoUri());
    try {
      const raw = JSON.stringify(await client.db(database).collection("tokens").find().toArray());
      for (const t of [...Object.values(tokens), adminToken]) {
        const secret = t.slice("seald_".length);
        for (const form of [
          t,
          secret,
          Buffer.from(t).toString("base64"),
          Buffer.from(t).toString("hex"),
          Buffer.from(secret, "base64url").toString("hex"),
          Buffer.from(secret, "base64url").toString("base64"),
        ]) {
          expect(raw).not.toContain(form);
        }
      }
    } finally {
      await client.close();
    }
  });

  it("answers Unauthenticated for no header, another scheme, an unknown, an expired and a revoked token", async () => {
    const md = (value?: string) => {
      const m = new grpc.Metadata();
      if (value !== undefined) m.set("authorization", value);
      return m;
    };
    const get = (m: grpc.Metadata) => code(unary(access, "getPrincipal", { name: "ed" }, m));
    expect(await get(md())).toBe(grpc.status.UNAUTHENTICATED);
    expect(await get(md(`Basic ${Buffer.from("admin:x").toString("base64")}`))).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect(await get(md(`Bearer seald_${"x".repeat(43)}`))).toBe(grpc.status.UNAUTHENTICATED);

    // An hour to live on the server's clock: no stall of this machine reaches the expiry before
    // the first call, and moving the clock past it reaches it without waiting.
    const ttlMs = 3_600_000;
    const short = await call<CreateTokenResponse>(access, "createToken", {
      principal: "rd",
      expireTime: timestampFromDate(new Date(clock.now().getTime() + ttlMs)),
    });
    expect(await get(md(`Bearer ${short.secret}`))).toBe(grpc.status.PERMISSION_DENIED);
    clock.advance(ttlMs);
    expect(await get(md(`Bearer ${short.secret}`))).toBe(grpc.status.UNAUTHENTICATED);

    const doomed = await call<CreateTokenResponse>(access, "createToken", { principal: "rd" });
    expect(await get(md(`Bearer ${doomed.secret}`))).toBe(grpc.status.PERMISSION_DENIED);
    await call(access, "revokeToken", { id: doomed.token?.id });
    expect(await get(md(`Bearer ${doomed.secret}`))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("decides 401 before 403 before 404", async () => {
    const missing = { name: "no-such-principal" };
    expect(await code(unary(access, "getPrincipal", missing))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await code(call(access, "getPrincipal", missing, tokens.rd))).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    expect(await code(call(access, "getPrincipal", missing))).toBe(grpc.status.NOT_FOUND);
  });

  it("keeps health and reflection open, and every other service closed without credentials", async () => {
    expect(await code(unary(secrets, "getSecret", { namespace: "a", name: "b" }))).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect(await code(unary(audit, "verifyAuditLog", {}))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("validates input and names the field", async () => {
    const err = await failure(
      call(access, "createPrincipal", { principal: { name: "Bad Name!", kind: 0 } }),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("principal.name");
    expect(err.details).toContain("principal.kind");
    const user = await failure(
      call(access, "grantRole", {
        binding: { principal: "ed", role: "decrypter", namespace: "team-a" },
      }),
    );
    expect(user.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(user.details).toContain("decrypter can only be granted to service accounts");
    const dup = await failure(
      call(access, "createPrincipal", { principal: { name: "ed", kind: PrincipalKind.USER } }),
    );
    expect(dup.code).toBe(grpc.status.ALREADY_EXISTS);
  });

  it("shows role bindings on the principal and removes them with it", async () => {
    await principal("temp", PrincipalKind.SERVICE_ACCOUNT, "decrypter", "team-q");
    const got = await call<GetPrincipalResponse>(access, "getPrincipal", { name: "temp" });
    expect(got.principal?.roleBindings.map((b) => `${b.role}@${b.namespace}`)).toEqual([
      "decrypter@team-q",
    ]);
    await call(access, "deletePrincipal", { name: "temp" });
    expect(await code(call(access, "getPrincipal", { name: "temp" }))).toBe(grpc.status.NOT_FOUND);
    // Its token went with it.
    expect(await code(call(access, "listPrincipals", {}, tokens.temp))).toBe(
      grpc.status.UNAUTHENTICATED,
    );
  });

  it("revocation on one replica takes effect on another within the documented second", async () => {
    const other = await startTestSeald({ database }, { now: clock.now });
    const otherAccess = grpcClient(AccessService, other.address);
    try {
      const t = await call<CreateTokenResponse>(access, "createToken", { principal: "root2" });
      expect(await code(call(otherAccess, "listPrincipals", {}, t.secret))).toBe(grpc.status.OK);
      await call(access, "revokeToken", { id: t.token?.id });
      // The other replica may have cached the token for up to the cache TTL (1 s) before the
      // revocation; once a second has passed on its clock, the very next call is refused. The
      // clock is moved rather than waited on, so a slow call cannot stretch the second.
      clock.advance(1000);
      expect(await code(call(otherAccess, "listPrincipals", {}, t.secret))).toBe(
        grpc.status.UNAUTHENTICATED,
      );
    } finally {
      otherAccess.close();
      await other.close();
    }
  });

  it("slows and then refuses an address that keeps failing, without affecting other callers", async () => {
    const bad = `Bearer seald_${"b".repeat(43)}`;
    const from = (localAddress: string, token: string) =>
      createClient(
        AccessService,
        // http2.connect hands these options to net.connect, which binds the local address.
        createGrpcTransport({
          baseUrl: seald.url,
          nodeOptions: { localAddress } as Record<string, unknown>,
        }),
      ).listPrincipals({}, { headers: { authorization: token } });
    const codes: Code[] = [];
    for (let i = 0; i < 7; i++)
      codes.push(ConnectError.from(await from("127.0.0.3", bad).catch((e) => e)).code);
    expect(codes.slice(0, 5)).toEqual(Array(5).fill(Code.Unauthenticated));
    expect(codes.slice(5)).toEqual([Code.ResourceExhausted, Code.ResourceExhausted]);
    // Refused with a good token too from that address: a refusal must not be an oracle.
    const blocked = ConnectError.from(
      await from("127.0.0.3", `Bearer ${adminToken}`).catch((e) => e),
    );
    expect(blocked.code).toBe(Code.ResourceExhausted);
    expect(Number(blocked.metadata.get("retry-after"))).toBeGreaterThan(0);
    // Another address is unaffected.
    expect((await from("127.0.0.4", `Bearer ${adminToken}`)).principals.length).toBeGreaterThan(0);
  });
});
