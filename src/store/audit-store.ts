/**
 * MongoDB implementation of the audit store: collection `audit`, one document per record, `_id`
 * the record's seq. Records are only ever inserted, never updated, so the unique `_id` is the
 * whole concurrency control (see AuditLog for why that is enough on MongoDB and FerretDB v1).
 *
 * The sealed head is one document in `meta` (`_id` "audit_head": seq, mac, keyId, headMac). It
 * is moved only by compare-and-set on all four fields, so a writer replaces exactly the head it
 * read and checked. On FerretDB v1 a filtered update is not atomic (two updates that read the
 * same head can both apply, the later one winning), so the head can end up on the older of two
 * racing writers' records: it may lag, but every value it ever takes names a stored record, so
 * it never leads. AuditLog's rule tolerates the lag.
 *
 * Finding the newest record cheaply: FerretDB v1 answers only `_id` equality without reading the
 * whole collection, so a "highest _id" query grows with the log (on MongoDB it is one index step).
 * head() reads the record the sealed head names and walks forward by `_id` equality until the
 * next seq is absent. Only without a usable head (a new log, or a named record that is gone) does
 * it fall back to the sorted query.
 */
import {
  type Db,
  type Document,
  type Filter,
  MongoBulkWriteError,
  MongoServerError,
} from "mongodb";
import type { AuditQuery, AuditStore, StoredAuditEntry, StoredHead } from "../auth/audit.js";
import {
  type AuditHead,
  type AuditRecord,
  auditOutcomes,
  type SealedHead,
} from "../auth/audit-chain.js";
import { collections } from "./schema.js";

interface AuditDoc {
  _id: number;
  time: Date;
  principal: string;
  action: string;
  namespace: string;
  name: string;
  outcome: string;
  requestId: string;
  remoteAddress: string;
  reason?: string;
  prevMac: string;
  mac: string;
  keyId: string;
}

const stringFields = [
  "principal",
  "action",
  "namespace",
  "name",
  "requestId",
  "remoteAddress",
  "prevMac",
  "mac",
  "keyId",
] as const;

/** The audit store over the `audit` collection of this database. */
/** Records head() walks forward from the sealed head before it looks the newest one up. */
const maxHeadSteps = 16;

export function mongoAuditStore(db: Db): AuditStore {
  const audit = db.collection<AuditDoc>(collections.audit);
  const meta = db.collection<HeadDoc>(collections.meta);
  const headId = "audit_head";

  const sortedHead = () =>
    audit.findOne(numericId, {
      sort: { _id: -1 },
      projection: { _id: 1, mac: 1 },
      // From the primary: a stale head from a secondary would only lose every race.
      readPreference: "primary",
    });
  // "number" matches int32, int64 and double alike; the driver's types list only the exact ones.
  const numericId: Filter<AuditDoc> = { _id: { $type: "number" } as Document };

  return {
    async insert(records) {
      if (records.length === 0) return 0;
      try {
        // Ordered: the server stops at the first failure, so what is stored is always a prefix
        // of the batch and the chain behind it has no hole. Majority: an append resolves before
        // a decrypted value is returned, so it must not be rolled back by a replica set failover
        // (FerretDB accepts and ignores it).
        await audit.insertMany(records.map(toDoc), {
          ordered: true,
          writeConcern: { w: "majority" },
        });
        return records.length;
      } catch (err) {
        const stored = storedBeforeDuplicate(err);
        if (stored === undefined) throw err;
        return stored;
      }
    },

    async sealedHead() {
      const doc = await meta.findOne({ _id: headId }, { readPreference: "primary" });
      return doc ? toStoredHead(doc) : undefined;
    },

    async moveHead(from, to) {
      const fields = { seq: to.seq, mac: to.mac, keyId: to.keyId, headMac: to.headMac };
      if (from === undefined) {
        try {
          await meta.insertOne({ _id: headId, ...fields }, { writeConcern: { w: "majority" } });
          return true;
        } catch (err) {
          // Another writer created it first; the caller reads it and tries again.
          if (err instanceof MongoServerError && err.code === 11000) return false;
          throw err;
        }
      }
      const result = await meta.updateOne(
        { _id: headId, seq: from.seq, mac: from.mac, keyId: from.keyId, headMac: from.headMac },
        { $set: fields },
        { writeConcern: { w: "majority" } },
      );
      return result.matchedCount === 1;
    },

    async replaceHead(to) {
      await meta.replaceOne(
        { _id: headId },
        { seq: to.seq, mac: to.mac, keyId: to.keyId, headMac: to.headMac },
        { upsert: true, writeConcern: { w: "majority" } },
      );
    },

    async macAt(seq) {
      const doc = await audit.findOne(
        { _id: seq },
        { projection: { _id: 1, mac: 1 }, readPreference: "primary" },
      );
      if (!doc) return undefined;
      return typeof doc.mac === "string" ? doc.mac : "";
    },

    async head() {
      const hint = await meta.findOne({ _id: headId }, { readPreference: "primary" });
      let doc: Pick<AuditDoc, "_id" | "mac"> | null =
        hint && Number.isSafeInteger(hint.seq) && hint.seq > 0
          ? await audit.findOne(
              { _id: hint.seq },
              { projection: { _id: 1, mac: 1 }, readPreference: "primary" },
            )
          : null;
      // $type (in sortedHead) keeps a hand-inserted document with a non-numeric _id (which
      // sorts after numbers) from posing as the head.
      doc ??= await sortedHead();
      if (!doc) return undefined;
      // The sealed head is usually at most a batch or two behind; one that stays put (it does
      // not check out and writers leave it as evidence) would make this walk grow with every
      // append, so after a few steps the newest record is looked up instead, and walked from.
      let steps = 0;
      let jumped = false;
      for (;;) {
        if (!jumped && ++steps > maxHeadSteps) {
          jumped = true;
          const newest = await sortedHead();
          if (newest && newest._id > doc._id) doc = newest;
        }
        const next: Pick<AuditDoc, "_id" | "mac"> | null = await audit.findOne(
          { _id: doc._id + 1 },
          { projection: { _id: 1, mac: 1 }, readPreference: "primary" },
        );
        if (!next) break;
        doc = next;
      }
      if (!Number.isSafeInteger(doc._id) || doc._id < 1) {
        throw new Error(`audit: the newest record's seq (${doc._id}) is not a positive integer`);
      }
      // A tampered mac still gets a successor; verify() names the tampered record.
      const head: AuditHead = { seq: doc._id, mac: typeof doc.mac === "string" ? doc.mac : "" };
      return head;
    },

    async find(query, limit) {
      const docs = await audit.find(toFilter(query), { sort: { _id: -1 }, limit }).toArray();
      return docs.map(toEntry);
    },

    async *scan() {
      // Streamed in batches through a cursor: the log may be far larger than memory.
      const cursor = audit.find(numericId, { sort: { _id: 1 }, batchSize: 500 });
      try {
        for await (const doc of cursor) yield toEntry(doc);
      } finally {
        await cursor.close();
      }
    },
  };
}

