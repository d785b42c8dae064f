/**
 * MongoDB side of the re-wrap job: its state and leases in `meta`, and the three kinds of record
 * it re-wraps. Head records change through the secret store's claimed transitions, so a re-wrap
 * never overwrites a concurrent write; history and namespace key records are only ever replaced
 * by content that opens to the same key material, so racing writers cannot corrupt them.
 */
import { randomBytes } from "node:crypto";
import type { Db } from "mongodb";
import { rewrapEnvelope } from "../crypto/envelope.js";
import { rewrapNamespacePrivateKey } from "../crypto/sealed-box.js";
import { MalformedRecordError } from "../domain/errors.js";
import type { SecretStore } from "../service/ports.js";
import type {
  KeyUsageCounts,
  RewrapJobState,
  RewrapPhase,
  RewrapStore,
} from "../service/rewrap.js";
import { isDuplicateKey } from "./access-store.js";
import { collections } from "./schema.js";
import {
  fromKeyDoc,
  fromSealed,
  type NamespaceKeyDoc,
  toKeyFields,
  toSealed,
  type VersionDoc,
} from "./secret-store.js";

interface JobDoc extends Omit<RewrapJobState, "startTime" | "updateTime"> {
  _id: string;
  startTime: Date | null;
  updateTime: Date | null;
}

interface LeaseDoc {
  _id: string;
  holder: string;
  until: Date;
}

const jobId = "rewrap_job";
const leaseId = (generation: number) => `rewrap_lease/${generation}`;

