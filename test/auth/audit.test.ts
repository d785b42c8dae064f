import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { type Collection, type Document, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuditFilter, AuditLog, type AuditStore } from "../../src/auth/audit.js";
import {
  type AuditEvent,
  type AuditHead,
  type AuditMacKey,
  type AuditOutcome,
  type AuditRecord,
  auditMac,
  genesisMac,
} from "../../src/auth/audit-chain.js";
import { DomainError } from "../../src/domain/errors.js";
import { mongoAuditStore } from "../../src/store/audit-store.js";
import { Database } from "../../src/store/database.js";
import { mongoUri, root, silentLogger, uniqueDatabase } from "../harness/seald.js";

const key = randomBytes(32);
/** A key provider that knows one key. */
const oneKey =
  (id: string, k: Uint8Array) =>
  (keyId = id) =>
    keyId === id ? ({ keyId, key: k } satisfies AuditMacKey) : undefined;

const databases: Database[] = [];
let raw: MongoClient;

/** A fresh database initialised the way seald starts one (indexes from schema.ts included). */
async function freshDatabase(prefix = "audit"): Promise<Database> {
  const database = new Database({
    uri: mongoUri(),
    name: uniqueDatabase(prefix),
    logger: silentLogger(),
  });
  databases.push(database);
  expect(await database.start(AbortSignal.timeout(20_000))).toBe(true);
  return database;
}

/** A second, independent client on the same database: another replica, as far as the log knows. */
async function sameDatabase(of: Database): Promise<Database> {
  const database = new Database({
    uri: mongoUri(),
    name: of.db.databaseName,
    logger: silentLogger(),
  });
  databases.push(database);
  await database.client.connect();
  return database;
}

function newLog(database: Database, getMacKey = oneKey("k1", key)): AuditLog {
  return new AuditLog(mongoAuditStore(database.db), { getMacKey });
}

function rawAudit(database: Database): Collection<Document> {
  return raw.db(database.db.databaseName).collection("audit");
}

function event(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date(Date.UTC(2025, 0, 1, 0, i)),
    principal: "alice",
    action: "secret.securevalues:read",
    namespace: "default",
    name: `s${i}`,
    outcome: "success",
    requestId: `req-${i}`,
    remoteAddress: "10.0.0.1",
    ...overrides,
  };
}

async function appendAll(log: AuditLog, events: AuditEvent[]): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (const e of events) out.push(await log.append(e));
  return out;
}

async function listAll(
  log: AuditLog,
  filter: AuditFilter,
  pageSize: number,
): Promise<AuditRecord[][]> {
  const pages: AuditRecord[][] = [];
  let pageToken: string | undefined;
  do {
    const page = await log.list(filter, { pageSize, ...(pageToken ? { pageToken } : {}) });
    pages.push(page.records);
    pageToken = page.nextPageToken;
    expect(pages.length).toBeLessThan(100);
  } while (pageToken);
  return pages;
}

/** How often consecutive records (in seq order) come from different writers. */
function switches(principals: string[]): number {
  let n = 0;
  for (let i = 1; i < principals.length; i++) if (principals[i] !== principals[i - 1]) n++;
  return n;
}

beforeAll(async () => {
  raw = await MongoClient.connect(mongoUri());
});

afterAll(async () => {
  for (const d of databases) await d.close();
  await raw?.close();
});

