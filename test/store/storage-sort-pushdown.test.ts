/**
 * A page of a list is one index range on the test and embedded database. FerretDB 1.24 (SQLite)
 * as released filters, sorts and limits any find with a filter or a sort in memory, so a page of
 * 100 secrets read the whole collection (20 s at 100,000). scripts/testdb.mjs builds it with
 * test/testdb/ferretdb-patches.json, whose "(_id sort)" patches push a find sorted on `_id` whose
 * filter bounds a string `_id` ($gt, $gte, $lt, $lte) down to SQLite: one range of an index on
 * the unescaped `_id`, in order, with the limit when the bounds are the whole filter.
 *
 * The plans are read from SQLite through `explain` (no timing), and every query's results are
 * compared with the same query as the handler answers it unpatched (the filter inside an $and and
 * a second sort key: neither is pushed down), over `_id`s of every kind. On a real mongod (set
 * through SEALD_TEST_MONGODB_URI) the plan checks are skipped; the result checks still run.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  Binary,
  type Collection,
  type Db,
  type Document,
  Double,
  type Filter,
  Long,
  MongoClient,
  ObjectId,
} from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseMasterKeys } from "../../src/crypto/keyring.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import { startEmbeddedDatabase } from "../../src/store/embedded.js";
import { collections } from "../../src/store/schema.js";
import { mongoSecretStore } from "../../src/store/secret-store.js";
import { mongoUri, tempDir, testMasterKeys, uniqueDatabase } from "../harness/seald.js";

interface Explained {
  plan: string[];
  sortPushdown: boolean;
  limitPushdown: boolean;
}

async function explain(
  db: Db,
  collection: string,
  find: { filter: object; sort?: object; limit?: number; skip?: number },
): Promise<Explained> {
  const { skip, ...rest } = find;
  const command = { find: collection, ...rest, ...(skip ? { skip: Long.fromNumber(skip) } : {}) };
  const res = await db.command({ explain: command });
  return {
    plan: (res.queryPlanner as { Plan?: string[] }).Plan ?? [],
    sortPushdown: res.sortPushdown as boolean,
    limitPushdown: res.limitPushdown as boolean,
  };
}

/** One range of the index on the unescaped _id, in its order: no scan, no sort of its own. */
function expectIndexRange(e: Explained, bounds: RegExp) {
  const plan = e.plan.join("\n");
  expect(e.plan, plan).toHaveLength(1);
  expect(plan).toMatch(/ detail=SEARCH \S+ USING INDEX \$id_string_\S+ \((.*)\)$/);
  expect(plan).toMatch(bounds);
  expect(plan).not.toMatch(/SCAN|TEMP B-TREE/);
  expect(e.sortPushdown).toBe(true);
}

// _ids of every type FerretDB stores, and strings whose JSON text sorts otherwise than they do:
// a string before its extensions by a space or "!" (the closing quote compares with them),
// escapes (quote, backslash, control characters, and <, >, & and U+2028, which Go escapes),
// NUL, and characters of 1 to 4 UTF-8 bytes (UTF-16 order differs from byte order past U+FFFF).
const strings = [
  "",
  " ",
  "!",
  "a",
  "a ",
  "a b",
  "a!",
  "a!b",
  "a#",
  'a"',
  'a"b',
  "a\\",
  "a\\b",
  "a\u0000",
  "a\u0000b",
  "a\u0001",
  "a\n",
  "a<",
  "a>",
  "a&",
  "a\u2028",
  "ab",
  "b",
  "ns a",
  "ns a-1",
  "ns a.1",
  "ns b",
  "ns!",
  "ns!a",
  "nt a",
  "Z",
  "~",
  "é",
  "\uffff",
  "😀",
  "\ufffd",
  "zz",
];
const others: unknown[] = [
  1,
  -3,
  2.5,
  new Double(0),
  Long.fromNumber(7),
  new ObjectId("0123456789abcdef01234567"),
  new ObjectId("6e7320612d3100000000000a"),
  new Date(86_400_000),
  true,
  false,
  null,
  { a: 1 },
  { k: "ns a" },
  new Binary(Buffer.from("ns a")),
];

/** A filter, typed loosely: the driver types `_id` from the collection's documents. */
const q = <T = Mixed>(filter: object) => filter as Filter<T>;

/** The mixed collection's documents: _ids of every kind. */
type Mixed = { _id: string | number | boolean | object | null; n: number; odd: boolean };

