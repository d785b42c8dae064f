/**
 * The secrets use cases: every rule about secrets that is not specific to one wire dialect. Each
 * method authorises through the guard before it looks anything up (so a caller without rights
 * learns nothing about which secrets exist), validates, acts through the store, and audits.
 * Batch decrypt is its own unit (decrypt.ts), as are the write rules (secret-rules.ts) and the
 * namespace sealing keys (namespace-keys.ts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { Caller } from "../auth/caller.js";
import type { Guard } from "../auth/guard.js";
import { allowedNamespaces } from "../auth/policy.js";
import { secretActions } from "../auth/principal.js";
import { sealValue } from "../crypto/envelope.js";
import type { KeyRing } from "../crypto/keyring.js";
import { openSealedValue, SealedBoxError } from "../crypto/sealed-box.js";
import type { SecretValue } from "../crypto/secret-value.js";
import { boundsOf } from "../domain/deadline.js";
import {
  alreadyExists,
  conflict,
  type DomainError,
  invalid,
  notFound,
  Violations,
} from "../domain/errors.js";
import { type PageTokenCodec, pageSize, pageTokenCodec } from "../domain/paging.js";
import {
  type SecretField,
  type SecretRecord,
  type SecretView,
  systemKeeper,
} from "../domain/secret.js";
import type { FieldRequirement, LabelRequirement } from "../domain/selector.js";
import { type DecryptOutcome, Decryptor, type ValueForm } from "./decrypt.js";
import { NamespaceKeys } from "./namespace-keys.js";
import {
  type ExternalKeepers,
  type ListCursor,
  type SecretStore,
  type SecretsObserver,
  unobserved,
} from "./ports.js";
import {
  checkSecretWrite,
  checkValueSize,
  type DialectRules,
  defaultLimits,
  type SecretInput,
  type SecretLimits,
} from "./secret-rules.js";
import { checkObjectName } from "./validation.js";

/**
 * The page token of a secrets list: the (namespace, name) it stopped after. Every entry point
 * shares it, so a Sensu or Grafana client can continue a list the RPC API started, and back.
 */
export const secretsPageToken: PageTokenCodec<ListCursor> = pageTokenCodec(
  { ns: "string", n: "string" },
  (t) => ({ namespace: t.ns, name: t.n }),
  (c) => ({ ns: c.namespace, n: c.name }),
);

/** Attempts of a read-modify-write that keeps losing compare-and-set races. */
const updateAttempts = 5;

export interface SecretListQuery {
  /** Empty lists every namespace the caller may read. */
  readonly namespace: string;
  readonly labels: readonly LabelRequirement[];
  readonly fields: readonly FieldRequirement[];
  /** "" for the first page. */
  readonly pageToken: string;
  /** 0 for the default. */
  readonly pageSize: number;
}

export interface SecretUpdateOptions {
  /** When set, the update applies only if the stored resource version still matches. */
  readonly expectedResourceVersion?: string;
  /** Creates a missing secret instead of answering not found. */
  readonly allowMissing?: boolean;
  readonly rules?: DialectRules;
  /**
   * The fields this write replaces; the others keep what is stored (and, when allowMissing
   * creates the secret, take the input's). Without a mask every field is replaced, except that
   * an omitted value keeps the stored one.
   */
  readonly replace?: readonly SecretField[];
}

export interface SecretUseCasesOptions {
  readonly store: SecretStore;
  readonly ring: KeyRing;
  readonly guard: Guard;
  readonly keepers: ExternalKeepers;
  readonly limits?: SecretLimits;
  readonly now?: () => Date;
  readonly observer?: SecretsObserver;
}

/** Secrets over a store, a key ring and external keepers. */
export class SecretUseCases {
  private readonly store: SecretStore;
  private readonly ring: KeyRing;
  private readonly guard: Guard;
  private readonly limits: SecretLimits;
  private readonly now: () => Date;
  private readonly observer: SecretsObserver;
  private readonly keepers: ExternalKeepers;
  private readonly decryptor: Decryptor;
  /** The namespaces' sealing keys, shared with key administration. */
  readonly namespaceKeys: NamespaceKeys;