/** The head document; any field may be missing or of another type after a hand edit. */
interface HeadDoc {
  _id: string;
  seq: number;
  mac?: string;
  keyId?: string;
  headMac?: string;
}

function toStoredHead(doc: Document): StoredHead {
  const seq = doc.seq;
  // 0 is the genesis head, written before record 1.
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
    return { malformed: "its seq is not a whole number" };
  }
  for (const field of ["headMac", "mac", "keyId"] as const) {
    if (doc[field] === undefined) {
      const legacy =
        field === "headMac" ? " (written by a seald that did not seal it, or edited)" : "";
      return { seq, malformed: `it has no ${field}${legacy}` };
    }
    if (typeof doc[field] !== "string") return { seq, malformed: `its ${field} is not a string` };
  }
  const head: SealedHead = { seq, mac: doc.mac, keyId: doc.keyId, headMac: doc.headMac };
  return head;
}

/**
 * For an ordered insertMany that failed on a duplicate `_id`: how many documents were stored
 * before it. Undefined for any other failure, whose outcome the caller cannot know.
 */
function storedBeforeDuplicate(err: unknown): number | undefined {
  if (!(err instanceof MongoBulkWriteError)) return undefined;
  const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
  const first = errors.reduce<(typeof errors)[number] | undefined>(
    (min, e) => (min === undefined || e.index < min.index ? e : min),
    undefined,
  );
  // FerretDB v1 reports a unique violation on insert as 11000 like MongoDB (checked against
  // v1.24.1: writeErrors [{ code: 11000, index: k }], insertedCount k, and the first k stored);
  // only update-caused violations come back as code 1. A write concern error means the stored
  // count is not known to be durable, so it is not treated as a plain lost race.
  if (first?.code !== 11000 || err.err !== undefined) return undefined;
  return err.insertedCount === first.index ? first.index : undefined;
}

function toDoc(r: AuditRecord): AuditDoc {
  return {
    _id: r.seq,
    time: r.time,
    principal: r.principal,
    action: r.action,
    namespace: r.namespace,
    name: r.name,
    outcome: r.outcome,
    requestId: r.requestId,
    remoteAddress: r.remoteAddress,
    // Absent rather than null: the MAC tells an absent reason from an empty one.
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    prevMac: r.prevMac,
    mac: r.mac,
    keyId: r.keyId,
  };
}

function toFilter(q: AuditQuery): Filter<AuditDoc> {
  const filter: Document = {
    _id: q.beforeSeq === undefined ? { $type: "number" } : { $lt: q.beforeSeq },
  };
  if (q.namespace !== undefined) filter.namespace = q.namespace;
  if (q.principal !== undefined) filter.principal = q.principal;
  if (q.action !== undefined) filter.action = q.action;
  if (q.outcome !== undefined) filter.outcome = q.outcome;
  if (q.since !== undefined || q.until !== undefined) {
    filter.time = {
      ...(q.since === undefined ? {} : { $gte: q.since }),
      ...(q.until === undefined ? {} : { $lt: q.until }),
    };
  }
  return filter as Filter<AuditDoc>;
}

/**
 * Maps a document to a record, or, when someone has changed its shape by hand, to a malformed
 * entry that verify() reports; anything beyond shape is the MAC's job.
 */
function toEntry(doc: Document): StoredAuditEntry {
  const seq = doc._id as number;
  const bad = (what: string): StoredAuditEntry => ({ seq, malformed: what });
  if (!(doc.time instanceof Date)) return bad("time is not a date");
  for (const field of stringFields) {
    if (typeof doc[field] !== "string") return bad(`${field} is not a string`);
  }
  if (!(auditOutcomes as readonly string[]).includes(doc.outcome)) {
    return bad("outcome is not a known outcome");
  }
  if (doc.reason !== undefined && typeof doc.reason !== "string") {
    return bad("reason is not a string");
  }
  const d = doc as AuditDoc;
  return {
    seq,
    time: d.time,
    principal: d.principal,
    action: d.action,
    namespace: d.namespace,
    name: d.name,
    outcome: d.outcome as AuditRecord["outcome"],
    requestId: d.requestId,
    remoteAddress: d.remoteAddress,
    ...(d.reason === undefined ? {} : { reason: d.reason }),
    prevMac: d.prevMac,
    mac: d.mac,
    keyId: d.keyId,
  };
}
