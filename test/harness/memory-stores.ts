/**
 * In-memory implementations of the ports the use cases own (SecretStore, AccessStore, AuditStore,
 * ProviderStore), for the middle test tier: the use cases and the RPC layer without a database.
 * Each follows its port's documented contract and what the MongoDB implementation in src/store
 * does where the contract leaves room (ordering, what "kept" means, which duplicate is refused),
 * so a use-case test that passes here means the same thing as against FerretDB. Records are
 * copied in and out, as a database would, so a caller changing what it passed or got changes
 * nothing stored.
 *
 * Hooks that a database cannot offer make the hard paths testable: a secret store that loses its
 * next compare-and-set races to another writer, an audit store whose inserts wait or fail, and
 * `tamper` and `damage` to edit stored data behind the use cases' back (what someone with
 * database access can do). Heads carry the real integrity MAC (crypto/head-mac.ts), so an edit of
 * what it covers makes the head damaged here as it does in MongoDB.
 */
import type {
  AccessStore,
  BindingRecord,
  PrincipalRecord,
  TokenRecord,
} from "../../src/auth/access-store-port.js";
import type { AuditQuery, AuditStore, StoredAuditEntry, StoredHead } from "../../src/auth/audit.js";
import type { AuditHead, AuditRecord, SealedHead } from "../../src/auth/audit-chain.js";
import type { Binding } from "../../src/auth/principal.js";
import { type HeadMac, headMacHolds, macHead } from "../../src/crypto/head-mac.js";
import type { KeyRing } from "../../src/crypto/keyring.js";
import { MalformedRecordError } from "../../src/domain/errors.js";
import type { Envelope, NamespaceKeyPair } from "../../src/domain/sealed.js";
import type { SecretRecord } from "../../src/domain/secret.js";
import type { FieldRequirement, LabelRequirement } from "../../src/domain/selector.js";
import type { DamagedSecret, ListQuery, SecretStore } from "../../src/service/ports.js";
import type {
  ProviderQuery,
  ProviderRecord,
  ProviderRequirement,
  ProviderStore,
} from "../../src/service/providers.js";

const copy = <T>(value: T): T => structuredClone(value);

/** Compares like MongoDB compares strings: by UTF-16 code units. */
const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The stored head's key; the space sorts below every character a name may hold. */
const headKey = (namespace: string, name: string) => `${namespace} ${name}`;

/** Sensu's "matches": a substring test on the value, never a pattern. */
const contains = (value: string, part: string) => value.includes(part);

function labelMatches(labels: Readonly<Record<string, string>>, r: LabelRequirement): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.op) {
    case "=":
      return has && value === r.values[0];
    case "!=":
      return !has || value !== r.values[0];
    case "in":
      return has && r.values.includes(value as string);
    case "notin":
      return !has || !r.values.includes(value as string);
    case "exists":
      return has;
    case "!exists":
      return !has;
    case "matches":
      return has && contains(value as string, r.values[0] ?? "");
  }
}

/** A field's values: one for a scalar field, every decrypter for "decrypter" (as MongoDB arrays). */
function fieldValues(record: SecretRecord, field: FieldRequirement["field"]): readonly string[] {
  return field === "decrypter" ? record.decrypters : [record[field]];
}

function fieldMatches(record: SecretRecord, r: FieldRequirement): boolean {
  const values = fieldValues(record, r.field);
  const first = r.values[0] ?? "";
  switch (r.op) {
    case "=":
      return values.includes(first);
    case "!=":
      return !values.includes(first);
    case "in":
      return values.some((v) => r.values.includes(v));
    case "notin":
      return !values.some((v) => r.values.includes(v));
    case "matches":
      return values.some((v) => contains(v, first));
  }
}

interface NamespaceKeyEntry {
  pair: NamespaceKeyPair;
  previous?: { pair: NamespaceKeyPair; validUntil: Date };
}

/** A stored head: the record, its integrity MAC, and what is wrong with it when it is damaged. */
interface StoredSecretHead {
  readonly record: SecretRecord;
  readonly mac: HeadMac;
  readonly damaged?: string;
}

/**
 * The secret store in memory: heads by (namespace, name), each with its integrity MAC under the
 * ring's active key, older sealed values by uid and version with the same kept window as the
 * MongoDB store (`maxVersions` values, the current one included), and namespace key pairs with
 * their previous pair after a rotation.
 */