  constructor(options: SecretUseCasesOptions) {
    this.store = options.store;
    this.ring = options.ring;
    this.guard = options.guard;
    this.limits = options.limits ?? defaultLimits;
    this.now = options.now ?? (() => new Date());
    this.observer = options.observer ?? unobserved;
    this.keepers = options.keepers;
    this.namespaceKeys = new NamespaceKeys(this.store, this.ring, this.now);
    this.decryptor = new Decryptor({
      store: this.store,
      ring: this.ring,
      guard: this.guard,
      keepers: options.keepers,
      limits: this.limits,
      observer: this.observer,
    });
  }

  /** Creates a secret; already_exists when the name is taken. */
  async create(caller: Caller, input: SecretInput, rules?: DialectRules): Promise<SecretView> {
    await this.guard.require(caller, secretActions.create, input.namespace, input.name);
    const record = await this.newRecord(caller, input, rules);
    if ((await this.store.create(record)) === "exists") {
      await this.audit(caller, "create", input, "conflict", "name taken");
      throw alreadyExists("secret", input.name);
    }
    await this.audit(caller, "create", input, "success", `version ${record.version}`);
    return view(record);
  }

  /** Reads a secret's metadata. */
  async get(caller: Caller, namespace: string, name: string): Promise<SecretView> {
    await this.guard.require(caller, secretActions.read, namespace, name);
    const record = await this.store.get(namespace, name, boundsOf(caller));
    if (!record) throw notFound("secret", name);
    return view(record);
  }

  /**
   * Lists secrets in (namespace, name) order, one page. An empty namespace lists every namespace
   * the caller may read, and only those. Errors name the fields `page_token` and `page_size`.
   */
  async list(
    caller: Caller,
    query: SecretListQuery,
  ): Promise<{ secrets: SecretView[]; nextPageToken: string }> {
    let namespaces: "*" | readonly string[];
    if (query.namespace === "") {
      namespaces = allowedNamespaces(caller.principal, secretActions.read);
    } else {
      await this.guard.require(caller, secretActions.read, query.namespace);
      namespaces = [query.namespace];
    }
    const limit = pageSize("page_size", query.pageSize);
    const after = query.pageToken
      ? secretsPageToken.decode("page_token", query.pageToken)
      : undefined;
    if (after && query.namespace !== "" && after.namespace !== query.namespace) {
      throw invalid([{ field: "page_token", message: "was issued for another namespace" }]);
    }
    const found = await this.store.list(
      { namespaces, labels: query.labels, fields: query.fields, after, limit: limit + 1 },
      boundsOf(caller),
    );
    const page = found.slice(0, limit);
    const last = page.at(-1);
    const secrets: SecretView[] = [];
    for (const entry of page) {
      // A damaged head is left out (and reported), but keeps its place for the next page token.
      if ("damaged" in entry) this.observer.damaged(entry);
      else secrets.push(view(entry));
    }
    return {
      secrets,
      nextPageToken:
        found.length > limit && last
          ? secretsPageToken.encode({ namespace: last.namespace, name: last.name })
          : "",
    };
  }

  /**
   * Replaces the fields the mask names (all of them without one); a sent value (or, for an
   * external keeper, a changed ref) increments the version. With an expected resource version
   * the update applies only if it still matches (conflict otherwise); without one, the
   * read-modify-write is retried on a lost race, so concurrent writers never lose an update
   * silently. allowMissing creates a missing secret.
   */
  async update(
    caller: Caller,
    input: SecretInput,
    options: SecretUpdateOptions = {},
  ): Promise<SecretView> {
    await this.guard.require(caller, secretActions.write, input.namespace, input.name);
    const expected = options.expectedResourceVersion ?? "";
    for (let attempt = 0; attempt < updateAttempts; attempt++) {
      const previous = await this.store.get(input.namespace, input.name, boundsOf(caller));
      if (!previous) {
        if (!options.allowMissing) throw notFound("secret", input.name);
        await this.guard.require(caller, secretActions.create, input.namespace, input.name);
        const record = await this.newRecord(caller, input, options.rules);
        if ((await this.store.create(record)) === "created") {
          await this.audit(caller, "create", input, "success", `version ${record.version}`);
          return view(record);
        }
        if (expected) throw this.conflictOn(input.name);
        continue;
      }
      if (expected && expected !== previous.resourceVersion) {
        await this.audit(caller, "write", input, "conflict", "stale resource version");
        throw this.conflictOn(input.name);
      }
      const merged = options.replace ? keeping(previous, input, options.replace) : input;
      const next = await this.nextRecord(caller, previous, merged, options.rules);
      if ((await this.store.update(previous, next)) === "updated") {
        await this.audit(caller, "write", input, "success", `version ${next.version}`);
        return view(next);
      }
      if (expected) throw this.conflictOn(input.name);
    }
    throw this.conflictOn(input.name);
  }

