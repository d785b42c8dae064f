/**
 * MongoDB implementation of the secret store.
 *
 * - `secrets`: one head record per secret, with the sealed current value. Its `_id` is
 *   "<namespace> <name>" (neither may contain a space): FerretDB v1 pushes only `_id` equality
 *   down to SQLite and scans the collection for anything else (measured on 2,000 records:
 *   2.6 ms by `_id`, 17 ms by an indexed (namespace, name)), and the space, lower than every
 *   character a name may hold, makes `_id` order (namespace, name) order. So a list is a range
 *   of `_id` too, which the embedded FerretDB, as seald builds it, reads in order from an index
 *   and stops at the limit (see list()).
 * - `secret_versions`: sealed older values, `_id` "<uid>/<version>", the last N kept.
 * - `namespace_keys`: one sealing key pair per namespace, `_id` the namespace.
 *
 * Every write is a single-document operation, so it runs unchanged on MongoDB and on FerretDB v1
 * (no transactions). Compare-and-set cannot rest on a filtered updateOne, though: FerretDB v1
 * (SQLite) evaluates the filter and writes in separate steps, so two updates filtered on the same
 * resource version both match (measured: 29 races out of 30). Inserts on a unique key are atomic
 * on both, so every change of a head record first claims its transition by inserting
 * `secret_transitions` {_id: "<uid>/<resource version it starts from>", next}: one writer wins
 * the claim, the others get a duplicate key and report a conflict. The winner applies `next` to
 * the head and removes the claim. A claim whose writer died before applying it still carries
 * `next`, so the next writer to meet it (after staleClaimMs) applies it on the dead writer's
 * behalf; until then readers simply see the state before that write. Labels are stored as {k, v} pairs, because keys such as
 * "app.kubernetes.io/name" or "$x" may not be field names; `labelKeys` and `labelPairs`
 * ("k=v"; keys cannot contain "=") are flat copies that make selectors plain equality and $in
 * queries the database evaluates.
 */
import { Binary, type Db, type Document, type Filter } from "mongodb";
import { headMacHolds, macHead } from "../crypto/head-mac.js";
import type { KeyRing } from "../crypto/keyring.js";
import { MalformedRecordError } from "../domain/errors.js";
import type { Envelope, NamespaceKeyPair } from "../domain/sealed.js";
import type { SecretRecord } from "../domain/secret.js";
import type { FieldRequirement } from "../domain/selector.js";
import type { DamagedSecret, ListQuery, SecretStore } from "../service/ports.js";
import { isDuplicateKey } from "./access-store.js";
import { escapeRegex, labelFields, labelFilter, map, type Pair, pairs } from "./labels.js";
import { collections } from "./schema.js";

export interface SealedDoc {
  kekId: string;
  dekNonce: Binary;
  wrappedDek: Binary;
  nonce: Binary;
  ciphertext: Binary;
}

interface SecretDoc {
  _id: string;
  uid: string;
  namespace: string;
  name: string;
  labels: Pair[];
  labelKeys: string[];
  labelPairs: string[];
  annotations: Pair[];
  description: string;
  decrypters: string[];
  keeper: string;
  ref: string;
  version: number;
  rv: string;
  createTime: Date;
  updateTime: Date;
  createdBy: string;
  updatedBy: string;
  sealed: SealedDoc | null;
  /** The head's integrity MAC (crypto/head-mac.ts) and the master key id of its subkey. */
  macKeyId: string;
  mac: string;
}

export interface VersionDoc {
  _id: string;
  uid: string;
  /** The secret's namespace and name, which the sealed value is bound to. */
  namespace: string;
  name: string;
  version: number;
  sealed: SealedDoc;
}

interface TransitionDoc {
  _id: string;
  /** The head record's _id. */
  head: string;
  from: string;
  /** The head after the transition, or null for a delete. */
  next: SecretDoc | null;
  createTime: Date;
}

export interface NamespaceKeyDoc {
  _id: string;
  keyId: string;
  publicKey: Binary;
  wrapped: { kekId: string; nonce: Binary; ciphertext: Binary };
  /** The key pair before the last rotation, accepted until validUntil. */
  previous?: {
    keyId: string;
    publicKey: Binary;
    wrapped: { kekId: string; nonce: Binary; ciphertext: Binary };
    validUntil: Date;
  };
}

export function toKeyFields(pair: NamespaceKeyPair): Omit<NamespaceKeyDoc, "_id" | "previous"> {
  return {
    keyId: pair.keyId,
    publicKey: bin(pair.publicKey),
    wrapped: {
      kekId: pair.wrappedPrivateKey.kekId,
      nonce: bin(pair.wrappedPrivateKey.nonce),
      ciphertext: bin(pair.wrappedPrivateKey.ciphertext),
    },
  };
}

