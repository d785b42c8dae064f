/**
 * MongoDB implementation of the access store: `principals` (by name), `tokens` (by keyed hash,
 * the lookup every authentication makes; FerretDB v1 answers only `_id` equality without a
 * scan) and `role_bindings` (by a composite id, so a duplicate grant is a duplicate key).
 */
import { type Db, MongoServerError } from "mongodb";
import type {
  AccessStore,
  BindingRecord,
  PrincipalRecord,
  TokenRecord,
} from "../auth/access-store-port.js";
import type { Binding, PrincipalKind, Role } from "../auth/principal.js";
import { collections } from "./schema.js";

interface PrincipalDoc {
  _id: string;
  kind: PrincipalKind;
  displayName: string;
  createTime: Date;
  createdBy: string;
}

interface TokenDoc {
  /** The keyed hash (hex). */
  _id: string;
  /** The token's public id, for listing and revoking. */
  id: string;
  principal: string;
  kekId: string;
  description: string;
  createTime: Date;
  expireTime: Date | null;
  revokeTime: Date | null;
}

interface BindingDoc {
  _id: string;
  principal: string;
  role: Role;
  namespace: string;
  createTime: Date;
}

/** True for a unique-index violation on insert (FerretDB reports these as 11000 too). */
export function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === 11000;
}

function bindingId(b: Binding & { principal: string }): string {
  // Principal names and namespaces cannot contain "\n"; the separator keeps ids unambiguous.
  return `${b.principal}\n${b.namespace}\n${b.role}`;
}

const toPrincipal = (d: PrincipalDoc): PrincipalRecord => ({
  name: d._id,
  kind: d.kind,
  displayName: d.displayName,
  createTime: d.createTime,
  createdBy: d.createdBy,
});

const toToken = (d: TokenDoc): TokenRecord => ({
  id: d.id,
  principal: d.principal,
  kekId: d.kekId,
  hash: d._id,
  description: d.description,
  createTime: d.createTime,
  expireTime: d.expireTime ?? undefined,
  revokeTime: d.revokeTime ?? undefined,
});

const toBinding = (d: BindingDoc): BindingRecord => ({
  principal: d.principal,
  role: d.role,
  namespace: d.namespace,
  createTime: d.createTime,
});

/** Creates the MongoDB access store over a database. */
export function mongoAccessStore(db: Db): AccessStore {
  const principals = db.collection<PrincipalDoc>(collections.principals);
  const tokens = db.collection<TokenDoc>(collections.tokens);
  const bindings = db.collection<BindingDoc>(collections.roleBindings);

  const insertOrFalse = async (insert: () => Promise<unknown>): Promise<boolean> => {
    try {
      await insert();
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  };

  return {
    insertPrincipal: (p) =>
      insertOrFalse(() =>
        principals.insertOne({
          _id: p.name,
          kind: p.kind,
          displayName: p.displayName,
          createTime: p.createTime,
          createdBy: p.createdBy,
        }),
      ),
    async getPrincipal(name) {
      const d = await principals.findOne({ _id: name });
      return d ? toPrincipal(d) : undefined;
    },
    async listPrincipals(after, limit) {
      const filter = after === undefined ? {} : { _id: { $gt: after } };
      return (await principals.find(filter).sort({ _id: 1 }).limit(limit).toArray()).map(
        toPrincipal,
      );
    },
    async deletePrincipal(name) {
      // Credentials first: once the tokens are gone nobody can act as the principal, even if a
      // crash stops us before the principal record itself is removed.
      await tokens.deleteMany({ principal: name });
      await bindings.deleteMany({ principal: name });
      return (await principals.deleteOne({ _id: name })).deletedCount === 1;
    },

    async insertToken(t) {
      await tokens.insertOne({
        _id: t.hash,
        id: t.id,
        principal: t.principal,
        kekId: t.kekId,
        description: t.description,
        createTime: t.createTime,
        expireTime: t.expireTime ?? null,
        revokeTime: t.revokeTime ?? null,
      });
    },
    async findTokenByHash(candidates) {
      const d = await tokens.findOne({ _id: { $in: candidates.map((c) => c.hash) } });
      // The hash must have been made with the key the record names.
      return d && candidates.some((c) => c.kekId === d.kekId && c.hash === d._id)
        ? toToken(d)
        : undefined;
    },
    async getToken(id) {
      const d = await tokens.findOne({ id });
      return d ? toToken(d) : undefined;
    },
    async listTokens(principal) {
      const filter = principal === undefined ? {} : { principal };
      const docs = await tokens.find(filter).sort({ createTime: -1, id: 1 }).toArray();
      // A token being moved to a new master key has two records for a moment; list it once.
      const seen = new Set<string>();
      return docs.filter((d) => !seen.has(d.id) && seen.add(d.id)).map(toToken);
    },
    async revokeToken(id, time) {
      await tokens.updateMany({ id, revokeTime: null }, { $set: { revokeTime: time } });
      const d = await tokens.findOne({ id });
      return d ? toToken(d) : undefined;
    },

    insertBinding: (b) =>
      insertOrFalse(() =>
        bindings.insertOne({
          _id: bindingId(b),
          principal: b.principal,
          role: b.role,
          namespace: b.namespace,
          createTime: b.createTime,
        }),
      ),
    async deleteBinding(b) {
      return (await bindings.deleteOne({ _id: bindingId(b) })).deletedCount === 1;
    },
    async listBindings(filter) {
      const query: Partial<BindingDoc> = {};
      if (filter.principal !== undefined) query.principal = filter.principal;
      if (filter.namespace !== undefined) query.namespace = filter.namespace;
      const docs = await bindings
        .find(query)
        .sort({ principal: 1, namespace: 1, role: 1 })
        .toArray();
      return docs.map(toBinding);
    },
    async rekeyToken(token, next) {
      try {
        await this.insertToken({ ...token, ...next });
      } catch (err) {
        // Another request re-keyed it first.
        if (!isDuplicateKey(err)) throw err;
      }
      // A revocation that landed on the old record meanwhile must follow the token.
      const old = await tokens.findOne({ _id: token.hash });
      if (old?.revokeTime) {
        await tokens.updateMany(
          { id: token.id, revokeTime: null },
          { $set: { revokeTime: old.revokeTime } },
        );
      }
      await tokens.deleteOne({ _id: token.hash });
    },
    async kekIdsInUse() {
      return (await tokens.distinct("kekId")).filter((id): id is string => typeof id === "string");
    },
    async hasAdmin() {
      return (await bindings.countDocuments({ role: "admin", namespace: "*" }, { limit: 1 })) > 0;
    },
  };
}