describe("append and list", () => {
  const namespaces = ["default", "team-a", "team-b"];
  const principals = ["alice", "bob", "svc-ci"];
  const outcomes: AuditOutcome[] = ["success", "denied", "not_found", "failed"];
  const actions = ["secret.securevalues:read", "secret.securevalues:decrypt"];
  const fixture = Array.from({ length: 36 }, (_, i) =>
    event(i, {
      namespace: namespaces[i % 3] as string,
      principal: principals[Math.floor(i / 3) % 3] as string,
      outcome: outcomes[i % 4] as AuditOutcome,
      action: actions[Math.floor(i / 2) % 2] as string,
      ...(i % 5 === 0 ? { reason: `detail ${i}` } : {}),
    }),
  );
  let database: Database;
  let log: AuditLog;
  let stored: AuditRecord[];

  beforeAll(async () => {
    database = await freshDatabase();
    log = newLog(database);
    stored = await appendAll(log, fixture);
  });

  it("numbers records 1, 2, 3, ... and links each to the previous MAC", async () => {
    expect(stored.map((r) => r.seq)).toEqual(fixture.map((_, i) => i + 1));
    expect(stored[0]?.prevMac).toBe(genesisMac);
    for (let i = 1; i < stored.length; i++) expect(stored[i]?.prevMac).toBe(stored[i - 1]?.mac);
    expect(stored.every((r) => /^[0-9a-f]{64}$/.test(r.mac) && r.keyId === "k1")).toBe(true);
    expect(new Set(stored.map((r) => r.mac)).size).toBe(stored.length);
  });

  it("stores the seq as _id and the reason only when there is one", async () => {
    const docs = await rawAudit(database)
      .find({}, { sort: { _id: 1 } })
      .toArray();
    expect(docs.map((d) => d._id)).toEqual(stored.map((r) => r.seq));
    expect(docs[0]).toMatchObject({
      principal: "alice",
      reason: "detail 0",
      time: fixture[0]?.time,
    });
    expect(docs[1]).not.toHaveProperty("reason");
  });

  it("lists everything newest first, with no next page when it all fits", async () => {
    const page = await log.list({}, { pageSize: 100 });
    expect(page.records.map((r) => r.seq)).toEqual(stored.map((r) => r.seq).reverse());
    expect(page.records[0]).toEqual(stored.at(-1));
    expect(page.nextPageToken).toBeUndefined();
  });

  const byField: [string, AuditFilter, (e: AuditEvent) => boolean][] = [
    ["namespace", { namespace: "team-a" }, (e) => e.namespace === "team-a"],
    ["principal", { principal: "bob" }, (e) => e.principal === "bob"],
    [
      "action",
      { action: "secret.securevalues:decrypt" },
      (e) => e.action === "secret.securevalues:decrypt",
    ],
    ["outcome", { outcome: "denied" }, (e) => e.outcome === "denied"],
    [
      "since (inclusive)",
      { since: new Date(Date.UTC(2025, 0, 1, 0, 30)) },
      (e) => e.time.getTime() >= Date.UTC(2025, 0, 1, 0, 30),
    ],
    [
      "until (exclusive)",
      { until: new Date(Date.UTC(2025, 0, 1, 0, 4)) },
      (e) => e.time.getTime() < Date.UTC(2025, 0, 1, 0, 4),
    ],
    [
      "several at once",
      {
        namespace: "default",
        outcome: "success",
        since: new Date(Date.UTC(2025, 0, 1, 0, 10)),
        until: new Date(Date.UTC(2025, 0, 1, 0, 30)),
      },
      (e) =>
        e.namespace === "default" &&
        e.outcome === "success" &&
        e.time.getTime() >= Date.UTC(2025, 0, 1, 0, 10) &&
        e.time.getTime() < Date.UTC(2025, 0, 1, 0, 30),
    ],
    ["no match", { principal: "nobody" }, () => false],
  ];

  it.each(byField)("filters by %s", async (_, filter, match) => {
    const want = fixture.flatMap((e, i) => (match(e) ? [i + 1] : [])).reverse();
    expect(want.length).toBeLessThan(fixture.length);
    const page = await log.list(filter, { pageSize: 1000 });
    expect(page.records.map((r) => r.seq)).toEqual(want);
    expect(page.nextPageToken).toBeUndefined();
  });

  it("pages by cursor through a filter, without gaps or repeats", async () => {
    // 12 matches in pages of 5 (5, 5, 2) and of 4 (exactly 3 full pages, then no token).
    const want = fixture.flatMap((e, i) => (e.namespace === "team-b" ? [i + 1] : [])).reverse();
    expect(want).toHaveLength(12);
    const fives = await listAll(log, { namespace: "team-b" }, 5);
    expect(fives.map((p) => p.length)).toEqual([5, 5, 2]);
    expect(fives.flat().map((r) => r.seq)).toEqual(want);
    const fours = await listAll(log, { namespace: "team-b" }, 4);
    expect(fours.map((p) => p.length)).toEqual([4, 4, 4]);
    const all = await listAll(log, {}, 7);
    expect(all.flat().map((r) => r.seq)).toEqual(stored.map((r) => r.seq).reverse());
  });

  it("keeps a paged walk stable while others append", async () => {
    const other = await freshDatabase();
    const log2 = newLog(other);
    await appendAll(
      log2,
      Array.from({ length: 10 }, (_, i) => event(i)),
    );
    const first = await log2.list({}, { pageSize: 4 });
    expect(first.records.map((r) => r.seq)).toEqual([10, 9, 8, 7]);
    await appendAll(log2, [event(10), event(11)]);
    const second = await log2.list({}, { pageSize: 4, pageToken: first.nextPageToken as string });
    expect(second.records.map((r) => r.seq)).toEqual([6, 5, 4, 3]);
  });

  it("rejects malformed page tokens, bad page sizes and unknown outcomes as invalid arguments", async () => {
    const notIssued = [
      "not a token!",
      "%%%",
      Buffer.from("[]").toString("base64url"),
      Buffer.from(JSON.stringify({ before: "7" })).toString("base64url"),
      Buffer.from(JSON.stringify({ before: -3 })).toString("base64url"),
      Buffer.from(JSON.stringify({ before: 2.5 })).toString("base64url"),
      Buffer.from("{not json").toString("base64url"),
    ];
    for (const pageToken of notIssued) {
      const err = await log.list({}, { pageSize: 5, pageToken }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DomainError);
      expect(err).toMatchObject({ code: "invalid_argument", message: /page_token/ });
    }
    for (const pageSize of [0, -1, 1001, 2.5]) {
      await expect(log.list({}, { pageSize })).rejects.toMatchObject({
        code: "invalid_argument",
        message: /page_size/,
      });
    }
    await expect(log.list({ outcome: "maybe" }, { pageSize: 5 })).rejects.toMatchObject({
      code: "invalid_argument",
      message: /outcome/,
    });
  });

  it("refuses an event it could not seal faithfully", async () => {
    await expect(log.append(event(1, { outcome: "meh" as AuditOutcome }))).rejects.toThrow(
      /outcome/,
    );
    await expect(log.append(event(1, { time: new Date(Number.NaN) }))).rejects.toThrow(/time/);
    // Nothing was stored for them.
    expect(await rawAudit(database).countDocuments()).toBe(fixture.length);
  });

  it("creates the indexes the filters need", async () => {
    const names = (await rawAudit(database).listIndexes().toArray()).map((i) => i.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "namespace_seq",
        "principal_seq",
        "action_seq",
        "outcome_seq",
        "time",
      ]),
    );
  });
});

