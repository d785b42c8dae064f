import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { PassThrough, Writable } from "node:stream";
import { type Collection, type Document, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AuditFilter,
  AuditLog,
  type AuditRecordSink,
  type AuditStore,
  parseAnchor,
} from "../../src/auth/audit.js";
import {
  type AuditEvent,
  type AuditHead,
  type AuditMacKey,
  type AuditOutcome,
  type AuditRecord,
  auditMac,
  genesisMac,
  headMacWith,
} from "../../src/auth/audit-chain.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import { DomainError } from "../../src/domain/errors.js";
import { auditFileSink, auditStdoutSink } from "../../src/store/audit-file.js";
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

function newLog(
  database: Database,
  getMacKey = oneKey("k1", key),
  more: { sink?: AuditRecordSink; onHeadProblem?: (problem: string) => void } = {},
): AuditLog {
  return new AuditLog(mongoAuditStore(database.db), { getMacKey, ...more });
}

function rawAudit(database: Database): Collection<Document> {
  return raw.db(database.db.databaseName).collection("audit");
}

/** The collection holding the sealed head document (`_id` "audit_head"). */
function rawMeta(database: Database): Collection<{ _id: string } & Document> {
  return raw.db(database.db.databaseName).collection("meta");
}

const headFilter = { _id: "audit_head" };

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
    expect(await log.verify()).toMatchObject({ ok: true, count: 12 });
    expect(await newLog(await freshDatabase()).verify()).toMatchObject({ ok: true, count: 0 });
  });

  // Each edit, made straight through the driver by someone without the key, is named at seq 4.
  const edits: [string, Document][] = [
    ["principal", { principal: "mallory" }],
    ["action", { action: "secret.securevalues:decrypt" }],
    ["requestId", { requestId: "req-other" }],
    ["remoteAddress", { remoteAddress: "10.0.0.2" }],
    ["name", { name: "s99" }],
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

  it("keeps a sealed head on the newest record, and passes a head that lags the records", async () => {
    const { database, log, records } = await logOf(5);
    const last = records.at(-1) as AuditRecord;
    const doc = await rawMeta(database).findOne(headFilter);
    expect(doc).toMatchObject({ seq: 5, mac: last.mac, keyId: "k1" });
    const sodium = await loadSodium();
    expect(doc?.headMac).toBe(headMacWith(sodium, { seq: 5, mac: last.mac, keyId: "k1" }, key));
    expect(await log.verify()).toEqual({ ok: true, count: 5, head: { seq: 5, mac: last.mac } });
    // What an append in flight looks like (records stored, head not yet moved): still intact.
    const body = { ...event(60), seq: 6, prevMac: last.mac, keyId: "k1" };
    const { seq, ...rest } = { ...body, mac: await auditMac(body, key) };
    await rawAudit(database).insertOne({ _id: seq, ...rest } as Document);
    expect(await log.verify()).toMatchObject({ ok: true, count: 6, head: { seq: 6 } });
    // The next append moves the head past it.
    expect((await log.append(event(61))).seq).toBe(7);
    expect(await rawMeta(database).findOne(headFilter)).toMatchObject({ seq: 7 });
  });

  it("names records deleted from the end: the head names a record the log no longer has", async () => {
    const { database, log } = await logOf(6);
    await rawAudit(database).deleteMany({ _id: { $gte: 5 } } as Document);
    expect(await log.verify()).toEqual({
      ok: false,
      seq: 5,
      problem:
        "the head names record 6 but the log ends at record 4: records were removed from the end",
    });
  });

  it("keeps naming a cut end after later appends fill the seqs again", async () => {
    const { database, records } = await logOf(6);
    await rawAudit(database).deleteMany({ _id: { $gte: 5 } } as Document);
    // Another replica (with no memory of records 5 and 6) carries on from record 4...
    const problems: string[] = [];
    const replica = newLog(await sameDatabase(database), oneKey("k1", key), {
      onHeadProblem: (p) => problems.push(p),
    });
    const refilled = await appendAll(replica, [event(90), event(91), event(92)]);
    expect(refilled.map((r) => r.seq)).toEqual([5, 6, 7]);
    // ...and the writers leave the head on the lost record 6 instead of hiding the cut.
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join("\n")).toMatch(/records were removed from the end/);
    expect(await rawMeta(database).findOne(headFilter)).toMatchObject({
      seq: 6,
      mac: records[5]?.mac,
    });
    expect(await replica.verify()).toEqual({
      ok: false,
      seq: 6,
      problem:
        "record 6 is not the record the head names (its MAC differs): records were removed from the end and others written in their place",
    });
  });

  it("names a deleted head, and no writer recreates it", async () => {
    const { database, log } = await logOf(4);
    await rawMeta(database).deleteOne(headFilter);
    const missing = {
      ok: false,
      seq: 4,
      problem:
        "the head is missing while 4 records exist: it was deleted, so records may have been removed from the end",
    };
    expect(await log.verify()).toEqual(missing);
    const problems: string[] = [];
    const writer = newLog(database, oneKey("k1", key), { onHeadProblem: (p) => problems.push(p) });
    await writer.append(event(40));
    expect(problems).toEqual([expect.stringMatching(/head is missing while records exist/)]);
    expect(await rawMeta(database).findOne(headFilter)).toBeNull();
    expect(await log.verify()).toMatchObject({ ok: false, seq: 5, problem: /head is missing/ });
  });

  // The last column: whether the next writer sees it. A head ahead of the records it just wrote
  // looks to a writer like a head other writers moved on; verify is what names it.
  const headEdits: [string, Document, RegExp, number][] = [
    ["seq moved back", { seq: 2 }, /head's MAC does not verify/, 1],
    ["seq moved forward", { seq: 9 }, /head's MAC does not verify/, 0],
    ["mac", { mac: "e".repeat(64) }, /head's MAC does not verify/, 1],
    ["headMac", { headMac: "0".repeat(64) }, /head's MAC does not verify/, 1],
    ["keyId", { keyId: "k9" }, /head's unknown MAC key id "k9"/, 1],
    ["seq made a string", { seq: "6" }, /head is malformed: its seq is not a whole number/, 1],
  ];

  it.each(headEdits)("names a head whose %s was edited", async (_, set, problem, reports) => {
    const { database, log } = await logOf(6);
    const problems: string[] = [];
    const writer = newLog(database, oneKey("k1", key), { onHeadProblem: (p) => problems.push(p) });
    expect((await rawMeta(database).updateOne(headFilter, { $set: set })).modifiedCount).toBe(1);
    expect(await log.verify()).toMatchObject({ ok: false, problem });
    // A writer does not move a head that does not check out: the evidence stays.
    await writer.append(event(70));
    expect(problems).toHaveLength(reports);
    expect(await log.verify()).toMatchObject({ ok: false, problem });
  });

  it("names a head without a headMac (as a seald before sealed heads left it)", async () => {
    const { database, log } = await logOf(3);
    await rawMeta(database).replaceOne(headFilter, { seq: 3 });
    expect(await log.verify()).toMatchObject({
      ok: false,
      seq: 3,
      problem: /the head is malformed: it has no headMac/,
    });
  });

  it("reseals the head on request once every record verifies, and then writers move it again", async () => {
    const { database, log, records } = await logOf(4);
    // As a seald before sealed heads left it: a bare hint.
    await rawMeta(database).replaceOne(headFilter, { seq: 4 });
    await rawAudit(database).updateOne({ _id: 2 } as Document, { $set: { name: "x" } });
    // A chain that does not verify is not resealed over.
    expect(await log.verify({ resealHead: true })).toMatchObject({ ok: false, seq: 2 });
    expect(await rawMeta(database).findOne(headFilter)).toEqual({ _id: "audit_head", seq: 4 });
    await rawAudit(database).updateOne({ _id: 2 } as Document, { $set: { name: "s1" } });
    expect(await log.verify({ resealHead: true })).toEqual({
      ok: true,
      count: 4,
      head: { seq: 4, mac: records[3]?.mac },
      replacedHeadProblem: expect.stringMatching(/^the head is malformed: it has no headMac/),
    });
    expect(await log.verify()).toMatchObject({ ok: true, count: 4 });
    const next = await log.append(event(50));
    expect(await rawMeta(database).findOne(headFilter)).toMatchObject({ seq: 5, mac: next.mac });
  });

  it("cannot see a cut hidden behind an older genuine head put back, but an outside anchor can", async () => {
    const { database, log } = await logOf(3);
    const oldHead = await rawMeta(database).findOne(headFilter);
    await appendAll(log, [event(10), event(11), event(12)]);
    const anchor = (await log.head()) as AuditHead;
    expect(anchor.seq).toBe(6);
    expect(await log.verify({ anchor })).toMatchObject({ ok: true, count: 6 });
    // Someone who copied the head when the log ended at 3 puts it back and cuts records 4 to 6:
    // what the database holds is exactly an older log, which is the limit of any anchor in it.
    await rawAudit(database).deleteMany({ _id: { $gt: 3 } } as Document);
    await rawMeta(database).replaceOne(headFilter, oldHead as Document);
    expect(await log.verify()).toMatchObject({ ok: true, count: 3 });
    expect(await log.verify({ anchor })).toEqual({
      ok: false,
      seq: 4,
      problem:
        "the log ends at record 3 but the anchor names record 6: records were removed from the end",
    });
    // Refilled, the records are not the anchored ones either.
    await appendAll(log, [event(20), event(21), event(22)]);
    expect(await log.verify({ anchor })).toMatchObject({
      ok: false,
      seq: 6,
      problem: /record 6 differs from the anchor given for it/,
    });
  });

  it("parses anchors as <seq>:<mac> and nothing else", () => {
    const mac = "a".repeat(64);
    expect(parseAnchor("anchor", `12:${mac}`)).toEqual({ seq: 12, mac });
    for (const bad of ["", "12", `0:${mac}`, `-1:${mac}`, `1.5:${mac}`, `12:${mac}0`, "x:y"]) {
      expect(() => parseAnchor("anchor", bad)).toThrow(/anchor/);
    }
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
    expect(await log.verify()).toMatchObject({ ok: true, count: 4 });
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
      sealedHead: () => real.sealedHead(),
      moveHead: (from, to) => real.moveHead(from, to),
      replaceHead: (to) => real.replaceHead(to),
      macAt: (seq) => real.macAt(seq),
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
    expect(await log.verify()).toMatchObject({ ok: true, count: 4 });
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
    // A third client verifies over and over while both write: a head that lags the records
    // (appends in flight, or the older of two racing head moves winning on FerretDB) is normal,
    // and no verify may report a problem.
    const verifier = newLog(await sameDatabase(a));
    let writing = true;
    const verdicts: unknown[] = [];
    const verifying = (async () => {
      while (writing) verdicts.push(await verifier.verify());
    })();
    const [fromA, fromB] = await Promise.all([write("a"), write("b")]).finally(() => {
      writing = false;
    });
    await verifying;
    expect(verdicts.length).toBeGreaterThan(1);
    expect(verdicts.filter((v) => !(v as { ok: boolean }).ok)).toEqual([]);

    expect(await logs.a.verify()).toMatchObject({ ok: true, count: 400 });
    // The head never leads: it names a stored record, at most the newest (one more append with
    // nobody racing puts it exactly on the newest, below).
    const head = await rawMeta(a).findOne(headFilter);
    expect(head?.seq).toBeLessThanOrEqual(400);
    expect(head?.mac).toBe((await rawAudit(a).findOne({ _id: head?.seq } as Document))?.mac);
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
    const after = await logs.b.append(event(400));
    expect(await rawMeta(a).findOne(headFilter)).toMatchObject({ seq: 401, mac: after.mac });
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

    expect(await newLog(database).verify()).toMatchObject({ ok: true, count: 2 * perProcess });
    const head = await rawMeta(database).findOne(headFilter);
    expect(head?.seq).toBeGreaterThan(0);
    expect(head?.seq).toBeLessThanOrEqual(2 * perProcess);
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

describe("the MAC encoding", () => {
  // Fixed inputs and MACs computed once (and cross-checked with Python's hashlib.blake2b over
  // the encoding documented in audit-chain.ts): any change to the encoding, a field left out of
  // the MAC or fields reordered, fails here, and would make every stored MAC stop verifying.
  const fixedKey = Uint8Array.from({ length: 32 }, (_, i) => i);
  const body = {
    seq: 7,
    prevMac: "ab".repeat(32),
    keyId: "k1",
    time: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678)),
    principal: "alice",
    action: "secret.securevalues:decrypt",
    namespace: "team-a",
    name: "db",
    outcome: "denied" as const,
    requestId: "req-42",
    remoteAddress: "10.1.2.3",
    reason: "no grant",
  };

  it("gives a record the known MAC, with and without a reason", async () => {
    expect(await auditMac(body, fixedKey)).toBe(
      "615ea233a92a312c772114a77a890a4201e57f9712939723c4a39221fe27c86c",
    );
    const { reason: _, ...noReason } = body;
    expect(await auditMac(noReason, fixedKey)).toBe(
      "a5941170fec5b243ad0f28006b075e44e662912414eb0d9e10cb029e3d499d21",
    );
  });

  it("gives a head the known MAC", async () => {
    const sodium = await loadSodium();
    expect(headMacWith(sodium, { seq: 7, mac: "cd".repeat(32), keyId: "k1" }, fixedKey)).toBe(
      "d6415aaf1b9f524cddc40c86baf80a96a69180b58ece40520ce86593af3beee7",
    );
  });
});

describe("the record sink", () => {
  it("receives every record as a JSON line in seq order before the append resolves", async () => {
    const database = await freshDatabase();
    const path = join(mkdtempSync(join(tmpdir(), "seald-audit-")), "audit.jsonl");
    const sink = await auditFileSink(path);
    const lines = () => readFileSync(path, "utf8").split("\n").filter(Boolean);
    const log = newLog(database, oneKey("k1", key), {
      sink: {
        async write(records) {
          await sink.write(records);
        },
      },
    });
    const first = await log.append(event(0, { reason: "why" }));
    // Resolved means written: the line is there without waiting.
    expect(lines().map((l) => JSON.parse(l))).toEqual([
      {
        type: "audit_record",
        seq: 1,
        time: first.time.toISOString(),
        principal: "alice",
        action: "secret.securevalues:read",
        namespace: "default",
        name: "s0",
        outcome: "success",
        requestId: "req-0",
        remoteAddress: "10.0.0.1",
        reason: "why",
        prevMac: genesisMac,
        mac: first.mac,
        keyId: "k1",
      },
    ]);
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(event(i + 1))));
    const seqs = lines().map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    const lastLine = JSON.parse(lines().at(-1) as string) as AuditHead;
    expect(await log.verify({ anchor: { seq: lastLine.seq, mac: lastLine.mac } })).toMatchObject({
      ok: true,
      count: 21,
    });
    await sink.close();
  });

  it("writes whole lines to a stream for stdout, and fails the append when the stream errors", async () => {
    const database = await freshDatabase();
    const out = new PassThrough();
    let text = "";
    out.setEncoding("utf8").on("data", (s: string) => {
      text += s;
    });
    const log = newLog(database, oneKey("k1", key), { sink: auditStdoutSink(out) });
    const records = await Promise.all([0, 1, 2].map((i) => log.append(event(i))));
    expect(text.endsWith("\n")).toBe(true);
    expect(
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l).mac),
    ).toEqual(records.map((r) => r.mac));
    const broken = new Writable({
      write(_chunk, _encoding, callback) {
        callback(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
      },
    });
    broken.on("error", () => {});
    const failing = newLog(database, oneKey("k1", key), { sink: auditStdoutSink(broken) });
    await expect(failing.append(event(3))).rejects.toMatchObject({ code: "EPIPE" });
  });

  it("fails the append when the sink cannot be written, though the record stays chained", async () => {
    const database = await freshDatabase();
    const full = await auditFileSink("/dev/full");
    const log = newLog(database, oneKey("k1", key), { sink: full });
    await expect(log.append(event(0))).rejects.toMatchObject({ code: "ENOSPC" });
    await expect(log.append(event(1))).rejects.toMatchObject({ code: "ENOSPC" });
    await full.close();
    expect(await rawAudit(database).countDocuments()).toBe(2);
    expect(await log.verify()).toMatchObject({ ok: true, count: 2 });
  });
});