export const bin = (b: Uint8Array) => new Binary(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const bytes = (b: Binary) => new Uint8Array(b.buffer);

export function toSealed(e: Envelope): SealedDoc {
  return {
    kekId: e.kekId,
    dekNonce: bin(e.dekNonce),
    wrappedDek: bin(e.wrappedDek),
    nonce: bin(e.nonce),
    ciphertext: bin(e.ciphertext),
  };
}

export function fromSealed(s: SealedDoc): Envelope {
  return {
    kekId: s.kekId,
    dekNonce: bytes(s.dekNonce),
    wrappedDek: bytes(s.wrappedDek),
    nonce: bytes(s.nonce),
    ciphertext: bytes(s.ciphertext),
  };
}

/** The head record's `_id`. */
export function headId(namespace: string, name: string): string {
  return `${namespace} ${name}`;
}

function toDoc(ring: KeyRing, r: SecretRecord): SecretDoc {
  const { keyId, mac } = macHead(ring, r);
  return {
    _id: headId(r.namespace, r.name),
    uid: r.uid,
    namespace: r.namespace,
    name: r.name,
    ...labelFields(r.labels),
    annotations: pairs(r.annotations),
    description: r.description,
    decrypters: [...r.decrypters],
    keeper: r.keeper,
    ref: r.ref,
    version: r.version,
    rv: r.resourceVersion,
    createTime: r.createTime,
    updateTime: r.updateTime,
    createdBy: r.createdBy,
    updatedBy: r.updatedBy,
    sealed: r.envelope ? toSealed(r.envelope) : null,
    macKeyId: keyId,
    mac,
  };
}

/**
 * The record of a stored head, or MalformedRecordError when the document does not have the
 * stored shape (edited by hand, or damaged) or its integrity MAC does not hold (edited, or
 * rebuilt from history). Such a head spoils only itself: a decrypt answers "decryption failed"
 * for its name, and lists skip it.
 */
function readHead(ring: KeyRing, id: string, doc: Document): SecretRecord {
  const problem = shapeProblem(doc);
  const [namespace, name] = splitHeadId(id);
  if (problem) throw new MalformedRecordError("secret", name, problem);
  const record = fromDoc(doc as SecretDoc);
  if (typeof doc.mac !== "string" || typeof doc.macKeyId !== "string")
    throw new MalformedRecordError("secret", name, "the head carries no integrity MAC");
  if (record.namespace !== namespace || record.name !== name)
    throw new MalformedRecordError("secret", name, "namespace and name differ from its _id");
  if (!headMacHolds(ring, record, { keyId: doc.macKeyId, mac: doc.mac }))
    throw new MalformedRecordError("secret", name, "the head's integrity MAC does not hold");
  return record;
}

/** The (namespace, name) of a head `_id`. */
function splitHeadId(id: string): [string, string] {
  const space = id.indexOf(" ");
  return space < 0 ? ["", id] : [id.slice(0, space), id.slice(space + 1)];
}

const isString = (v: unknown): v is string => typeof v === "string";
const isPairList = (v: unknown) =>
  Array.isArray(v) &&
  v.every((p) => typeof p === "object" && p !== null && isString(p.k) && isString(p.v));

/** What is wrong with a head document's shape, or undefined when it has the stored one. */
function shapeProblem(d: Document): string | undefined {
  for (const field of ["uid", "namespace", "name", "description", "keeper", "ref", "rv"]) {
    if (!isString(d[field])) return `${field} is not a string`;
  }
  for (const field of ["uid", "keeper", "rv"]) if (d[field] === "") return `${field} is empty`;
  for (const field of ["createdBy", "updatedBy"]) {
    if (!isString(d[field])) return `${field} is not a string`;
  }
  if (!Number.isSafeInteger(d.version) || d.version < 1) return "version is not a positive integer";
  if (!isPairList(d.labels)) return "labels are not a list of {k, v} strings";
  if (!isPairList(d.annotations)) return "annotations are not a list of {k, v} strings";
  if (!Array.isArray(d.decrypters) || !d.decrypters.every(isString))
    return "decrypters are not a list of strings";
  for (const field of ["createTime", "updateTime"]) {
    if (!(d[field] instanceof Date)) return `${field} is not a date`;
  }
  if (d.keeper === "system") {
    const problem = sealedProblem(d.sealed);
    if (problem) return problem;
  } else if (d.sealed !== null) return "a secret held by an external keeper carries a sealed value";
  return undefined;
}

/** What is wrong with a stored sealed value's shape, or undefined. */
function sealedProblem(s: unknown): string | undefined {
  if (typeof s !== "object" || s === null) return "the sealed value is missing";
  const sealed = s as Record<string, unknown>;
  if (!isString(sealed.kekId)) return "the sealed value's kekId is not a string";
  for (const field of ["dekNonce", "wrappedDek", "nonce", "ciphertext"]) {
    if (!(sealed[field] instanceof Binary)) return `the sealed value's ${field} is not binary`;
  }
  return undefined;
}

function fromDoc(d: SecretDoc): SecretRecord {
  return {
    namespace: d.namespace,
    name: d.name,
    uid: d.uid,
    labels: map(d.labels),
    annotations: map(d.annotations),
    description: d.description,
    decrypters: d.decrypters,
    keeper: d.keeper,
    ref: d.ref,
    version: d.version,
    resourceVersion: d.rv,
    createTime: d.createTime,
    updateTime: d.updateTime,
    createdBy: d.createdBy,
    updatedBy: d.updatedBy,
    envelope: d.sealed ? fromSealed(d.sealed) : undefined,
  };
}

const fieldPaths = {
  namespace: "namespace",
  name: "name",
  keeper: "keeper",
  ref: "ref",
  decrypter: "decrypters",
} as const;

function fieldFilter(r: FieldRequirement): Filter<SecretDoc> {
  const path = fieldPaths[r.field];
  const first = r.values[0] ?? "";
  switch (r.op) {
    case "=":
      return { [path]: first };
    case "!=":
      return { [path]: { $ne: first } };
    case "in":
      return { [path]: { $in: [...r.values] } };
    case "notin":
      return { [path]: { $nin: [...r.values] } };
    case "matches":
      // Sensu's "matches" is a substring test; the value is escaped, never a pattern.
      return { [path]: { $regex: escapeRegex(first) } };
  }
}

type IdBounds = { $gt: string; $lt?: string } | { $gte: string };

/** Compares strings as MongoDB and FerretDB compare them: by their UTF-8 bytes. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The `meta` document that records that this database's heads carry MACs. */
const headMacsMarker = "head_macs";

/** Creates the MongoDB secret store; `maxVersions` values (the current one included) are kept. */
export function mongoSecretStore(
  db: Db,
  options: { ring: KeyRing; maxVersions: number; staleClaimMs?: number },
): SecretStore {
  const ring = options.ring;
  const secrets = db.collection<SecretDoc>(collections.secrets);
  const versions = db.collection<VersionDoc>(collections.secretVersions);
  const keys = db.collection<NamespaceKeyDoc>(collections.namespaceKeys);
  const transitions = db.collection<TransitionDoc>(collections.secretTransitions);
  const meta = db.collection<{ _id: string; since: Date }>(collections.meta);
  const staleClaimMs = options.staleClaimMs ?? 10_000;
  /** The oldest version kept while `current` is the secret's version (maxVersions counts it). */
  const oldestKept = (current: number) => current - options.maxVersions + 1;

  /** Applies a claimed transition; false when the head was no longer at `from`. */
  const apply = async (head: string, from: string, next: SecretDoc | null): Promise<boolean> => {
    if (next === null) return (await secrets.deleteOne({ _id: head, rv: from })).deletedCount > 0;
    const { _id, ...fields } = next;
    return (await secrets.updateOne({ _id: head, rv: from }, { $set: fields })).matchedCount > 0;
  };

  /**
   * Moves the head from resource version `from` to `next` (null deletes it) if no other writer
   * has claimed that move; false on a lost race.
   */
  const transition = async (
    head: string,
    uid: string,
    from: string,
    next: SecretDoc | null,
  ): Promise<boolean> => {
    // Keyed by uid, not by name: a secret deleted and created again starts a new chain.
    const _id = `${uid}/${from}`;
    try {
      await transitions.insertOne({ _id, head, from, next, createTime: new Date() });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const stale = await transitions.findOne({ _id });
      if (stale && Date.now() - stale.createTime.getTime() > staleClaimMs) {
        // Its writer died between claiming and applying: finish the write it started.
        await apply(stale.head, stale.from, stale.next);
        await transitions.deleteOne({ _id });
      }
      return false;
    }
    try {
      return await apply(head, from, next);
    } finally {
      await transitions.deleteOne({ _id });
    }
  };

  return {
    async create(record) {
      try {
        await secrets.insertOne(toDoc(ring, record));
        return "created";
      } catch (err) {
        if (isDuplicateKey(err)) return "exists";
        throw err;
      }
    },

    async get(namespace, name) {
      const id = headId(namespace, name);
      const d = await secrets.findOne({ _id: id });
      return d ? readHead(ring, id, d) : undefined;
    },

    async list(q: ListQuery) {
      if (q.namespaces !== "*" && q.namespaces.length === 0) return [];
      const selectors = [
        ...q.labels.map((r) => labelFilter(r) as Filter<SecretDoc>),
        ...q.fields.map(fieldFilter),
      ];
      const after = q.after ? headId(q.after.namespace, q.after.name) : undefined;
      // The keyset is a range of `_id` at the top of the filter, the selectors beside it: the
      // embedded FerretDB (built with seald's patches) then reads that range of its index in
      // order and stops at the limit, rather than reading and sorting the whole collection.
      const range = async (bounds: IdBounds, limit: number) => {
        const filter: Filter<SecretDoc> = { _id: bounds };
        if (selectors.length > 0) filter.$and = selectors;
        const docs = await secrets.find(filter).sort({ _id: 1 }).limit(limit).toArray();
        return docs.map((d): SecretRecord | DamagedSecret => {
          try {
            return readHead(ring, d._id, d);
          } catch (err) {
            if (!(err instanceof MalformedRecordError)) throw err;
            const [namespace, name] = splitHeadId(String(d._id));
            return { damaged: err.problem, namespace, name };
          }
        });
      };
      // Every head's `_id` is a string: {$gte: ""} is every secret.
      if (q.namespaces === "*") return range(after ? { $gt: after } : { $gte: "" }, q.limit);
      // A namespace is one range: its heads' ids start with "<namespace> ", so they lie from
      // there up to "<namespace>!" (the next character). Namespaces hold no space or character
      // below it, so these ranges lie apart, in the byte order of their names, which is `_id`
      // order. One range per namespace, in that order, from the cursor on, until the page is full.
      const found: (SecretRecord | DamagedSecret)[] = [];
      for (const ns of [...new Set(q.namespaces)].sort(byteOrder)) {
        const start = headId(ns, "");
        const end = `${ns}!`;
        if (after !== undefined && byteOrder(after, end) >= 0) continue;
        const from = after !== undefined && byteOrder(after, start) > 0 ? after : start;
        found.push(...(await range({ $gt: from, $lt: end }, q.limit - found.length)));
        if (found.length >= q.limit) break;
      }
      return found;
    },

    async update(previous, next) {
      // History first: the previous value is copied before the head moves past it. A version
      // number names exactly one sealed value, so racing writers upsert identical content, and
      // a crash after this step leaves only a harmless copy of the still-current value.
      if (next.version > previous.version && previous.envelope) {
        try {
          await versions.replaceOne(
            { _id: `${previous.uid}/${previous.version}` },
            {
              uid: previous.uid,
              namespace: previous.namespace,
              name: previous.name,
              version: previous.version,
              sealed: toSealed(previous.envelope),
            },
            { upsert: true },
          );
        } catch (err) {
          // Two upserts of the same new version race to insert it; the content is identical.
          if (!isDuplicateKey(err)) throw err;
        }
      }
      // Compare-and-set on the resource version: a lost race changes nothing.
      const head = headId(previous.namespace, previous.name);
      if (!(await transition(head, previous.uid, previous.resourceVersion, toDoc(ring, next))))
        return "conflict";
      // Prune the versions that just fell out of the kept window, one `_id` at a time: on
      // FerretDB only an `_id` equality avoids reading the whole collection (a range delete on
      // uid and version scanned every kept version of every secret, ~180 ms an update at 1,000
      // secrets). Usually exactly one. A prune missed by a crash, or left by a lowered limit, is
      // never served (getVersion checks the window) and goes when the secret is deleted.
      for (let v = Math.max(1, oldestKept(previous.version)); v < oldestKept(next.version); v++) {
        await versions.deleteOne({ _id: `${next.uid}/${v}` });
      }
      return "updated";
    },

    async delete(namespace, name, expected) {
      const d = await secrets.findOne({ _id: headId(namespace, name) });
      if (!d) return undefined;
      if (expected !== undefined && d.rv !== expected) return "conflict";
      // A damaged head can still be deleted (by `_id`, its one sure field); so can its history,
      // when its uid says which.
      if (shapeProblem(d) !== undefined) {
        // Only the head that was read: one created meanwhile under the name has another uid.
        const same: Filter<SecretDoc> = { _id: d._id };
        if (d.uid !== undefined) same.uid = d.uid;
        if (d.rv !== undefined) same.rv = d.rv;
        if ((await secrets.deleteOne(same)).deletedCount === 0) return undefined;
        if (isString(d.uid) && d.uid !== "") await versions.deleteMany({ uid: d.uid });
        return "deleted";
      }
      // A delete is a transition too, so it cannot interleave with an update of the same version.
      if (!(await transition(d._id, d.uid, d.rv, null)))
        return expected === undefined ? undefined : "conflict";
      // The head is gone first, so nothing is visible half-deleted; then every older sealed value.
      await versions.deleteMany({ uid: d.uid });
      return "deleted";
    },

    async getVersion(uid, version, current) {
      if (version < oldestKept(current) || version >= current) return undefined;
      const d = await versions.findOne({ _id: `${uid}/${version}` });
      if (!d) return undefined;
      const problem = sealedProblem(d.sealed);
      if (problem) throw new MalformedRecordError("secret version", `${uid}/${version}`, problem);
      return fromSealed(d.sealed);
    },

    async adoptHeadsWithoutMac() {
      // Adoption happens once per database: the marker says it did (or that the database was
      // born with head MACs), so heads stripped of their MAC later are never adopted on a restart.
      if (await meta.findOne({ _id: headMacsMarker })) return 0;
      const mark = async () => {
        try {
          await meta.insertOne({ _id: headMacsMarker, since: new Date() });
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
        }
      };
      if (await secrets.findOne({ mac: { $exists: true } }, { projection: { _id: 1 } })) {
        await mark();
        return 0;
      }
      let adopted = 0;
      for await (const d of secrets.find({ mac: { $exists: false } })) {
        if (shapeProblem(d) !== undefined) continue;
        const { keyId, mac } = macHead(ring, fromDoc(d));
        const res = await secrets.updateOne(
          { _id: d._id, rv: d.rv, mac: { $exists: false } },
          { $set: { macKeyId: keyId, mac } },
        );
        adopted += res.modifiedCount;
      }
      await mark();
      return adopted;
    },

    async getNamespaceKey(namespace) {
      const d = await keys.findOne({ _id: namespace });
      return d ? fromKeyDoc(d) : undefined;
    },

    async putNamespaceKeyIfAbsent(pair) {
      try {
        await keys.insertOne({ _id: pair.namespace, ...toKeyFields(pair) });
        return pair;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        // Another replica created it first: use theirs, so every replica hands out one key.
        const d = await keys.findOne({ _id: pair.namespace });
        if (!d) throw err;
        return fromKeyDoc(d);
      }
    },

    async rotateNamespaceKey(next, previousValidUntil) {
      const d = await keys.findOne({ _id: next.namespace });
      if (!d) {
        await this.putNamespaceKeyIfAbsent(next);
        return undefined;
      }
      // Rotation is an administrator's action; two at once on FerretDB end with the later one's
      // key, and the earlier one's key is simply never accepted.
      await keys.replaceOne(
        { _id: next.namespace },
        {
          ...toKeyFields(next),
          previous: {
            keyId: d.keyId,
            publicKey: d.publicKey,
            wrapped: d.wrapped,
            validUntil: previousValidUntil,
          },
        },
      );
      return fromKeyDoc(d);
    },

    async getPreviousNamespaceKey(namespace) {
      const d = await keys.findOne({ _id: namespace });
      if (!d?.previous) return undefined;
      const { validUntil, ...previous } = d.previous;
      return { pair: fromKeyDoc({ _id: namespace, ...previous }), validUntil };
    },

    async kekIdsInUse() {
      const ids = new Set<string>();
      for (const id of await secrets.distinct("sealed.kekId"))
        if (typeof id === "string") ids.add(id);
      for (const id of await versions.distinct("sealed.kekId"))
        if (typeof id === "string") ids.add(id);
      // A head's MAC subkey comes from a master key too; it must stay while heads name it.
      for (const id of await secrets.distinct("macKeyId")) if (typeof id === "string") ids.add(id);
      for (const id of await keys.distinct("wrapped.kekId"))
        if (typeof id === "string") ids.add(id);
      // A previous key pair is still accepted during its grace period: its master key stays too.
      for (const id of await keys.distinct("previous.wrapped.kekId"))
        if (typeof id === "string") ids.add(id);
      return [...ids].sort();
    },
  };
}

export function fromKeyDoc(d: NamespaceKeyDoc): NamespaceKeyPair {
  return {
    namespace: d._id,
    keyId: d.keyId,
    publicKey: bytes(d.publicKey),
    wrappedPrivateKey: {
      kekId: d.wrapped.kekId,
      nonce: bytes(d.wrapped.nonce),
      ciphertext: bytes(d.wrapped.ciphertext),
    },
  };
}
