/**
 * Stored-record integrity, as a user meets it: heads edited or rebuilt by hand in the database
 * (through the driver) while seald serves real clients. A damaged head spoils only itself, and
 * a head rebuilt from kept history does not open.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { type Collection, type Document, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { AuditService } from "../../gen/secrets/v1/audit_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { client } from "../harness/clients.js";
import { adminToken, mongoUri, startTestSeald, uniqueDatabase } from "../harness/seald.js";

const ns = "integrity";

describe("stored-record integrity", () => {
  const database = uniqueDatabase("integrity");
  let seald: Seald;
  let mongo: MongoClient;
  let heads: Collection<Document>;
  let versions: Collection<Document>;
  let appToken = "";
  const admin = () => client(SecretsService, seald.url, adminToken);
  const app = () => client(SecretsService, seald.url, appToken);

  const create = (name: string, value: string) =>
    admin().createSecret({
      secret: {
        namespace: ns,
        name,
        decrypters: ["app"],
        value: { kind: { case: "plaintext", value } },
      },
    });
  const decrypt = async (...names: string[]) =>
    (await app().decryptSecrets({ namespace: ns, names })).results;
  const failed = { case: "error", value: "decryption failed" };

  beforeAll(async () => {
    seald = await startTestSeald({ database });
    mongo = await MongoClient.connect(mongoUri());
    heads = mongo.db(database).collection("secrets");
    versions = mongo.db(database).collection("secret_versions");
    const access = client(AccessService, seald.url, adminToken);
    await access.createPrincipal({
      principal: { name: "app", kind: PrincipalKind.SERVICE_ACCOUNT },
    });
    // A decrypter that may also read the namespace, so it is told "decryption failed".
    for (const role of ["decrypter", "reader"]) {
      await access.grantRole({ binding: { principal: "app", role, namespace: ns } });
    }
    appToken = (await access.createToken({ principal: "app" })).secret;
  });
  afterAll(async () => {
    await mongo?.close();
    await seald?.close();
  });

  it("answers a damaged head's name alone with decryption failed, audited with the reason", async () => {
    await create("good", "good-value");
    for (const [name, edit] of [
      ["bad-version", { version: "x" }],
      ["bad-uid", { uid: "" }],
      ["bad-labels", { labels: "not a list" }],
      ["no-sealed", { sealed: null }],
    ] as const) {
      await create(name, `${name}-value`);
      await heads.updateOne({ _id: `${ns} ${name}` as unknown as Document["_id"] }, { $set: edit });
    }
    const names = ["good", "bad-version", "bad-uid", "bad-labels", "no-sealed"];
    const results = await decrypt(...names);
    expect(results.good?.result).toEqual({ case: "value", value: "good-value" });
    for (const name of names.slice(1)) expect(results[name]?.result, name).toEqual(failed);

    const audited = await client(AuditService, seald.url, adminToken).listAuditEvents({
      principal: "app",
      action: "secret.securevalues:decrypt",
      pageSize: 100,
    });
    const bad = audited.events.find((e) => e.name === "bad-version");
    expect(bad?.outcome).toBe("failed");
    expect(bad?.reason).toMatch(/damaged: version is not a positive integer/);
    expect(audited.events.find((e) => e.name === "good")?.outcome).toBe("success");
  });

  it("lists the other secrets of the namespace, leaving a damaged head out and counting it", async () => {
    const listed = await admin().listSecrets({ namespace: ns });
    expect(listed.secrets.map((s) => s.name)).toEqual(["good"]);
    // Paging past a damaged head loses nothing: one name a page still reaches "good".
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await admin().listSecrets({ namespace: ns, pageSize: 1, pageToken });
      seen.push(...page.secrets.map((s) => s.name));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(["good"]);
    const metrics = await (await fetch(`${seald.url}/metrics`)).text();
    expect(metrics).toMatch(/seald_damaged_records_total\{collection="secrets"\} [1-9]/);
  });

  it("answers a read of a damaged head DataLoss, and still deletes it", async () => {
    const err = await admin()
      .getSecret({ namespace: ns, name: "bad-uid" })
      .catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.DataLoss);
    expect((err as ConnectError).rawMessage).toBe(
      'the stored record of secret "bad-uid" is damaged',
    );
    await admin().deleteSecret({ namespace: ns, name: "bad-uid" });
    expect(await heads.countDocuments({ _id: `${ns} bad-uid` as unknown as Document["_id"] })).toBe(
      0,
    );
  });

  it("does not open a head rebuilt from kept history", async () => {
    await create("rotated", "old-value");
    await admin().updateSecret({
      secret: {
        namespace: ns,
        name: "rotated",
        decrypters: ["app"],
        value: { kind: { case: "plaintext", value: "new-value" } },
      },
    });
    expect((await decrypt("rotated")).rotated?.result).toEqual({
      case: "value",
      value: "new-value",
    });
    const head = await heads.findOne({ _id: `${ns} rotated` as unknown as Document["_id"] });
    const v1 = await versions.findOne({ _id: `${head?.uid}/1` as unknown as Document["_id"] });
    expect(v1?.sealed).toBeDefined();
    // The forgery: version 1's sealed value back in the head, claiming version 1.
    await heads.updateOne(
      { _id: `${ns} rotated` as unknown as Document["_id"] },
      { $set: { sealed: v1?.sealed, version: 1 } },
    );
    expect((await decrypt("rotated")).rotated?.result).toEqual(failed);
  });

  it("refuses a head whose MAC was removed or whose grants were edited", async () => {
    await create("stripped", "stripped-value");
    await heads.updateOne(
      { _id: `${ns} stripped` as unknown as Document["_id"] },
      { $unset: { mac: "", macKeyId: "" } },
    );
    await create("widened", "widened-value");
    await admin().updateSecret({
      secret: { namespace: ns, name: "widened", decrypters: ["someone-else"] },
    });
    // Putting app back into the decrypters by hand does not let it decrypt.
    await heads.updateOne(
      { _id: `${ns} widened` as unknown as Document["_id"] },
      { $set: { decrypters: ["app"] } },
    );
    const results = await decrypt("stripped", "widened");
    expect(results.stripped?.result).toEqual(failed);
    expect(results.widened?.result).toEqual(failed);
    // A restart does not adopt a stripped head: other heads carry MACs.
    await seald.close();
    seald = await startTestSeald({ database });
    expect((await decrypt("stripped")).stripped?.result).toEqual(failed);
  });
});

describe("a database written before heads carried MACs", () => {
  it("is adopted once at start-up, as it stands", async () => {
    const database = uniqueDatabase("adopt");
    let seald = await startTestSeald({ database });
    const mongo = await MongoClient.connect(mongoUri());
    try {
      const access = client(AccessService, seald.url, adminToken);
      await access.createPrincipal({
        principal: { name: "old", kind: PrincipalKind.SERVICE_ACCOUNT },
      });
      await access.grantRole({ binding: { principal: "old", role: "decrypter", namespace: ns } });
      const token = (await access.createToken({ principal: "old" })).secret;
      await client(SecretsService, seald.url, adminToken).createSecret({
        secret: {
          namespace: ns,
          name: "legacy",
          decrypters: ["old"],
          value: { kind: { case: "plaintext", value: "legacy-value" } },
        },
      });
      await seald.close();
      // What an older seald wrote: no head has a MAC, and no marker says heads were ever MACed.
      await mongo
        .db(database)
        .collection("secrets")
        .updateMany({}, { $unset: { mac: "", macKeyId: "" } });
      await mongo
        .db(database)
        .collection("meta")
        .deleteOne({ _id: "head_macs" as never });
      seald = await startTestSeald({ database });
      await seald.databaseStarted;
      const res = await client(SecretsService, seald.url, token).decryptSecrets({
        namespace: ns,
        names: ["legacy"],
      });
      expect(res.results.legacy?.result).toEqual({ case: "value", value: "legacy-value" });
      expect(
        await mongo
          .db(database)
          .collection("secrets")
          .countDocuments({ mac: { $exists: true } }),
      ).toBe(1);
      // Once adopted, never again: heads stripped of their MACs later stay damaged after a restart.
      await seald.close();
      await mongo
        .db(database)
        .collection("secrets")
        .updateMany({}, { $unset: { mac: "", macKeyId: "" } });
      seald = await startTestSeald({ database });
      await seald.databaseStarted;
      const after = await client(SecretsService, seald.url, token).decryptSecrets({
        namespace: ns,
        names: ["legacy"],
      });
      // (old may not read the namespace, so a damaged head answers as one it may not decrypt.)
      expect(after.results.legacy?.result).toEqual({ case: "error", value: "not authorized" });
    } finally {
      await mongo.close();
      await seald.close();
    }
  });
});