  /** Deletes a secret with its history; with an expected resource version only if it matches. */
  async delete(
    caller: Caller,
    namespace: string,
    name: string,
    expectedResourceVersion = "",
  ): Promise<void> {
    await this.guard.require(caller, secretActions.delete, namespace, name);
    // Writes take no caller deadline: a write abandoned at the deadline could still land, and
    // then without its audit record. They are bounded by the database timeout alone.
    const deleted = await this.store.delete(namespace, name, expectedResourceVersion || undefined);
    if (deleted === "conflict") throw this.conflictOn(name);
    if (!deleted) throw notFound("secret", name);
    await this.guard.record(caller, secretActions.delete, namespace, name, "success");
  }

  /** Decrypts names of one namespace, each with its own outcome (see decrypt.ts). */
  decrypt(
    caller: Caller,
    namespace: string,
    names: readonly string[],
    version = 0,
    form: ValueForm = "text",
  ): Promise<Map<string, DecryptOutcome>> {
    return this.decryptor.decrypt(caller, namespace, names, version, form);
  }

  /** The namespace's public key for client-side sealing, created on first use. */
  async getPublicKey(
    caller: Caller,
    namespace: string,
  ): Promise<{ keyId: string; publicKey: Uint8Array }> {
    await this.guard.require(caller, secretActions.create, namespace);
    const v = new Violations();
    checkObjectName(v, "namespace", namespace);
    v.throwIfAny();
    const pair = await this.namespaceKeys.current(namespace);
    return { keyId: pair.keyId, publicKey: pair.publicKey };
  }

  private async newRecord(
    caller: Caller,
    input: SecretInput,
    rules?: DialectRules,
  ): Promise<SecretRecord> {
    const keeper = input.keeper || systemKeeper;
    this.validate(input, keeper, true, rules);
    if (keeper !== systemKeeper) await this.checkRef(input, keeper);
    const uid = randomUUID();
    const now = this.now();
    const envelope = keeper === systemKeeper ? await this.seal(input, uid, 1) : undefined;
    return {
      namespace: input.namespace,
      name: input.name,
      uid,
      labels: { ...input.labels },
      annotations: { ...input.annotations },
      description: input.description,
      decrypters: [...input.decrypters],
      keeper,
      ref: keeper === systemKeeper ? "" : input.ref,
      version: 1,
      resourceVersion: newResourceVersion(),
      createTime: now,
      updateTime: now,
      createdBy: caller.principal.name,
      updatedBy: caller.principal.name,
      envelope,
    };
  }

