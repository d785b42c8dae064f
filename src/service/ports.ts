/**
 * The ports the secrets use cases own: the storage they need (the MongoDB implementation,
 * src/store/secret-store.ts, keeps `_id`s, BSON types and collection names to itself and returns
 * plain records), the resolver of external keepers, and the observer metrics come through.
 */
import type { SecretValue } from "../crypto/secret-value.js";
import type { CallBounds } from "../domain/deadline.js";
import type { Envelope, NamespaceKeyPair } from "../domain/sealed.js";
import type { SecretRecord } from "../domain/secret.js";
import type { FieldRequirement, LabelRequirement } from "../domain/selector.js";

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

/** A stored head that a list met but could not read (see SecretStore.get); it keeps its place. */
export interface DamagedSecret {
  /** What is wrong with it, for the log; never shown to a caller. */
  readonly damaged: string;
  readonly namespace: string;
  readonly name: string;
}

/**
 * The storage the secrets use cases need. Every method's optional last argument bounds the call
 * by the caller's deadline (the implementation's wrapper reads it; see src/store/deadline.ts).
 */
export interface SecretStore {
  /** Stores a new secret; "exists" when (namespace, name) is taken. */
  create(record: SecretRecord, bounds?: CallBounds): Promise<"created" | "exists">;
  /**
   * The secret's head. Throws MalformedRecordError (domain/errors.ts) when the stored head does
   * not have the stored shape or its integrity MAC does not hold: a damaged head spoils only
   * the calls that name it.
   */
  get(namespace: string, name: string, bounds?: CallBounds): Promise<SecretRecord | undefined>;
  /**
   * Records in (namespace, name) order; the selectors are evaluated by the database. A damaged
   * head is returned as a DamagedSecret in its place, so paging past it stays exact.
   */
  list(query: ListQuery, bounds?: CallBounds): Promise<(SecretRecord | DamagedSecret)[]>;
  /**
   * Replaces `previous` with `next` if the stored resource version still equals
   * previous.resourceVersion. When the value changes (next.version > previous.version), the
   * previous sealed value is kept in the history first, and history older than the retention
   * limit is pruned afterwards.
   */
  update(
    previous: SecretRecord,
    next: SecretRecord,
    bounds?: CallBounds,
  ): Promise<"updated" | "conflict">;
  /**
   * Deletes the secret and its whole history (a damaged head too); with an expected resource
   * version, only if it still matches. Undefined when there was none.
   */
  delete(
    namespace: string,
    name: string,
    expectedResourceVersion?: string,
    bounds?: CallBounds,
  ): Promise<"deleted" | "conflict" | undefined>;
  /**
   * A kept older sealed value of the secret with this uid, whose current version is `current`:
   * nothing outside the kept window, even where pruning it was missed (a crash, or a lowered
   * limit). Throws MalformedRecordError for a damaged history record.
   */
  getVersion(
    uid: string,
    version: number,
    current: number,
    bounds?: CallBounds,
  ): Promise<Envelope | undefined>;

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

  /** Every master key id some stored record refers to (values, history, namespace keys, MACs). */
  kekIdsInUse(): Promise<string[]>;

  /**
   * Gives every head an integrity MAC, once per database: a database written before heads were
   * MACed is adopted as it stands at its first start with this code, and a marker records that
   * (as it does for a database born with MACs). After that, a head without a MAC is damaged,
   * never adopted, on any later start. Returns how many heads it MACed.
   */
  adoptHeadsWithoutMac(): Promise<number>;
}

/** Resolves values held by keepers other than "system". */
export interface ExternalKeepers {
  /**
   * Why a secret of `namespace` may not name `ref` in `keeper` (a message for the caller), or
   * undefined when it may. Checked when a write sets the reference.
   */
  checkRef(keeper: string, ref: string, namespace: string): Promise<string | undefined>;
  /** The value, or a reason (for the audit log) why there is none. */
  resolve(
    keeper: string,
    ref: string,
    namespace: string,
  ): Promise<SecretValue | { readonly failure: string }>;
}

/** What the use cases report for metrics; an interface so the domain imports no metrics library. */
export interface SecretsObserver {
  crypto(operation: "seal" | "open" | "open_sealed_box", outcome: "ok" | "failed"): void;
  decrypted(outcome: "success" | "denied" | "not_found" | "failed"): void;
  /** A list met a damaged head and left it out (log it with its name and problem; count it). */
  damaged(secret: DamagedSecret): void;
}

export const unobserved: SecretsObserver = { crypto() {}, decrypted() {}, damaged() {} };