describe("verify", () => {
  async function logOf(
    n: number,
  ): Promise<{ database: Database; log: AuditLog; records: AuditRecord[] }> {
    const database = await freshDatabase();
    const log = newLog(database);
    const records = await appendAll(
      log,
      Array.from({ length: n }, (_, i) => event(i, i === 3 ? {} : { reason: `r${i}` })),
    );
    return { database, log, records };
  }

  it("passes on an intact log and on an empty one", async () => {
    const { log } = await logOf(12);
    expect(await log.verify()).toEqual({ ok: true, count: 12 });
    expect(await newLog(await freshDatabase()).verify()).toEqual({ ok: true, count: 0 });
  });

  // Each edit, made straight through the driver by someone without the key, is named at seq 4.
  const edits: [string, Document][] = [
    ["principal", { principal: "mallory" }],
    ["outcome", { outcome: "denied" }],
    ["time", { time: new Date(Date.UTC(2024, 0, 1)) }],
    ["namespace", { namespace: "other" }],
    ["namespace and name (text moved across the boundary)", { namespace: "defaults", name: "3" }],
    ["reason added where there was none", { reason: "" }],
    ["keyId", { keyId: "k1 " }],
    ["prevMac", { prevMac: genesisMac }],
    ["mac", { mac: "f".repeat(64) }],
  ];

  it.each(edits)("names the record whose %s was edited", async (_, set) => {
    const { database, log } = await logOf(8);
    const audit = rawAudit(database);
    expect((await audit.updateOne({ _id: 4 } as Document, { $set: set })).modifiedCount).toBe(1);
    const result = await log.verify();
    expect(result).toMatchObject({ ok: false, seq: 4 });
    if (set.keyId) expect(result).toMatchObject({ problem: /unknown MAC key id "k1 "/ });
    else expect(result).toMatchObject({ problem: /MAC mismatch/ });
  });

  it("names a record whose shape was changed", async () => {
    const { database, log } = await logOf(6);
    await rawAudit(database).updateOne({ _id: 2 } as Document, { $set: { outcome: 17 } });
    expect(await log.verify()).toMatchObject({ ok: false, seq: 2, problem: /malformed.*outcome/ });
  });

  it("names the gap when a record in the middle is deleted", async () => {
    const { database, log } = await logOf(10);
    await rawAudit(database).deleteOne({ _id: 5 } as Document);
    expect(await log.verify()).toEqual({
      ok: false,
      seq: 5,
      problem: "record 5 is missing: the next stored record is 6",
    });
  });

  it("names the first record missing when the log starts late", async () => {
    const { database, log } = await logOf(4);
    await rawAudit(database).deleteMany({ _id: { $lt: 3 } } as Document);
    expect(await log.verify()).toMatchObject({ ok: false, seq: 1, problem: /record 1 is missing/ });
  });

  it("cannot see the last record deleted on its own, but an anchor can", async () => {
    const { database, log } = await logOf(6);
    const anchor = (await log.head()) as AuditHead;
    expect(anchor).toEqual({ seq: 6, mac: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await log.verify({ anchor })).toEqual({ ok: true, count: 6 });
    await rawAudit(database).deleteOne({ _id: 6 } as Document);
    // A truncated chain is still a valid chain: this is the limit of hash chaining.
    expect(await log.verify()).toEqual({ ok: true, count: 5 });
    expect(await log.verify({ anchor })).toMatchObject({
      ok: false,
      seq: 6,
      problem: /removed from the end/,
    });
    // Another replica (with no memory of record 6) carries on from record 5 seamlessly...
    const replica = newLog(await sameDatabase(database));
    expect((await replica.append(event(99))).seq).toBe(6);
    expect(await replica.verify()).toEqual({ ok: true, count: 6 });
    // ...but the new record 6 is not the anchored one.
    expect(await replica.verify({ anchor })).toMatchObject({
      ok: false,
      seq: 6,
      problem: /differs from the anchor/,
    });
  });

  it("fails with the wrong MAC key, and with a key id it cannot find", async () => {
    const { database } = await logOf(3);
    const wrongKey = newLog(database, oneKey("k1", randomBytes(32)));
    expect(await wrongKey.verify()).toMatchObject({ ok: false, seq: 1, problem: /MAC mismatch/ });
    const otherRing = newLog(database, oneKey("k2", key));
    expect(await otherRing.verify()).toMatchObject({
      ok: false,
      seq: 1,
      problem: 'unknown MAC key id "k1"',
    });
    const throwing = newLog(database, (id) => {
      throw new Error(`key ring: no key with id "${id}"`);
    });
    expect(await throwing.verify()).toMatchObject({
      ok: false,
      seq: 1,
      problem: /no key with id "k1"/,
    });
  });

  it("names a well-MACed record that does not follow its predecessor (a fork)", async () => {
    const { database, log, records } = await logOf(3);
    // What a buggy writer holding the key would produce: record 4 chained onto record 2.
    const body = { ...event(50), seq: 4, prevMac: records[1]?.mac as string, keyId: "k1" };
    const forged = { ...body, mac: await auditMac(body, key) };
    const { seq, ...rest } = forged;
    await rawAudit(database).insertOne({ _id: seq, ...rest } as Document);
    expect(await log.verify()).toEqual({
      ok: false,
      seq: 4,
      problem: "prevMac does not match the MAC of record 3",
    });
  });

  it("verifies across a key rotation, each record by its own key id", async () => {
    const database = await freshDatabase();
    const k2 = randomBytes(32);
    let active = "k1";
    const ring = (id?: string): AuditMacKey | undefined => {
      const want = id ?? active;
      return want === "k1"
        ? { keyId: "k1", key }
        : want === "k2"
          ? { keyId: "k2", key: k2 }
          : undefined;
    };
    const log = newLog(database, ring);
    await appendAll(log, [event(0), event(1)]);
    active = "k2";
    const after = await appendAll(log, [event(2), event(3)]);
    expect(after.map((r) => r.keyId)).toEqual(["k2", "k2"]);
    expect(await log.verify()).toEqual({ ok: true, count: 4 });
    expect(await newLog(database, oneKey("k1", key)).verify()).toMatchObject({ ok: false, seq: 3 });
  });
});

describe("lost races", () => {
  it("an ordered insert that reaches a taken seq stores only the records before it", async () => {
    const database = await freshDatabase();
    const donor = newLog(await freshDatabase());
    const records = await appendAll(donor, [event(0), event(1), event(2), event(3)]);
    const store = mongoAuditStore(database.db);
    const { seq, ...taken } = records[2] as AuditRecord;
    await rawAudit(database).insertOne({ _id: seq, ...taken, principal: "taken" } as Document);
    expect(await store.insert(records)).toBe(2);
    const docs = await rawAudit(database)
      .find({}, { sort: { _id: 1 } })
      .toArray();
    expect(docs.map((d) => [d._id, d.principal])).toEqual([
      [1, "alice"],
      [2, "alice"],
      [3, "taken"],
    ]);
    expect(await store.insert([])).toBe(0);
  });

  it("a batch cut short mid-way by another writer keeps its prefix and re-chains the rest", async () => {
    const database = await freshDatabase();
    const other = newLog(await sameDatabase(database));
    const real = mongoAuditStore(database.db);
    let interleaved = false;
    // The real store, with another writer's record landing between the documents of one ordered
    // insert, as the server may let happen.
    const store: AuditStore = {
      head: () => real.head(),
      find: (query, limit) => real.find(query, limit),
      scan: () => real.scan(),
      async insert(records) {
        if (interleaved || records.length < 3) return real.insert(records);
        interleaved = true;
        const first = await real.insert(records.slice(0, 1));
        await other.append(event(100, { principal: "other" }));
        return first + (await real.insert(records.slice(1)));
      },
    };
    const conflicts: number[] = [];
    const log = new AuditLog(store, {
      getMacKey: oneKey("k1", key),
      onConflict: (seq) => conflicts.push(seq),
    });
    const records = await Promise.all([0, 1, 2].map((i) => log.append(event(i))));
    expect(interleaved).toBe(true);
    expect(conflicts).toEqual([2]);
    expect(records.map((r) => [r.seq, r.requestId])).toEqual([
      [1, "req-0"],
      [3, "req-1"],
      [4, "req-2"],
    ]);
    const docs = await rawAudit(database)
      .find({}, { sort: { _id: 1 } })
      .toArray();
    expect(docs.map((d) => d.principal)).toEqual(["alice", "other", "alice", "alice"]);
    expect(await log.verify()).toEqual({ ok: true, count: 4 });
  });
});

describe("concurrent writers", () => {
  it("two logs on two clients, 200 events each, interleaved: one unbroken chain of 400", async () => {
    const a = await freshDatabase("audit_conc");
    const b = await sameDatabase(a);
    let conflicts = 0;
    const make = (database: Database) =>
      new AuditLog(mongoAuditStore(database.db), {
        getMacKey: oneKey("k1", key),
        onConflict: () => {
          conflicts++;
        },
      });
    const logs = { a: make(a), b: make(b) };
    const write = async (who: "a" | "b") => {
      const records: AuditRecord[] = [];
      for (let i = 0; i < 200; ) {
        const burst = 1 + (i % 7);
        const batch: Promise<AuditRecord>[] = [];
        for (let j = 0; j < burst && i < 200; j++, i++) {
          batch.push(logs[who].append(event(i, { principal: who, requestId: `${who}-${i}` })));
        }
        records.push(...(await Promise.all(batch)));
      }
      return records;
    };
    const [fromA, fromB] = await Promise.all([write("a"), write("b")]);

    expect(await logs.a.verify()).toEqual({ ok: true, count: 400 });
    // Each writer's events are stored once each, in the order it appended them.
    for (const [who, records] of [
      ["a", fromA],
      ["b", fromB],
    ] as const) {
      expect(records.map((r) => r.requestId)).toEqual(
        Array.from({ length: 200 }, (_, i) => `${who}-${i}`),
      );
      const seqs = records.map((r) => r.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
    const docs = await rawAudit(a)
      .find({}, { sort: { _id: 1 } })
      .toArray();
    expect(docs.map((d) => d._id)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(new Set(docs.map((d) => d.requestId)).size).toBe(400);
    // The race really happened: seqs were contested and the writers' records interleave.
    expect(conflicts).toBeGreaterThan(0);
    expect(switches(docs.map((d) => d.principal as string))).toBeGreaterThan(2);
  });

  it("two OS processes appending at once: one unbroken chain with every event exactly once", async () => {
    const database = await freshDatabase("audit_proc");
    const perProcess = 150;
    const labels = ["p1", "p2"];
    const writers = labels.map((label) => {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "test/auth/audit-writer.ts",
          mongoUri(),
          database.db.databaseName,
          label,
          String(perProcess),
          key.toString("hex"),
          labels.find((other) => other !== label) ?? "",
        ],
        { cwd: root, stdio: ["pipe", "pipe", "pipe"] },
      );
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (s: string) => {
        stderr += s;
      });
      const lines = createInterface({ input: child.stdout });
      const output: string[] = [];
      const ready = new Promise<void>((resolve, reject) => {
        lines.on("line", (line) => {
          output.push(line);
          if (line === "ready") resolve();
        });
        child.once("exit", (code) => reject(new Error(`${label} exited ${code}: ${stderr}`)));
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      return { child, ready, exited, output, stderr: () => stderr };
    });
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.child.stdin.end("go\n");
    const codes = await Promise.all(writers.map((w) => w.exited));
    expect(codes, writers.map((w) => w.stderr()).join("\n")).toEqual([0, 0]);
    const summaries = writers.map(
      (w) => JSON.parse(w.output.at(-1) as string) as { done: number; conflicts: number },
    );
    expect(summaries.map((s) => s.done)).toEqual([perProcess, perProcess]);

    expect(await newLog(database).verify()).toEqual({ ok: true, count: 2 * perProcess });
    const docs = await rawAudit(database)
      .find({}, { sort: { _id: 1 } })
      .toArray();
    expect(new Set(docs.map((d) => d.requestId)).size).toBe(2 * perProcess);
    for (const label of ["p1", "p2"]) {
      const mine = docs.filter((d) => d.principal === label).map((d) => d.requestId);
      expect(mine).toEqual(Array.from({ length: perProcess }, (_, i) => `${label}-${i}`));
    }
    expect(summaries.reduce((n, s) => n + s.conflicts, 0)).toBeGreaterThan(0);
    expect(switches(docs.map((d) => d.principal as string))).toBeGreaterThan(2);
  }, 60_000);
});