export class MemorySecretStore implements SecretStore {
  private readonly heads = new Map<string, StoredSecretHead>();
  private readonly history = new Map<string, Map<number, Envelope>>();
  private readonly keys = new Map<string, NamespaceKeyEntry>();
  private readonly maxVersions: number;
  private readonly ring: KeyRing;
  private racesToLose = 0;
  private racer: (stored: SecretRecord, race: number) => SecretRecord = (stored, race) => ({
    ...stored,
    labels: { ...stored.labels, racer: String(race) },
  });
  private races = 0;
  /** How many times update() was called, won or lost. */
  updateCalls = 0;

  constructor(options: { ring: KeyRing; maxVersions?: number }) {
    this.ring = options.ring;
    this.maxVersions = options.maxVersions ?? 10;
  }

  /**
   * Makes the next `count` updates lose their compare-and-set: just before each, another writer
   * changes the stored head (by default it sets the label "racer" to the race's number, 1, 2,
   * ...) and gives it a new resource version, so the update compares against a stale one.
   */
  loseNextRaces(count: number, racer?: (stored: SecretRecord, race: number) => SecretRecord): void {
    this.racesToLose = count;
    if (racer) this.racer = racer;
  }

  /**
   * Edits a stored head behind the use cases' back, as someone with database access could; its
   * MAC stays as it was, so an edit of a field the MAC covers leaves a damaged head.
   */
  tamper(namespace: string, name: string, edit: (stored: SecretRecord) => SecretRecord): void {
    const key = headKey(namespace, name);
    const stored = this.heads.get(key);
    if (!stored) throw new Error(`tamper: no secret ${namespace}/${name}`);
    this.heads.set(key, { ...stored, record: copy(edit(copy(stored.record))) });
  }

  /** Spoils a stored head's shape (a field of the wrong type, say), described by `problem`. */
  damage(namespace: string, name: string, problem: string): void {
    const key = headKey(namespace, name);
    const stored = this.heads.get(key);
    if (!stored) throw new Error(`damage: no secret ${namespace}/${name}`);
    this.heads.set(key, { ...stored, damaged: problem });
  }

  /** The versions held in the history of the secret with this uid, in order (kept or not). */
  historyOf(uid: string): number[] {
    return [...(this.history.get(uid)?.keys() ?? [])].sort((a, b) => a - b);
  }

  async create(record: SecretRecord): Promise<"created" | "exists"> {
    const key = headKey(record.namespace, record.name);
    if (this.heads.has(key)) return "exists";
    this.heads.set(key, this.sealedHead(record));
    return "created";
  }

  async get(namespace: string, name: string): Promise<SecretRecord | undefined> {
    const stored = this.heads.get(headKey(namespace, name));
    return stored && this.readHead(stored);
  }

  async list(q: ListQuery): Promise<(SecretRecord | DamagedSecret)[]> {
    const after = q.after && headKey(q.after.namespace, q.after.name);
    return [...this.heads.entries()]
      .filter(([key, { record: r }]) => {
        if (q.namespaces !== "*" && !q.namespaces.includes(r.namespace)) return false;
        if (after !== undefined && key <= after) return false;
        return (
          q.labels.every((l) => labelMatches(r.labels, l)) &&
          q.fields.every((f) => fieldMatches(r, f))
        );
      })
      .sort(([a], [b]) => byString(a, b))
      .slice(0, q.limit)
      .map(([, stored]): SecretRecord | DamagedSecret => {
        try {
          return this.readHead(stored);
        } catch (err) {
          if (!(err instanceof MalformedRecordError)) throw err;
          const { namespace, name } = stored.record;
          return { damaged: err.problem, namespace, name };
        }
      });
  }

  async update(previous: SecretRecord, next: SecretRecord): Promise<"updated" | "conflict"> {
    this.updateCalls++;
    const key = headKey(previous.namespace, previous.name);
    if (this.racesToLose > 0) {
      this.racesToLose--;
      const stored = this.heads.get(key);
      if (stored) {
        const raced = this.racer(copy(stored.record), ++this.races);
        this.heads.set(key, this.sealedHead({ ...raced, resourceVersion: `racer-${this.races}` }));
      }
    }
    const stored = this.heads.get(key)?.record;
    if (!stored || stored.uid !== previous.uid) return "conflict";
    if (stored.resourceVersion !== previous.resourceVersion) return "conflict";
    if (next.version > previous.version && previous.envelope) {
      const kept = this.history.get(previous.uid) ?? new Map<number, Envelope>();
      this.history.set(previous.uid, kept);
      kept.set(previous.version, copy(previous.envelope));
      for (const v of kept.keys()) if (v < this.oldestKept(next.version)) kept.delete(v);
    }
    this.heads.set(key, this.sealedHead(next));
    return "updated";
  }