  private async nextRecord(
    caller: Caller,
    previous: SecretRecord,
    input: SecretInput,
    rules?: DialectRules,
  ): Promise<SecretRecord> {
    const keeper = input.keeper || previous.keeper;
    const external = keeper !== systemKeeper;
    if (external !== (previous.keeper !== systemKeeper)) {
      new Violations()
        .add(
          external ? "ref" : "value",
          `cannot switch between a stored value and an external reference (keeper "${previous.keeper}" to "${keeper}"); delete and create instead`,
        )
        .throwIfAny();
    }
    this.validate(input, keeper, false, rules);
    const valueChanged = external
      ? input.ref !== previous.ref || keeper !== previous.keeper
      : input.value !== undefined;
    if (external && valueChanged) await this.checkRef(input, keeper);
    const version = valueChanged ? previous.version + 1 : previous.version;
    const envelope = external
      ? undefined
      : valueChanged
        ? await this.seal(input, previous.uid, version)
        : previous.envelope;
    return {
      ...previous,
      labels: { ...input.labels },
      annotations: { ...input.annotations },
      description: input.description,
      decrypters: [...input.decrypters],
      keeper,
      ref: external ? input.ref : "",
      version,
      resourceVersion: newResourceVersion(),
      updateTime: this.now(),
      updatedBy: caller.principal.name,
      envelope,
    };
  }

  private validate(
    input: SecretInput,
    keeper: string,
    creating: boolean,
    rules: DialectRules | undefined,
  ): void {
    const v = new Violations();
    checkSecretWrite(v, input, keeper, creating, this.limits, rules);
    v.throwIfAny();
  }

  /** Refuses a reference the keeper would not resolve for this namespace. */
  private async checkRef(input: SecretInput, keeper: string): Promise<void> {
    const problem = await this.keepers.checkRef(keeper, input.ref, input.namespace);
    if (problem) new Violations().add("ref", problem).throwIfAny();
  }

  /** Seals the input's value for the record; a sealed box is opened (and checked) first. */
  private async seal(input: SecretInput, uid: string, version: number) {
    const value = await this.plaintextOf(input);
    try {
      const envelope = sealValue(this.ring, value, {
        namespace: input.namespace,
        name: input.name,
        uid,
        version,
      });
      this.observer.crypto("seal", "ok");
      return envelope;
    } finally {
      if (input.value?.kind === "sealed") value.dispose();
    }
  }

  private async plaintextOf(input: SecretInput): Promise<SecretValue> {
    const value = input.value;
    if (!value) throw new Error("plaintextOf: no value");
    if (value.kind === "plaintext") return value.value;
    const pair = await this.namespaceKeys.forSealedValue(
      input.namespace,
      value.keyId,
      "value.sealed.key_id",
    );
    let opened: SecretValue;
    try {
      opened = openSealedValue(this.ring, pair, value.box);
      this.observer.crypto("open_sealed_box", "ok");
    } catch (err) {
      this.observer.crypto("open_sealed_box", "failed");
      if (err instanceof SealedBoxError)
        new Violations().add("value.sealed.box", err.message).throwIfAny();
      throw err;
    }
    const v = new Violations();
    checkValueSize(v, opened.byteLength, this.limits);
    if (!v.isEmpty) opened.dispose();
    v.throwIfAny();
    return opened;
  }

  private conflictOn(name: string): DomainError {
    return conflict(
      "secret",
      name,
      `secret "${name}" was changed by someone else; read it again and retry`,
    );
  }

  private audit(
    caller: Caller,
    verb: "create" | "write",
    input: SecretInput,
    outcome: "success" | "conflict",
    reason: string,
  ): Promise<void> {
    return this.guard.record(
      caller,
      secretActions[verb],
      input.namespace,
      input.name,
      outcome,
      reason,
    );
  }
}

/** The input with every field the mask does not name taken from the stored record. */
function keeping(
  previous: SecretRecord,
  input: SecretInput,
  replace: readonly SecretField[],
): SecretInput {
  const kept = (field: SecretField) => !replace.includes(field);
  return {
    ...input,
    labels: kept("labels") ? previous.labels : input.labels,
    annotations: kept("annotations") ? previous.annotations : input.annotations,
    description: kept("description") ? previous.description : input.description,
    decrypters: kept("decrypters") ? previous.decrypters : input.decrypters,
    keeper: kept("keeper") ? previous.keeper : input.keeper,
    ref: kept("ref") ? previous.ref : input.ref,
    value: kept("value") ? undefined : input.value,
  };
}

function view(record: SecretRecord): SecretView {
  const { envelope: _sealed, ...rest } = record;
  return rest;
}

function newResourceVersion(): string {
  return randomBytes(8).toString("hex");
}
