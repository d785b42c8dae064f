import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Seald } from "../../src/app.js";
import { schemaVersion } from "../../src/store/database.js";
import { mongoUri, startTestSeald, uniqueDatabase } from "../harness/seald.js";

describe("storage skeleton", () => {
  const database = uniqueDatabase("storage");
  let seald: Seald;
  let client: MongoClient;
  beforeAll(async () => {
    seald = await startTestSeald({ database });
    client = await MongoClient.connect(mongoUri());
  });
  afterAll(async () => {
    await seald?.close();
    await client?.close();
  });

  it("creates the indexes at start-up", async () => {
    const secrets = await client.db(database).collection("secrets").listIndexes().toArray();
    expect(secrets.find((i) => i.name === "namespace_name")).toMatchObject({
      key: { namespace: 1, name: 1 },
      unique: true,
    });
    const versions = await client
      .db(database)
      .collection("secret_versions")
      .listIndexes()
      .toArray();
    expect(versions.find((i) => i.name === "uid_version")).toMatchObject({ unique: true });
  });

  it("records the schema version, and a second start keeps the first start's record", async () => {
    const meta = client
      .db(database)
      .collection<{ _id: string; version: number; createdAt: Date }>("meta");
    const first = await meta.findOne({ _id: "schema" });
    expect(first?.version).toBe(schemaVersion);
    const again = await startTestSeald({ database });
    await again.close();
    expect(await meta.findOne({ _id: "schema" })).toEqual(first);
  });

  it("refuses a database written by a newer schema", async () => {
    const newer = uniqueDatabase("newer");
    await client
      .db(newer)
      .collection<{ _id: string; version: number }>("meta")
      .insertOne({ _id: "schema", version: schemaVersion + 1 });
    const { startSeald } = await import("../../src/app.js");
    const { testConfig, silentLogger } = await import("../harness/seald.js");
    const s = await startSeald(testConfig({ database: newer }), silentLogger());
    await expect(s.databaseStarted).rejects.toThrow(/newer than this seald/);
    expect((await fetch(`${s.url}/readyz`)).status).toBe(503);
    await s.close();
  });
});
