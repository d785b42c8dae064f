/**
 * Lookups by `_id` use the `_id` index on the test and embedded database. FerretDB 1.24 (SQLite)
 * as released filters `_id` on another JSON expression than the one its index is built on, so
 * every GetSecret scanned the whole collection (217 ms at 100,000 secrets), and it scans for any
 * numeric `_id` (the audit log's seq); scripts/testdb.mjs builds it with
 * test/testdb/ferretdb-patches.json applied. The check reads SQLite's query plan
 * through the `explain` command, so it does not depend on timing. On a real mongod (set through
 * SEALD_TEST_MONGODB_URI) that check is skipped: `_id` lookups always use the index there.
 */
import { type Db, Double, Long, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Seald } from "../../src/app.js";
import { collections } from "../../src/store/schema.js";
import { headId } from "../../src/store/secret-store.js";
import { mongoUri, startTestSeald, uniqueDatabase } from "../harness/seald.js";

/** SQLite's plan for a find, as FerretDB reports it: one "id=.. detail=..." line per node. */
async function plan(db: Db, collection: string, filter: object): Promise<string[]> {
  const res = await db.command({ explain: { find: collection, filter } });
  return (res.queryPlanner as { Plan?: string[] }).Plan ?? [];
}

describe("_id lookups", () => {
  const database = uniqueDatabase("indexes");
  let seald: Seald;
  let client: MongoClient;
  let db: Db;
  let ferretdb = false;
  beforeAll(async () => {
    seald = await startTestSeald({ database });
    client = await MongoClient.connect(mongoUri());
    db = client.db(database);
    ferretdb = "ferretdbVersion" in (await client.db("admin").command({ buildInfo: 1 }));
  });
  afterAll(async () => {
    await seald?.close();
    await client?.close();
  });

  it("search the _id index of every collection seald uses, instead of scanning it", async (ctx) => {
    if (!ferretdb) ctx.skip();
    for (const name of Object.values(collections)) {
      // Collections without indexes of their own appear on first write; make them exist.
      if ((await db.listCollections({ name }).toArray()).length === 0) {
        await db.createCollection(name);
      }
      const lines = await plan(db, name, { _id: headId("default", "db-password") });
      expect(lines, name).toHaveLength(1);
      expect(lines[0], name).toMatch(/ detail=SEARCH \S+ USING INDEX \S+__id_ \(<expr>=\?\)$/);
    }
    // The audit log's _id is its seq, a number.
    for (const id of [5, 0, 2.5, new Double(7), Long.fromNumber(9)]) {
      const lines = await plan(db, collections.audit, { _id: id });
      expect(lines.join("\n"), String(id)).toMatch(/ detail=SEARCH \S+ USING INDEX \S+__id_ /);
      expect(lines.join("\n"), String(id)).not.toMatch(/ detail=SCAN /);
    }
  });

  it("search the _id index when the filter holds other fields beside the _id", async (ctx) => {
    if (!ferretdb) ctx.skip();
    // Seald's compare-and-set of a secret's head: {_id, rv}.
    const lines = await plan(db, collections.secrets, { _id: headId("a", "b"), rv: "0011" });
    expect(lines.join("\n")).toMatch(/ detail=SEARCH \S+ USING INDEX \S+__id_ /);
    expect(lines.join("\n")).not.toMatch(/ detail=SCAN /);
  });

  it("apply the rest of the filter after an _id lookup: compare-and-set still compares", async () => {
    const c = db.collection<{ _id: string; rv: string; n: number }>("cas");
    await c.insertMany([
      { _id: "x", rv: "1", n: 1 },
      { _id: "y", rv: "1", n: 1 },
    ]);
    expect((await c.updateOne({ _id: "x", rv: "2" }, { $set: { n: 9 } })).matchedCount).toBe(0);
    expect((await c.updateOne({ _id: "x", rv: "1" }, { $set: { rv: "2" } })).matchedCount).toBe(1);
    expect(await c.findOne({ _id: "x", rv: "1" })).toBeNull();
    expect(await c.findOne({ _id: "x", rv: "2" })).toEqual({ _id: "x", rv: "2", n: 1 });
    expect((await c.deleteOne({ _id: "y", rv: "2" })).deletedCount).toBe(0);
    expect((await c.deleteOne({ _id: "y", rv: "1" })).deletedCount).toBe(1);
    expect(await c.countDocuments()).toBe(1);
  });

  it("find a numeric _id stored as any equal number, and nothing else", async () => {
    const c = db.collection<{ _id: number | string | Double | Long; n: string }>("numeric");
    await c.insertMany([
      ...Array.from({ length: 20 }, (_, i) => ({ _id: i + 1, n: "int" })),
      { _id: new Double(60), n: "double" },
      { _id: Long.fromNumber(70), n: "long" },
      { _id: new Double(-0), n: "negative zero" },
      { _id: 2.5, n: "fraction" },
      { _id: "5", n: "string" },
    ]);
    const n = async (id: number | Double | Long) => (await c.findOne({ _id: id }))?.n;
    expect(await n(5)).toBe("int");
    expect(await n(Long.fromNumber(5))).toBe("int");
    expect(await n(new Double(5))).toBe("int");
    expect(await n(60)).toBe("double");
    expect(await n(Long.fromNumber(60))).toBe("double");
    expect(await n(new Double(70))).toBe("long");
    expect(await n(70)).toBe("long");
    expect(await n(0)).toBe("negative zero");
    expect(await n(new Double(-0))).toBe("negative zero");
    expect(await n(2.5)).toBe("fraction");
    expect(await n(2.25)).toBeUndefined();
    expect(await n(Number.POSITIVE_INFINITY)).toBeUndefined();
    expect(await n(21)).toBeUndefined();
    expect((await c.deleteOne({ _id: 7 })).deletedCount).toBe(1);
    expect(await n(7)).toBeUndefined();
    expect(await c.countDocuments()).toBe(24);
  });

  it("still find, update and delete exactly the document named", async () => {
    const c = db.collection<{ _id: string; n: number }>("lookups");
    await c.insertMany(Array.from({ length: 50 }, (_, n) => ({ _id: `ns name-${n}`, n })));
    expect(await c.findOne({ _id: "ns name-7" })).toEqual({ _id: "ns name-7", n: 7 });
    expect(await c.findOne({ _id: "ns name-70" })).toBeNull();
    expect((await c.updateOne({ _id: "ns name-8" }, { $set: { n: 80 } })).modifiedCount).toBe(1);
    expect(await c.findOne({ _id: "ns name-8" })).toEqual({ _id: "ns name-8", n: 80 });
    expect((await c.deleteOne({ _id: "ns name-9" })).deletedCount).toBe(1);
    expect(await c.findOne({ _id: "ns name-9" })).toBeNull();
    expect(await c.countDocuments()).toBe(49);
    await expect(c.insertOne({ _id: "ns name-7", n: 0 })).rejects.toMatchObject({ code: 11000 });
  });
});