  async delete(
    namespace: string,
    name: string,
    expectedResourceVersion?: string,
  ): Promise<"deleted" | "conflict" | undefined> {
    const key = headKey(namespace, name);
    const stored = this.heads.get(key)?.record;
    if (!stored) return undefined;
    if (expectedResourceVersion !== undefined && stored.resourceVersion !== expectedResourceVersion)
      return "conflict";
    // A damaged head is deleted too, with its history.
    this.heads.delete(key);
    this.history.delete(stored.uid);
    return "deleted";
  }

  async getVersion(uid: string, version: number, current: number): Promise<Envelope | undefined> {
    if (version < this.oldestKept(current) || version >= current) return undefined;
    const envelope = this.history.get(uid)?.get(version);
    return envelope && copy(envelope);
  }

  async getNamespaceKey(namespace: string): Promise<NamespaceKeyPair | undefined> {
    const entry = this.keys.get(namespace);
    return entry && copy(entry.pair);
  }

  async putNamespaceKeyIfAbsent(pair: NamespaceKeyPair): Promise<NamespaceKeyPair> {
    const entry = this.keys.get(pair.namespace);
    if (entry) return copy(entry.pair);
    this.keys.set(pair.namespace, { pair: copy(pair) });
    return copy(pair);
  }

  async rotateNamespaceKey(
    next: NamespaceKeyPair,
    previousValidUntil: Date,
  ): Promise<NamespaceKeyPair | undefined> {
    const entry = this.keys.get(next.namespace);
    if (!entry) {
      this.keys.set(next.namespace, { pair: copy(next) });
      return undefined;
    }
    this.keys.set(next.namespace, {
      pair: copy(next),
      previous: { pair: entry.pair, validUntil: new Date(previousValidUntil) },
    });
    return copy(entry.pair);
  }

  async getPreviousNamespaceKey(
    namespace: string,
  ): Promise<{ pair: NamespaceKeyPair; validUntil: Date } | undefined> {
    const previous = this.keys.get(namespace)?.previous;
    return previous && copy(previous);
  }

  async kekIdsInUse(): Promise<string[]> {
    // As the MongoDB store counts them: heads, history, and each namespace's key pairs.
    const ids = new Set<string>();
    for (const { record: r, mac } of this.heads.values()) {
      if (r.envelope) ids.add(r.envelope.kekId);
      // A head's MAC subkey comes from a master key too.
      ids.add(mac.keyId);
    }
    for (const kept of this.history.values()) for (const e of kept.values()) ids.add(e.kekId);
    for (const entry of this.keys.values()) {
      ids.add(entry.pair.wrappedPrivateKey.kekId);
      if (entry.previous) ids.add(entry.previous.pair.wrappedPrivateKey.kekId);
    }
    return [...ids].sort(byString);
  }

  /** Every head gets its MAC when written, so there is never one to adopt. */
  async adoptHeadsWithoutMac(): Promise<number> {
    return 0;
  }

  private oldestKept(current: number): number {
    return current - this.maxVersions + 1;
  }

  private sealedHead(record: SecretRecord): StoredSecretHead {
    return { record: copy(record), mac: macHead(this.ring, record) };
  }

  /** The record of a stored head, or MalformedRecordError as the MongoDB store throws it. */
  private readHead(stored: StoredSecretHead): SecretRecord {
    const { record } = stored;
    if (stored.damaged) throw new MalformedRecordError("secret", record.name, stored.damaged);
    if (!headMacHolds(this.ring, record, stored.mac))
      throw new MalformedRecordError(
        "secret",
        record.name,
        "the head's integrity MAC does not hold",
      );
    return copy(record);
  }
}

/** What the MongoDB stores throw for a duplicate `_id` that the port does not turn into a result. */
export class DuplicateKeyError extends Error {
  constructor(what: string) {
    super(`duplicate key: ${what}`);
    this.name = "DuplicateKeyError";
  }
}

const bindingKey = (b: Binding & { principal: string }) =>
  `${b.principal}\n${b.namespace}\n${b.role}`;

/** The access store in memory: principals by name, tokens by keyed hash, bindings by their triple. */
export class MemoryAccessStore implements AccessStore {
  private readonly principals = new Map<string, PrincipalRecord>();
  /** By hash, as the MongoDB store keys them; a token being re-keyed has two for a moment. */
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly bindings = new Map<string, BindingRecord>();

  async insertPrincipal(p: PrincipalRecord): Promise<boolean> {
    if (this.principals.has(p.name)) return false;
    this.principals.set(p.name, copy(p));
    return true;
  }

  async getPrincipal(name: string): Promise<PrincipalRecord | undefined> {
    const p = this.principals.get(name);
    return p && copy(p);
  }

