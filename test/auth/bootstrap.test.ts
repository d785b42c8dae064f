import { Code, ConnectError } from "@connectrpc/connect";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService } from "../../gen/secrets/v1/access_service_pb.js";
import { AuditService } from "../../gen/secrets/v1/audit_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { client } from "../harness/clients.js";
import {
  adminToken,
  mongoUri,
  spawnSeald,
  startTestSeald,
  testMasterKeys,
  uniqueDatabase,
} from "../harness/seald.js";

describe("bootstrap", () => {
  it("prints a generated admin token once, to stderr only, and never again", async () => {
    const database = uniqueDatabase("boot");
    const env = {
      SEALD_LISTEN: "127.0.0.1:0",
      SEALD_MONGODB_URI: mongoUri(),
      SEALD_DATABASE: database,
      SEALD_MASTER_KEYS: testMasterKeys,
    };
    const first = spawnSeald([], env);
    const line = JSON.parse(await first.waitForLog(/"msg":"listening"/));
    await first.waitForLog(/"msg":"bootstrapped the first admin"/);
    const match =
      /seald: the bootstrap admin's token \(shown once, store it now\): (seald_[A-Za-z0-9_-]{43})/.exec(
        first.stderr(),
      );
    expect(match).not.toBeNull();
    const token = match?.[1] ?? "";
    expect(first.stdout()).not.toContain(token);
    const access = client(AccessService, `http://${line.address}`, token);
    expect(
      (await access.getPrincipal({ name: "admin" })).principal?.roleBindings.map(
        (b) => `${b.role}@${b.namespace}`,
      ),
    ).toEqual(["admin@*"]);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);

    const second = spawnSeald([], env);
    await second.waitForLog(/"msg":"ready to serve"/);
    const url = `http://${JSON.parse(await second.waitForLog(/"msg":"listening"/)).address}`;
    expect(
      (await client(AccessService, url, token).listPrincipals({})).principals.map((p) => p.name),
    ).toEqual(["admin"]);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    expect(second.stderr()).not.toContain("seald_");
    expect(second.stdout()).not.toContain("bootstrapped");
  });
});

describe("the audit trail through the service", () => {
  const database = uniqueDatabase("auditsvc");
  let mongo: MongoClient;
  beforeAll(async () => {
    mongo = await MongoClient.connect(mongoUri());
  });
  afterAll(async () => {
    await mongo?.close();
  });

  it("records writes, denials and decrypts from two replicas at once in one verifiable chain, and names a tampered record", async () => {
    const a = await startTestSeald({ database });
    const b = await startTestSeald({ database });
    try {
      const writers = [a, b].map((s) => client(SecretsService, s.url, adminToken));
      const before = (await client(AuditService, a.url, adminToken).verifyAuditLog({})).count;
      const perReplica = 40;
      await Promise.all(
        writers.map((w, i) =>
          (async () => {
            for (let n = 0; n < perReplica; n++) {
              await w.createSecret({
                secret: {
                  namespace: "audit",
                  name: `r${i}-${n}`,
                  value: { kind: { case: "plaintext", value: "v" } },
                },
              });
            }
          })(),
        ),
      );
      const audit = client(AuditService, b.url, adminToken);
      const verified = await audit.verifyAuditLog({});
      expect(verified.ok).toBe(true);
      expect(verified.count).toBe(before + BigInt(2 * perReplica));
      const creates = await audit.listAuditEvents({
        namespace: "audit",
        action: "secret.securevalues:create",
        pageSize: 1000,
      });
      expect(creates.events).toHaveLength(2 * perReplica);
      expect(new Set(creates.events.map((e) => e.name)).size).toBe(2 * perReplica);
      expect(
        creates.events.every(
          (e) => e.principal === "admin" && e.outcome === "success" && e.requestId !== "",
        ),
      ).toBe(true);

      // A denial and a failed authentication are recorded too.
      const anonymous = client(SecretsService, a.url, `seald_${"z".repeat(43)}`);
      const err = await anonymous
        .getSecret({ namespace: "audit", name: "r0-0" })
        .catch((e) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unauthenticated);
      const failures = await audit.listAuditEvents({ outcome: "unauthenticated" });
      expect(failures.events.length).toBeGreaterThan(0);
      expect(
        JSON.stringify(failures.events, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
      ).not.toContain("z".repeat(43));

      // Edit one field of one record in the middle: verification names it.
      const raw = mongo.db(database).collection<{ _id: number; name: string }>("audit");
      const victim = creates.events[10];
      await raw.updateOne({ _id: Number(victim?.seq) }, { $set: { name: "forged" } });
      const tampered = await audit.verifyAuditLog({});
      expect(tampered.ok).toBe(false);
      expect(tampered.failedSeq).toBe(victim?.seq);
      expect(tampered.problem).not.toBe("");
    } finally {
      await a.close();
      await b.close();
    }
  });
});
