import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Document, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { AuditService } from "../../gen/secrets/v1/audit_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { client } from "../harness/clients.js";
import {
  adminToken,
  mongoUri,
  spawnSeald,
  startTestSeald,
  tempDir,
  testMasterKeys,
  uniqueDatabase,
} from "../harness/seald.js";

const plaintext = (name: string, value = "v") => ({
  secret: { namespace: "audit", name, value: { kind: { case: "plaintext" as const, value } } },
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: unknown) => ConnectError.from(e),
  );

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
      // Verified over and over while both replicas write: a head behind appends in flight is
      // normal, and not one verify may fail.
      const verifier = client(AuditService, a.url, adminToken);
      let writing = true;
      const verdicts: { ok: boolean; problem: string }[] = [];
      const verifying = (async () => {
        while (writing) verdicts.push(await verifier.verifyAuditLog({}));
      })();
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
      ).finally(() => {
        writing = false;
      });
      await verifying;
      expect(verdicts.length).toBeGreaterThan(1);
      expect(verdicts.filter((v) => !v.ok).map((v) => v.problem)).toEqual([]);
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

describe("denials, cuts and the audit file through the service", () => {
  let mongo: MongoClient;
  beforeAll(async () => {
    mongo = await MongoClient.connect(mongoUri());
  });
  afterAll(async () => {
    await mongo?.close();
  });

  it("records a denied write with the principal and action, and the secret is not written", async () => {
    const seald = await startTestSeald();
    try {
      const access = client(AccessService, seald.url, adminToken);
      await access.createPrincipal({ principal: { name: "rd", kind: PrincipalKind.USER } });
      await access.grantRole({ binding: { principal: "rd", role: "reader", namespace: "audit" } });
      const { secret: token } = await access.createToken({ principal: "rd", description: "t" });
      const err = await failure(
        client(SecretsService, seald.url, token).createSecret(plaintext("denied-one")),
      );
      expect(err.code).toBe(Code.PermissionDenied);
      const audit = client(AuditService, seald.url, adminToken);
      const denied = await audit.listAuditEvents({ outcome: "denied" });
      expect(denied.events).toEqual([
        expect.objectContaining({
          principal: "rd",
          action: "secret.securevalues:create",
          namespace: "audit",
          name: "denied-one",
          outcome: "denied",
        }),
      ]);
      expect(denied.events[0]?.requestId).not.toBe("");
      expect((await audit.verifyAuditLog({})).ok).toBe(true);
    } finally {
      await seald.close();
    }
  });

  it("names records cut from the end, a deleted head and an edited head; an anchor catches a restored old head", async () => {
    const database = uniqueDatabase("auditcut");
    const seald = await startTestSeald({ database });
    try {
      const secrets = client(SecretsService, seald.url, adminToken);
      for (let i = 0; i < 6; i++) await secrets.createSecret(plaintext(`c${i}`));
      const audit = client(AuditService, seald.url, adminToken);
      const intact = await audit.verifyAuditLog({});
      expect(intact.ok).toBe(true);
      const [headSeq] = intact.head.split(":");
      expect(Number(headSeq)).toBe(Number(intact.count));
      expect((await audit.verifyAuditLog({ anchor: intact.head })).ok).toBe(true);
      const n = Number(intact.count);

      const records = mongo.db(database).collection<{ _id: number } & Document>("audit");
      const meta = mongo.db(database).collection<{ _id: string } & Document>("meta");
      const savedHead = (await meta.findOne({ _id: "audit_head" })) as Document;

      // Delete the newest two records.
      const cut = await records.find({ _id: { $gt: n - 2 } }).toArray();
      await records.deleteMany({ _id: { $gt: n - 2 } });
      expect(await audit.verifyAuditLog({})).toMatchObject({
        ok: false,
        failedSeq: BigInt(n - 1),
        problem: `the head names record ${n} but the log ends at record ${n - 2}: records were removed from the end`,
      });
      await records.insertMany(cut);
      expect((await audit.verifyAuditLog({})).ok).toBe(true);

      // Delete the head document.
      await meta.deleteOne({ _id: "audit_head" });
      expect(await audit.verifyAuditLog({})).toMatchObject({
        ok: false,
        failedSeq: BigInt(n),
        problem: expect.stringMatching(/^the head is missing while \d+ records exist/),
      });
      await meta.insertOne(savedHead as { _id: string });
      expect((await audit.verifyAuditLog({})).ok).toBe(true);

      // Edit the head to name an earlier record.
      await meta.updateOne({ _id: "audit_head" }, { $set: { seq: n - 3 } });
      expect(await audit.verifyAuditLog({})).toMatchObject({
        ok: false,
        failedSeq: BigInt(n - 3),
        problem: expect.stringMatching(/the head's MAC does not verify/),
      });

      // An anchor that is not <seq>:<mac> is an invalid argument.
      const bad = await failure(audit.verifyAuditLog({ anchor: "12" }));
      expect(bad.code).toBe(Code.InvalidArgument);
      expect(bad.rawMessage).toContain("anchor");
    } finally {
      await seald.close();
    }
  });

  it("writes every record to the audit file as a JSON line in seq order, and its last line is an anchor", async () => {
    const path = join(tempDir(), "audit.jsonl");
    const seald = await startTestSeald({ auditFile: path });
    try {
      const secrets = client(SecretsService, seald.url, adminToken);
      await secrets.createSecret(plaintext("f0", "file-secret-value"));
      await Promise.all([1, 2, 3, 4].map((i) => secrets.createSecret(plaintext(`f${i}`))));
      const decrypted = await secrets.decryptSecrets({ namespace: "audit", names: ["f0"] });
      expect(decrypted.results.f0).toBeDefined();
      await failure(
        client(SecretsService, seald.url, `seald_${"y".repeat(43)}`).getSecret({
          namespace: "audit",
          name: "f0",
        }),
      );
      const audit = client(AuditService, seald.url, adminToken);
      const listed = await audit.listAuditEvents({ pageSize: 1000 });
      const text = readFileSync(path, "utf8");
      const lines = text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      // Every record, once, in seq order, the same as the database holds.
      expect(lines.map((l) => l.seq)).toEqual(
        listed.events.map((e) => Number(e.seq)).sort((x, y) => x - y),
      );
      expect(lines.every((l) => l.type === "audit_record")).toBe(true);
      expect(lines.map((l) => [l.action, l.name, l.outcome])).toEqual(
        [...listed.events].reverse().map((e) => [e.action, e.name, e.outcome]),
      );
      // Never a value or a token.
      expect(text).not.toContain("file-secret-value");
      expect(text).not.toContain("y".repeat(43));
      expect(text).not.toContain(adminToken);
      const last = lines.at(-1) as { seq: number; mac: string };
      expect((await audit.verifyAuditLog({ anchor: `${last.seq}:${last.mac}` })).ok).toBe(true);
      const wrong = await audit.verifyAuditLog({ anchor: `${last.seq}:${"0".repeat(64)}` });
      expect(wrong).toMatchObject({ ok: false, failedSeq: BigInt(last.seq) });
    } finally {
      await seald.close();
    }
  });

  it("writes the records to stdout among the log lines with SEALD_AUDIT_FILE=-", async () => {
    const proc = spawnSeald([], {
      SEALD_LISTEN: "127.0.0.1:0",
      SEALD_MONGODB_URI: mongoUri(),
      SEALD_DATABASE: uniqueDatabase("auditout"),
      SEALD_MASTER_KEYS: testMasterKeys,
      SEALD_BOOTSTRAP_TOKEN: adminToken,
      SEALD_AUDIT_FILE: "-",
    });
    const url = `http://${JSON.parse(await proc.waitForLog(/"msg":"listening"/)).address}`;
    await proc.waitForLog(/"msg":"ready to serve"/);
    await client(SecretsService, url, adminToken).createSecret(plaintext("to-stdout", "out-value"));
    const line = JSON.parse(await proc.waitForLog(/"type":"audit_record".*"to-stdout"/));
    expect(line).toMatchObject({
      type: "audit_record",
      principal: "admin",
      action: "secret.securevalues:create",
      name: "to-stdout",
      outcome: "success",
    });
    // Every stdout line is whole JSON: records and log lines do not run into each other.
    for (const l of proc.stdout().split("\n").filter(Boolean))
      expect(() => JSON.parse(l)).not.toThrow();
    expect(proc.stdout()).not.toContain("out-value");
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });

  it("fails a request closed when the audit file cannot be written, and refuses to start on a path it cannot open", async () => {
    const seald = await startTestSeald({ auditFile: "/dev/full" });
    try {
      const secrets = client(SecretsService, seald.url, adminToken);
      const write = await failure(secrets.createSecret(plaintext("full", "never-returned")));
      expect(write.code).toBe(Code.Internal);
      // A decrypt answers with an error, never the value.
      const decrypt = await failure(
        secrets.decryptSecrets({ namespace: "audit", names: ["full"] }),
      );
      expect(decrypt.code).toBe(Code.Internal);
      expect(JSON.stringify(decrypt)).not.toContain("never-returned");
    } finally {
      await seald.close();
    }
    const dir = tempDir();
    mkdirSync(join(dir, "is-a-directory"));
    await expect(startTestSeald({ auditFile: join(dir, "is-a-directory") })).rejects.toThrow(
      /^SEALD_AUDIT_FILE: cannot open .*is-a-directory for appending \(EISDIR\)$/,
    );
  });
});