  async listPrincipals(after: string | undefined, limit: number): Promise<PrincipalRecord[]> {
    return [...this.principals.values()]
      .filter((p) => after === undefined || p.name > after)
      .sort((a, b) => byString(a.name, b.name))
      .slice(0, limit)
      .map(copy);
  }

  async deletePrincipal(name: string): Promise<boolean> {
    for (const [hash, t] of this.tokens) if (t.principal === name) this.tokens.delete(hash);
    for (const [key, b] of this.bindings) if (b.principal === name) this.bindings.delete(key);
    return this.principals.delete(name);
  }

  async insertToken(t: TokenRecord): Promise<void> {
    if (this.tokens.has(t.hash)) throw new DuplicateKeyError(`token hash ${t.hash}`);
    this.tokens.set(t.hash, copy(t));
  }

  async findTokenByHash(
    candidates: readonly { kekId: string; hash: string }[],
  ): Promise<TokenRecord | undefined> {
    for (const c of candidates) {
      const t = this.tokens.get(c.hash);
      // The hash must have been made with the key the record names.
      if (t && candidates.some((k) => k.kekId === t.kekId && k.hash === t.hash)) return copy(t);
    }
    return undefined;
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    const t = [...this.tokens.values()].find((t) => t.id === id);
    return t && copy(t);
  }

  async listTokens(principal: string | undefined): Promise<TokenRecord[]> {
    const seen = new Set<string>();
    return [...this.tokens.values()]
      .filter((t) => principal === undefined || t.principal === principal)
      .sort((a, b) => b.createTime.getTime() - a.createTime.getTime() || byString(a.id, b.id))
      .filter((t) => !seen.has(t.id) && seen.add(t.id))
      .map(copy);
  }

  async revokeToken(id: string, time: Date): Promise<TokenRecord | undefined> {
    for (const [hash, t] of this.tokens) {
      if (t.id === id && !t.revokeTime) this.tokens.set(hash, { ...t, revokeTime: new Date(time) });
    }
    return this.getToken(id);
  }

  async insertBinding(b: BindingRecord): Promise<boolean> {
    const key = bindingKey(b);
    if (this.bindings.has(key)) return false;
    this.bindings.set(key, {
      principal: b.principal,
      role: b.role,
      namespace: b.namespace,
      createTime: new Date(b.createTime),
    });
    return true;
  }

  async deleteBinding(b: Binding & { principal: string }): Promise<boolean> {
    return this.bindings.delete(bindingKey(b));
  }

  async listBindings(filter: { principal?: string; namespace?: string }): Promise<BindingRecord[]> {
    return [...this.bindings.values()]
      .filter(
        (b) =>
          (filter.principal === undefined || b.principal === filter.principal) &&
          (filter.namespace === undefined || b.namespace === filter.namespace),
      )
      .sort(
        (a, b) =>
          byString(a.principal, b.principal) ||
          byString(a.namespace, b.namespace) ||
          byString(a.role, b.role),
      )
      .map(copy);
  }

  async hasAdmin(): Promise<boolean> {
    return [...this.bindings.values()].some((b) => b.role === "admin" && b.namespace === "*");
  }

  async rekeyToken(token: TokenRecord, next: { kekId: string; hash: string }): Promise<void> {
    // Another request may have re-keyed it first; then the new record is there already.
    if (!this.tokens.has(next.hash)) this.tokens.set(next.hash, copy({ ...token, ...next }));
    // A revocation that landed on the old record meanwhile follows the token.
    const revoked = this.tokens.get(token.hash)?.revokeTime;
    if (revoked) await this.revokeToken(token.id, revoked);
    this.tokens.delete(token.hash);
  }

  async kekIdsInUse(): Promise<string[]> {
    return [...new Set([...this.tokens.values()].map((t) => t.kekId))].sort(byString);
  }
}

/**
 * The audit store in memory: records by seq, inserted in order until one's seq is taken (the
 * insert then stops and says how many it stored, as the port documents). Inserts can be held
 * back or made to fail, to see what callers do while a record is not yet stored.
 */
export class MemoryAuditStore implements AuditStore {
  private readonly bySeq = new Map<number, AuditRecord>();
  private held: Promise<void> | undefined;
  private failures: unknown[] = [];