/** Creates the re-wrap store over the database and the secret store. */
export function mongoRewrapStore(db: Db, secrets: SecretStore): RewrapStore {
  const jobs = db.collection<JobDoc>(collections.meta);
  const leases = db.collection<LeaseDoc>(collections.meta);
  const heads = db.collection<{
    _id: string;
    sealed: { kekId: string } | null;
    macKeyId?: string;
  }>(collections.secrets);
  const versions = db.collection<VersionDoc>(collections.secretVersions);
  const keys = db.collection<NamespaceKeyDoc>(collections.namespaceKeys);
  const tokens = db.collection<{ _id: string; kekId: string }>(collections.tokens);

  const add = (
    usage: Map<string, KeyUsageCounts>,
    field: keyof KeyUsageCounts,
    kekId: string | undefined,
  ) => {
    if (!kekId) return;
    const u = usage.get(kekId) ?? { values: 0, history: 0, namespaceKeys: 0, tokens: 0 };
    u[field]++;
    usage.set(kekId, u);
  };
  const count = async (
    usage: Map<string, KeyUsageCounts>,
    field: keyof KeyUsageCounts,
    docs: AsyncIterable<{ kekId?: string | undefined }>,
  ) => {
    for await (const d of docs) add(usage, field, d.kekId);
  };

  return {
    async getJob() {
      const d = await jobs.findOne({ _id: jobId });
      if (!d) return undefined;
      const { _id, startTime, updateTime, ...rest } = d;
      return { ...rest, startTime: startTime ?? undefined, updateTime: updateTime ?? undefined };
    },
    async saveJob(job) {
      await jobs.replaceOne(
        { _id: jobId },
        { ...job, startTime: job.startTime ?? null, updateTime: job.updateTime ?? null },
        { upsert: true },
      );
    },
    async claimLease(generation, holder, until) {
      try {
        await leases.insertOne({ _id: leaseId(generation), holder, until });
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
    },
    async renewLease(generation, until) {
      await leases.updateOne({ _id: leaseId(generation) }, { $set: { until } });
    },
    async getLease(generation) {
      const d = await leases.findOne({ _id: leaseId(generation) });
      return d ? { holder: d.holder, until: d.until } : undefined;
    },

    async usage() {
      // Projections keep these scans light; counts per key are what an operator needs to know
      // before removing an old key.
      const usage = new Map<string, KeyUsageCounts>();
      const project = <T>(c: { find(f: object, o: object): AsyncIterable<T> }, field: string) =>
        c.find({}, { projection: { [field]: 1 } });
      // A head depends on the key that wraps its value and on the one its MAC's subkey comes
      // from; counted once when they are the same.
      const headKeys = heads.find({}, { projection: { "sealed.kekId": 1, macKeyId: 1 } });
      for await (const d of headKeys) {
        for (const kekId of new Set([d.sealed?.kekId, d.macKeyId])) add(usage, "values", kekId);
      }
      await count(
        usage,
        "history",
        mapAsync(project(versions, "sealed.kekId"), (d: { sealed?: { kekId: string } }) => ({
          kekId: d.sealed?.kekId,
        })),
      );
      await count(
        usage,
        "namespaceKeys",
        mapAsync(project(keys, "wrapped.kekId"), (d: { wrapped?: { kekId: string } }) => ({
          kekId: d.wrapped?.kekId,
        })),
      );
      // The previous key pair, still accepted while its grace period lasts.
      await count(
        usage,
        "namespaceKeys",
        mapAsync(
          keys.find(
            { previous: { $exists: true } },
            { projection: { "previous.wrapped.kekId": 1 } },
          ),
          (d: { previous?: { wrapped?: { kekId: string } } }) => ({
            kekId: d.previous?.wrapped?.kekId,
          }),
        ),
      );
      await count(
        usage,
        "tokens",
        mapAsync(project(tokens, "kekId"), (d: { kekId?: string }) => ({ kekId: d.kekId })),
      );
      return usage;
    },

    async batch(phase: RewrapPhase, after, limit) {
      const filter = after === "" ? {} : { _id: { $gt: after } };
      const collection = phase === "secrets" ? heads : phase === "versions" ? versions : keys;
      const docs = await (collection as typeof heads)
        .find(filter, { projection: { _id: 1 } })
        .sort({ _id: 1 })
        .limit(limit)
        .toArray();
      return docs.map((d) => d._id);
    },

    async rewrap(phase, id, ring) {
      if (phase === "secrets") {
        const space = id.indexOf(" ");
        for (let attempt = 0; attempt < 5; attempt++) {
          let previous: Awaited<ReturnType<typeof secrets.get>>;
          try {
            previous = await secrets.get(id.slice(0, space), id.slice(space + 1));
          } catch (err) {
            // A damaged head is left as it is (it is reported wherever it is read).
            if (err instanceof MalformedRecordError) return false;
            throw err;
          }
          if (!previous) return false;
          const raw = await heads.findOne({ _id: id }, { projection: { macKeyId: 1 } });
          const wrap = previous.envelope !== undefined && previous.envelope.kekId !== ring.activeId;
          // The store MACs every head it writes with the active key, so writing it again moves
          // its MAC too; a head of an external keeper has only its MAC to move.
          if (!wrap && raw?.macKeyId === ring.activeId) return false;
          const envelope =
            wrap && previous.envelope
              ? rewrapEnvelope(ring, previous.envelope, previous)
              : previous.envelope;
          // A new resource version, the same value version: the value did not change.
          const next = { ...previous, envelope, resourceVersion: randomBytes(8).toString("hex") };
          if ((await secrets.update(previous, next)) === "updated") return true;
        }
        return false;
      }
      if (phase === "versions") {
        const d = await versions.findOne({ _id: id });
        if (!d || d.sealed.kekId === ring.activeId) return false;
        const envelope = rewrapEnvelope(ring, fromSealed(d.sealed), {
          namespace: d.namespace,
          name: d.name,
          uid: d.uid,
          version: d.version,
        });
        await versions.updateOne({ _id: id }, { $set: { sealed: toSealed(envelope) } });
        return true;
      }
      const d = await keys.findOne({ _id: id });
      if (!d) return false;
      const previous = d.previous;
      const stale = (wrapped: { kekId: string }) => wrapped.kekId !== ring.activeId;
      if (!stale(d.wrapped) && !(previous && stale(previous.wrapped))) return false;
      const set: Record<string, unknown> = {};
      if (stale(d.wrapped))
        set.wrapped = toKeyFields(rewrapNamespacePrivateKey(ring, fromKeyDoc(d))).wrapped;
      if (previous && stale(previous.wrapped)) {
        const { validUntil: _until, ...pair } = previous;
        set["previous.wrapped"] = toKeyFields(
          rewrapNamespacePrivateKey(ring, fromKeyDoc({ _id: id, ...pair })),
        ).wrapped;
      }
      await keys.updateOne({ _id: id }, { $set: set });
      return true;
    },
  };
}

async function* mapAsync<T, U>(source: AsyncIterable<T>, fn: (t: T) => U): AsyncIterable<U> {
  for await (const t of source) yield fn(t);
}