describe("_id range pushdown", () => {
  const database = uniqueDatabase("pushdown");
  let client: MongoClient;
  let db: Db;
  let ferretdb = false;
  let c: Collection<Mixed>;
  beforeAll(async () => {
    client = await MongoClient.connect(mongoUri());
    db = client.db(database);
    ferretdb = "ferretdbVersion" in (await client.db("admin").command({ buildInfo: 1 }));
    c = db.collection("mixed");
    await c.insertMany([
      ...strings.map((s, i) => ({ _id: s, n: i, odd: i % 2 === 1 })),
      ...others.map((v, i) => ({ _id: v, n: 1000 + i, odd: i % 2 === 1 })),
    ] as Mixed[]);
  });
  afterAll(async () => {
    await client?.close();
  });

  /** The query as given, and as the handler answers it without any pushdown. */
  async function both(
    filter: Document,
    sort: 1 | -1,
    limit: number,
    skip = 0,
  ): Promise<[unknown[], unknown[]]> {
    const pushed = await c
      .find(filter as Filter<Mixed>)
      .sort({ _id: sort })
      .skip(skip)
      .limit(limit)
      .toArray();
    const reference = await c
      .find(q({ $and: [filter] }))
      .sort({ _id: sort, n: 1 })
      .skip(skip)
      .limit(limit)
      .toArray();
    return [pushed.map((d) => d._id), reference.map((d) => d._id)];
  }

  it("reads a keyset page as one index range, with the limit", async (ctx) => {
    if (!ferretdb) ctx.skip();
    const page = await explain(db, "mixed", {
      filter: { _id: { $gt: "ns a", $lt: "ns!" } },
      sort: { _id: 1 },
      limit: 101,
    });
    expectIndexRange(page, /\(<expr>>\? AND <expr><\?\)$/);
    expect(page.limitPushdown).toBe(true);
    const first = await explain(db, "mixed", {
      filter: { _id: { $gte: "" } },
      sort: { _id: 1 },
      limit: 101,
    });
    expectIndexRange(first, /\(<expr>>\?\)$/);
    expect(first.limitPushdown).toBe(true);
    const upper = await explain(db, "mixed", {
      filter: { _id: { $lte: "ns b" } },
      sort: { _id: -1 },
      limit: 5,
    });
    expectIndexRange(upper, /\(<expr>>\? AND <expr><\?\)$/);
    expect(upper.limitPushdown).toBe(true);
  });

  it("reads the range in order but leaves the limit to the handler when it filters more", async (ctx) => {
    if (!ferretdb) ctx.skip();
    for (const filter of [
      { _id: { $gt: "a" }, odd: true },
      { _id: { $gt: "a" }, $and: [{ odd: true }, { n: { $gt: 3 } }] },
      { _id: { $gt: "a" }, "x.y": 1 },
    ]) {
      const e = await explain(db, "mixed", { filter, sort: { _id: 1 }, limit: 3 });
      expectIndexRange(e, /\(<expr>>\?\)$/);
      expect(e.limitPushdown, JSON.stringify(filter)).toBe(false);
    }
    const skipped = await explain(db, "mixed", {
      filter: { _id: { $gt: "a" } },
      sort: { _id: 1 },
      limit: 3,
      skip: 2,
    });
    expectIndexRange(skipped, /\(<expr>>\?\)$/);
    expect(skipped.limitPushdown).toBe(false);
  });

  it("leaves what it cannot order exactly to the handler, as before", async (ctx) => {
    if (!ferretdb) ctx.skip();
    for (const find of [
      { filter: { _id: { $gt: "a" } } },
      { filter: { _id: { $gt: "a" } }, sort: { _id: 1, n: 1 } },
      { filter: { _id: { $gt: "a" } }, sort: { n: 1 } },
      { filter: { _id: { $gt: 5 } }, sort: { _id: 1 } },
      { filter: { _id: { $gt: "a", $ne: "b" } }, sort: { _id: 1 } },
      { filter: { _id: { $in: ["a", "b"] } }, sort: { _id: 1 } },
      { filter: { $and: [{ _id: { $gt: "a" } }] }, sort: { _id: 1 } },
      { filter: {}, sort: { _id: 1 } },
    ]) {
      const e = await explain(db, "mixed", { ...find, limit: 3 });
      expect(e.sortPushdown, JSON.stringify(find)).toBe(false);
      expect(e.plan.join("\n")).not.toMatch(/\$id_string_/);
    }
  });

  it("returns what the handler returns unpatched, for every bound, order, limit and filter", async () => {
    const bounds = [
      "",
      " ",
      "a",
      "a ",
      "a!",
      'a"',
      "a\u0000",
      "a\\",
      "ns ",
      "ns a",
      "ns!",
      "é",
      "😀",
    ];
    const filters: Document[] = [{ _id: { $gte: "" } }];
    for (const b of bounds) {
      filters.push({ _id: { $gt: b } }, { _id: { $gte: b } }, { _id: { $lt: b } });
      filters.push({ _id: { $lte: b } }, { _id: { $gt: b, $lt: "ns!" } });
      filters.push({ _id: { $gte: "a", $lte: b } }, { _id: { $lt: b, $gt: " " } });
    }
    for (const filter of filters) {
      for (const sort of [1, -1] as const) {
        for (const limit of [0, 1, 3, 100]) {
          const [pushed, reference] = await both(filter, sort, limit);
          expect(pushed, `${JSON.stringify(filter)} ${sort} ${limit}`).toEqual(reference);
        }
      }
    }
    // Checked against the order MongoDB defines too: strings by their UTF-8 bytes.
    const all = (await both({ _id: { $gte: "" } }, 1, 0))[0];
    expect(all).toEqual(
      [...strings].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
  });

  it("returns what the handler returns unpatched when the handler filters, skips or projects more", async () => {
    const filters: Document[] = [
      { _id: { $gt: "a" }, odd: true },
      { _id: { $gt: "a" }, odd: false, n: { $lt: 30 } },
      { _id: { $gte: "" }, $and: [{ odd: true }, { n: { $gte: 5 } }] },
      { _id: { $lt: "ns!" }, n: { $in: [1, 2, 3, 25, 26] } },
      { _id: { $gt: "zzz" }, odd: true },
    ];
    for (const filter of filters) {
      for (const sort of [1, -1] as const) {
        for (const [limit, skip] of [
          [0, 0],
          [1, 0],
          [2, 0],
          [2, 1],
          [100, 3],
        ]) {
          const [pushed, reference] = await both(filter, sort, limit ?? 0, skip ?? 0);
          expect(pushed, `${JSON.stringify(filter)} ${sort} ${limit} ${skip}`).toEqual(reference);
        }
      }
    }
    const projected = await c
      .find(q({ _id: { $gt: "a", $lt: "b" } }), { projection: { n: 1 } })
      .sort({ _id: 1 })
      .limit(2)
      .toArray();
    expect(projected).toEqual([
      { _id: "a\u0000", n: 13 },
      { _id: "a\u0000b", n: 14 },
    ]);
  });

  it("streams a range across getMore batches, in order, filtered, with or without a limit", async () => {
    type Many = { _id: string; i: number };
    const many = db.collection<Many>("many");
    await many.insertMany(
      Array.from({ length: 250 }, (_, i) => ({
        _id: `k ${String((i * 7919) % 250).padStart(3, "0")}`,
        i,
      })),
    );
    for (const [filter, limit] of [
      [{ _id: { $gt: "k 010", $lt: "k 240" } }, 0],
      [{ _id: { $gt: "k 010", $lt: "k 240" } }, 150],
      [{ _id: { $gte: "" }, i: { $mod: [3, 0] } }, 0],
      [{ _id: { $gte: "" }, i: { $mod: [3, 0] } }, 70],
    ] as const) {
      for (const sort of [1, -1] as const) {
        const pushed = await many
          .find(q<Many>(filter))
          .sort({ _id: sort })
          .limit(limit)
          .batchSize(40)
          .toArray();
        const reference = await many
          .find(q<Many>({ $and: [filter] }))
          .sort({ _id: sort, i: 1 })
          .limit(limit)
          .batchSize(40)
          .toArray();
        expect(pushed.length, JSON.stringify(filter)).toBeGreaterThan(40);
        expect(pushed, `${JSON.stringify(filter)} ${sort} ${limit}`).toEqual(reference);
      }
    }
  });

  it("keeps finding documents by an equal _id, and other sorts, as before", async () => {
    expect(
      (
        await c
          .find(q({ _id: "a b" }))
          .sort({ _id: 1 })
          .toArray()
      ).map((d) => d.n),
    ).toEqual([5]);
    const byN = await c
      .find(q({ _id: { $gt: "ns" } }))
      .sort({ n: -1 })
      .limit(2)
      .toArray();
    expect(byN.map((d) => d._id)).toEqual(["zz", "\ufffd"]);
    const numbers = await c
      .find(q({ _id: { $gt: 0 } }))
      .sort({ _id: 1 })
      .toArray();
    expect(numbers.map((d) => d.n)).toEqual([1000, 1002, 1004]);
  });

  it("pages every secret of seald's list exactly once, namespace by namespace, as one range each", async () => {
    const heads = db.collection<Document>(collections.secrets);
    await loadSodium();
    const ring = parseMasterKeys(testMasterKeys, "test");
    const store = mongoSecretStore(db, { ring, maxVersions: 3 });
    const names = ["a", "a-1", "a.b", "a0", "b", "z"];
    const namespaces = ["n1", "n1-x", "n1.x", "n10", "n2", "ns"];
    const now = new Date(0);
    for (const ns of namespaces) {
      for (const name of names) {
        await store.create({
          namespace: ns,
          name,
          uid: `${ns}/${name}`,
          labels: { even: String(names.indexOf(name) % 2 === 0) },
          annotations: {},
          description: "",
          decrypters: [],
          // An external keeper: heads of sealed secrets need a sealed value, which paging ignores.
          keeper: "env",
          ref: "X",
          version: 1,
          resourceVersion: "1",
          createTime: now,
          updateTime: now,
          createdBy: "t",
          updatedBy: "t",
          envelope: undefined,
        });
      }
    }
    const finds: { filter: object; sort: object; limit: number }[] = [];
    const watched = await MongoClient.connect(mongoUri(), { monitorCommands: true });
    watched.on("commandStarted", (e) => {
      if (e.commandName === "find") finds.push(e.command as (typeof finds)[number]);
    });
    try {
      const watchedStore = mongoSecretStore(watched.db(database), { ring, maxVersions: 3 });
      for (const [sel, want] of [
        ["*", namespaces.flatMap((ns) => names.map((n) => `${ns}/${n}`))],
        [
          ["ns", "n1", "n2", "n10", "n1"],
          ["n1", "n10", "n2", "ns"].flatMap((ns) => names.map((n) => `${ns}/${n}`)),
        ],
        [["n1.x"], names.map((n) => `n1.x/${n}`)],
        [["absent", "n1-x"], names.map((n) => `n1-x/${n}`)],
      ] as const) {
        for (const pageSize of [1, 4, 7, 100]) {
          for (const labels of [[], [{ key: "even", op: "=", values: ["true"] }]] as const) {
            const seen: string[] = [];
            let after: { namespace: string; name: string } | undefined;
            for (;;) {
              const page = await watchedStore.list({
                namespaces: sel,
                labels,
                fields: [],
                after,
                limit: pageSize,
              });
              seen.push(...page.map((r) => ("uid" in r ? r.uid : `damaged: ${r.damaged}`)));
              const last = page.at(-1);
              if (page.length < pageSize || !last) break;
              after = { namespace: last.namespace, name: last.name };
            }
            const expected = labels.length
              ? want.filter((u) => names.indexOf(u.split("/")[1] ?? "") % 2 === 0)
              : want;
            expect(seen, `${JSON.stringify(sel)} ${pageSize} ${labels.length}`).toEqual(expected);
          }
        }
      }
    } finally {
      await watched.close();
    }
    // Every find the store sent reads one range of the index, in order; with the limit when
    // nothing else filters.
    if (!ferretdb) return;
    expect(finds.length).toBeGreaterThan(0);
    for (const f of finds) {
      const e = await explain(db, collections.secrets, {
        filter: f.filter,
        sort: f.sort,
        limit: f.limit,
      });
      expectIndexRange(e, /\(<expr>>\?( AND <expr><\?)?\)$/);
      expect(e.limitPushdown, JSON.stringify(f.filter)).toBe(!("$and" in f.filter));
    }
    expect(await heads.countDocuments()).toBe(namespaces.length * names.length);
  });
});

describe("_id range pushdown on a database created before the patch", () => {
  it("indexes its collections when FerretDB opens it", async (ctx) => {
    const probe = await MongoClient.connect(mongoUri());
    const isFerret = "ferretdbVersion" in (await probe.db("admin").command({ buildInfo: 1 }));
    await probe.close();
    if (!isFerret || spawnSync("sqlite3", ["-version"]).status !== 0) ctx.skip();
    const dir = tempDir("seald-pushdown-");
    try {
      const open = async () => {
        const server = await startEmbeddedDatabase({ dir });
        const client = await MongoClient.connect(server.uri);
        return { server, client, db: client.db("old") };
      };
      let s = await open();
      await s.db.collection<{ _id: string }>("c").insertMany([{ _id: "x 1" }, { _id: "x 2" }]);
      await s.client.close();
      await s.server.stop();
      // What a database written by an unpatched FerretDB lacks: the index on the unescaped _id.
      const file = join(dir, "old.sqlite");
      expect(readdirSync(dir)).toContain("old.sqlite");
      const drop = spawnSync("sqlite3", [
        file,
        `SELECT 'DROP INDEX "' || name || '";' FROM sqlite_master WHERE name LIKE '$id_string_%'`,
      ]);
      const statements = drop.stdout.toString();
      expect(statements).toMatch(/DROP INDEX/);
      expect(spawnSync("sqlite3", [file, statements]).status).toBe(0);
      s = await open();
      const e = await explain(s.db, "c", {
        filter: { _id: { $gt: "x" } },
        sort: { _id: 1 },
        limit: 1,
      });
      expectIndexRange(e, /\(<expr>>\?\)$/);
      expect(
        (
          await s.db
            .collection<{ _id: string }>("c")
            .find({ _id: { $gt: "x" } })
            .sort({ _id: -1 })
            .limit(1)
            .toArray()
        ).map((d) => d._id),
      ).toEqual(["x 2"]);
      await s.client.close();
      await s.server.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
