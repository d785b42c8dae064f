/**
 * MongoDB implementation of the provider store: collection `providers`, `_id` the provider's name
 * (so every lookup is an `_id` equality, which FerretDB v1 pushes down to SQLite, and `_id` order
 * is name order for keyset paging). A deleted provider stays as a tombstone (`deleted: true`), so
 * that the default provider, created when absent, is not brought back after an operator deleted
 * it. Every write is one single-document operation. Labels and annotations are stored as the
 * secrets' are (see secret-store.ts): {k, v} pairs, since keys such as "sensu.io/managed_by" may
 * not be field names, and flat `labelKeys` / `labelPairs` ("k=v") copies that selectors query.
 * A document written before providers had labels has none of these fields: it reads as empty.
 */
import type { Db, Filter } from "mongodb";
import type {
  ProviderRecord,
  ProviderRequirement,
  ProviderStore,
  ProviderType,
} from "../service/providers.js";
import { isDuplicateKey } from "./access-store.js";
import { escapeRegex, labelFields, labelFilter, map, type Pair, pairs } from "./labels.js";
import { collections } from "./schema.js";

interface ProviderDoc {
  _id: string;
  type: string;
  labels?: Pair[];
  labelKeys?: string[];
  labelPairs?: string[];
  annotations?: Pair[];
  deleted: boolean;
  createTime: Date;
  updateTime: Date;
  createdBy: string;
  updatedBy: string;
}

function toDoc(r: ProviderRecord): ProviderDoc {
  return {
    _id: r.name,
    type: r.type,
    ...labelFields(r.labels),
    annotations: pairs(r.annotations),
    deleted: false,
    createTime: r.createTime,
    updateTime: r.updateTime,
    createdBy: r.createdBy,
    updatedBy: r.updatedBy,
  };
}

function fromDoc(d: ProviderDoc): ProviderRecord {
  return {
    name: d._id,
    type: d.type as ProviderType,
    labels: map(d.labels),
    annotations: map(d.annotations),
    createTime: d.createTime,
    updateTime: d.updateTime,
    createdBy: d.createdBy,
    updatedBy: d.updatedBy,
  };
}

function nameFilter(r: ProviderRequirement): Filter<ProviderDoc> {
  const first = r.values[0] ?? "";
  switch (r.op) {
    case "=":
      return { _id: first };
    case "!=":
      return { _id: { $ne: first } };
    case "in":
      return { _id: { $in: [...r.values] } };
    case "notin":
      return { _id: { $nin: [...r.values] } };
    case "matches":
      // A substring test: the value is escaped, never a pattern.
      return { _id: { $regex: escapeRegex(first) } };
  }
}

/** Creates the MongoDB provider store. */
export function mongoProviderStore(db: Db): ProviderStore {
  const providers = db.collection<ProviderDoc>(collections.providers);

  return {
    async insertIfAbsent(record) {
      try {
        await providers.insertOne(toDoc(record));
      } catch (err) {
        // Present already, live or as a tombstone: either way nothing to do.
        if (!isDuplicateKey(err)) throw err;
      }
    },

    async get(name) {
      const d = await providers.findOne({ _id: name });
      return d && !d.deleted ? fromDoc(d) : undefined;
    },

    async list(q) {
      const and: Filter<ProviderDoc>[] = [{ deleted: false }];
      for (const r of q.names) and.push(nameFilter(r));
      for (const r of q.labels) and.push(labelFilter(r) as Filter<ProviderDoc>);
      if (q.types.length > 0) and.push({ type: { $in: [...q.types] } });
      if (q.after !== undefined) and.push({ _id: { $gt: q.after } });
      const docs = await providers.find({ $and: and }).sort({ _id: 1 }).limit(q.limit).toArray();
      return docs.map(fromDoc);
    },

    async put(record) {
      const { _id, createTime, createdBy, ...rest } = toDoc(record);
      // A live provider keeps its creation facts; a new one or a tombstone takes these.
      const live = await providers.findOne({ _id });
      if (live && !live.deleted) {
        await providers.updateOne({ _id }, { $set: rest });
        return "updated";
      }
      try {
        await providers.replaceOne({ _id }, { ...rest, createTime, createdBy }, { upsert: true });
      } catch (err) {
        // Another writer created it between the read and the upsert: theirs is live now.
        if (!isDuplicateKey(err)) throw err;
        await providers.updateOne({ _id }, { $set: rest });
        return "updated";
      }
      return "created";
    },

    async delete(name) {
      const result = await providers.updateOne(
        { _id: name, deleted: false },
        { $set: { deleted: true, updateTime: new Date() } },
      );
      return result.matchedCount > 0;
    },
  };
}
