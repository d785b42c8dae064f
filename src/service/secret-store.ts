/**
 * The storage the secrets use cases need, as an interface the domain owns. The MongoDB
 * implementation (src/store/secret-store.ts) keeps `_id`s, BSON types and collection names to
 * itself and returns these plain records.
 */
import type { Envelope } from "../crypto/envelope.js";
import type { NamespaceKeyPair } from "../crypto/sealed-box.js";
import type { FieldRequirement, LabelRequirement } from "./selector.js";

/** A secret as stored: metadata, spec, and (for keeper "system") the sealed current value. */
export interface SecretRecord {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly description: string;
  readonly decrypters: readonly string[];
  readonly keeper: string;
  readonly ref: string;
  /** The value's version: 1 on creation, +1 on every change of value. */
  readonly version: number;
  /** Changes on every write; updates compare-and-set on it. */
  readonly resourceVersion: string;
  readonly createTime: Date;
  readonly updateTime: Date;
  readonly createdBy: string;
  readonly updatedBy: string;
  /** The sealed current value; undefined for external keepers. */
  readonly envelope: Envelope | undefined;
}

/** Where a list page starts: after this (namespace, name). */
export interface ListCursor {
  readonly namespace: string;
  readonly name: string;
}

/** A list query; every requirement must hold (AND). */
export interface ListQuery {
  /** The namespaces to search: every one, or these. An empty list matches nothing. */
  readonly namespaces: "*" | readonly string[];
  readonly labels: readonly LabelRequirement[];
  readonly fields: readonly FieldRequirement[];
  readonly after: ListCursor | undefined;
  /** The largest number of records to return. */
  readonly limit: number;
}

export interface SecretStore {
  /** Stores a new secret; "exists" when (namespace, name) is taken. */
  create(record: SecretRecord): Promise<"created" | "exists">;
  get(namespace: string, name: string): Promise<SecretRecord | undefined>;
  /** Records in (namespace, name) order; the selectors are evaluated by the database. */
  list(query: ListQuery): Promise<SecretRecord[]>;
  /**
   * Replaces `previous` with `next` if the stored resource version still equals
   * previous.resourceVersion. When the value changes (next.version > previous.version), the
   * previous sealed value is kept in the history first, and history older than the retention
   * limit is pruned afterwards.
   */
  update(previous: SecretRecord, next: SecretRecord): Promise<"updated" | "conflict">;
  /**
   * Deletes the secret and its whole history; with an expected resource version, only if it
   * still matches. Returns the deleted record, "conflict", or undefined when there was none.
   */
  delete(
    namespace: string,
    name: string,
    expectedResourceVersion?: string,
  ): Promise<SecretRecord | "conflict" | undefined>;
  /**
   * A kept older sealed value of the secret with this uid, whose current version is `current`:
   * nothing outside the kept window, even where pruning it was missed (a crash, or a lowered
   * limit).
   */
  getVersion(uid: string, version: number, current: number): Promise<Envelope | undefined>;

  /** The namespace's sealing key pair, if one was created. */
  getNamespaceKey(namespace: string): Promise<NamespaceKeyPair | undefined>;
  /**
   * Stores a namespace's key pair unless one exists; returns the pair that is stored afterwards,
   * so replicas racing on first use all end up with the same one.
   */
  putNamespaceKeyIfAbsent(pair: NamespaceKeyPair): Promise<NamespaceKeyPair>;

  /**
   * Replaces the namespace's key pair with `next`, keeping the current one as the previous key,
   * accepted until `previousValidUntil`; returns the replaced pair (undefined when there was none).
   */
  rotateNamespaceKey(
    next: NamespaceKeyPair,
    previousValidUntil: Date,
  ): Promise<NamespaceKeyPair | undefined>;
  /** The namespace's previous key pair after a rotation, with how long it is accepted. */
  getPreviousNamespaceKey(
    namespace: string,
  ): Promise<{ pair: NamespaceKeyPair; validUntil: Date } | undefined>;

  /** Every master key id some stored record refers to (values, history, namespace keys). */
  kekIdsInUse(): Promise<string[]>;
}