  /** Every stored record in seq order: what an auditor reading the database would see. */
  get records(): AuditRecord[] {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq).map(copy);
  }

  /** Holds every insert until the returned function is called. */
  holdInserts(): () => void {
    let release = () => {};
    this.held = new Promise<void>((resolve) => {
      release = () => {
        this.held = undefined;
        resolve();
      };
    });
    return release;
  }

  /** Makes the next insert throw this error, storing nothing (a database that went away). */
  failNextInsert(err: unknown): void {
    this.failures.push(err);
  }

  async insert(records: readonly AuditRecord[]): Promise<number> {
    await this.held;
    if (this.failures.length > 0) throw this.failures.shift();
    let stored = 0;
    for (const r of records) {
      if (this.bySeq.has(r.seq)) break;
      this.bySeq.set(r.seq, copy(r));
      stored++;
    }
    return stored;
  }

  async head(): Promise<AuditHead | undefined> {
    const last = this.records.at(-1);
    return last && { seq: last.seq, mac: last.mac };
  }

  private sealed: SealedHead | undefined;

  async sealedHead(): Promise<StoredHead | undefined> {
    return this.sealed && { ...this.sealed };
  }

  async moveHead(from: SealedHead | undefined, to: SealedHead): Promise<boolean> {
    const same = (a: SealedHead | undefined, b: SealedHead | undefined) =>
      a === b ||
      (a !== undefined &&
        b !== undefined &&
        a.seq === b.seq &&
        a.mac === b.mac &&
        a.keyId === b.keyId &&
        a.headMac === b.headMac);
    if (!same(this.sealed, from)) return false;
    this.sealed = { ...to };
    return true;
  }

  async replaceHead(to: SealedHead): Promise<void> {
    this.sealed = { ...to };
  }

  async macAt(seq: number): Promise<string | undefined> {
    return this.bySeq.get(seq)?.mac;
  }

  async find(query: AuditQuery, limit: number): Promise<StoredAuditEntry[]> {
    return this.records
      .reverse()
      .filter(
        (r) =>
          (query.beforeSeq === undefined || r.seq < query.beforeSeq) &&
          (query.namespace === undefined || r.namespace === query.namespace) &&
          (query.principal === undefined || r.principal === query.principal) &&
          (query.action === undefined || r.action === query.action) &&
          (query.outcome === undefined || r.outcome === query.outcome) &&
          (query.since === undefined || r.time >= query.since) &&
          (query.until === undefined || r.time < query.until),
      )
      .slice(0, limit);
  }

  async *scan(): AsyncIterable<StoredAuditEntry> {
    yield* this.records;
  }
}

function providerMatches(name: string, r: ProviderRequirement): boolean {
  const first = r.values[0] ?? "";
  switch (r.op) {
    case "=":
      return name === first;
    case "!=":
      return name !== first;
    case "in":
      return r.values.includes(name);
    case "notin":
      return !r.values.includes(name);
    case "matches":
      return contains(name, first);
  }
}

/** The provider store in memory; a deleted provider stays as a tombstone, as in MongoDB. */
export class MemoryProviderStore implements ProviderStore {
  private readonly providers = new Map<string, { record: ProviderRecord; deleted: boolean }>();

  async insertIfAbsent(record: ProviderRecord): Promise<void> {
    if (!this.providers.has(record.name))
      this.providers.set(record.name, { record: copy(record), deleted: false });
  }

  async get(name: string): Promise<ProviderRecord | undefined> {
    const entry = this.providers.get(name);
    return entry && !entry.deleted ? copy(entry.record) : undefined;
  }

  async list(q: ProviderQuery): Promise<ProviderRecord[]> {
    return [...this.providers.values()]
      .filter(
        ({ record, deleted }) =>
          !deleted &&
          (q.after === undefined || record.name > q.after) &&
          q.names.every((r) => providerMatches(record.name, r)) &&
          (q.types.length === 0 || q.types.includes(record.type)) &&
          q.labels.every((l) => labelMatches(record.labels, l)),
      )
      .map(({ record }) => record)
      .sort((a, b) => byString(a.name, b.name))
      .slice(0, q.limit)
      .map(copy);
  }

  async put(record: ProviderRecord): Promise<"created" | "updated"> {
    const entry = this.providers.get(record.name);
    if (entry && !entry.deleted) {
      // A live provider keeps its creation facts.
      const { createTime, createdBy } = entry.record;
      this.providers.set(record.name, {
        record: copy({ ...record, createTime, createdBy }),
        deleted: false,
      });
      return "updated";
    }
    this.providers.set(record.name, { record: copy(record), deleted: false });
    return "created";
  }

  async delete(name: string): Promise<boolean> {
    const entry = this.providers.get(name);
    if (!entry || entry.deleted) return false;
    this.providers.set(name, {
      record: { ...entry.record, updateTime: new Date() },
      deleted: true,
    });
    return true;
  }
}
