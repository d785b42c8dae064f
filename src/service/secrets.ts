/**
 * The secrets use cases: every rule about secrets that is not specific to one wire dialect. Each
 * method authorises through the guard before it looks anything up (so a caller without rights
 * learns nothing about which secrets exist), validates, acts through the store, and audits.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { Caller } from "../auth/caller.js";
import { allowedNamespaces, authorize } from "../auth/policy.js";
import { adminActions, secretActions } from "../auth/principal.js";
import { DecryptionError, openValue, sealValue } from "../crypto/envelope.js";
import type { KeyRing } from "../crypto/keyring.js";
import {
  generateNamespaceKeyPair,
  type NamespaceKeyPair,
  openSealedValue,
  SealedBoxError,
} from "../crypto/sealed-box.js";
import type { SecretValue } from "../crypto/secret-value.js";
import {
  alreadyExists,
  conflict,
  type DomainError,
  type FieldViolation,
  notFound,
  Violations,
} from "./errors.js";
import type { Guard } from "./guard.js";
import type { ListCursor, SecretRecord, SecretStore } from "./secret-store.js";
import type { FieldRequirement, LabelRequirement } from "./selector.js";
import { checkObjectName, checkPrincipalName, checkText } from "./validation.js";

/** The keeper whose values seald seals and stores itself. */
export const systemKeeper = "system";

/** The value sent with a write: plaintext, or a box sealed for the namespace's public key. */
export type ValueInput =
  | { readonly kind: "plaintext"; readonly value: SecretValue }
  | { readonly kind: "sealed"; readonly keyId: string; readonly box: string };

/** What a create or update carries; field paths in errors use these names. */
export interface SecretInput {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly description: string;
  readonly decrypters: readonly string[];
  /** Empty means "system". */
  readonly keeper: string;
  readonly ref: string;
  readonly value: ValueInput | undefined;
}

/**
 * Rules that one wire dialect adds to a write (Grafana's 25-character description). They run with
 * the domain's own checks, after authorisation, so one error names every bad field; violations use
 * the same neutral field paths as the domain's.
 */
export type DialectRules = (input: SecretInput, creating: boolean) => readonly FieldViolation[];

/** A secret as callers see it: everything but the sealed value. */
export type SecretView = Omit<SecretRecord, "envelope">;

/** The outcome of decrypting one name; errors are deliberately coarse (details go to the audit). */
export type DecryptOutcome =
  | { readonly value: SecretValue; readonly version: number }
  | { readonly error: "not found" | "not authorized" | "decryption failed" };

/** Resolves values held by keepers other than "system". */
export interface ExternalKeepers {
  /** The value, or a reason (for the audit log) why there is none. */
  resolve(keeper: string, ref: string): Promise<SecretValue | { readonly failure: string }>;
}

/** What the use cases report for metrics; an interface so the domain imports no metrics library. */
export interface SecretsObserver {
  crypto(operation: "seal" | "open" | "open_sealed_box", outcome: "ok" | "failed"): void;
  decrypted(outcome: "success" | "denied" | "not_found" | "failed"): void;
}

const unobserved: SecretsObserver = { crypto() {}, decrypted() {} };

export interface SecretLimits {
  readonly maxValueBytes: number;
  readonly maxDecryptNames: number;
  readonly maxLabels: number;
  readonly maxAnnotations: number;
  readonly maxDecrypters: number;
}

export const defaultLimits: SecretLimits = {
  maxValueBytes: 65536,
  maxDecryptNames: 100,
  maxLabels: 64,
  maxAnnotations: 64,
  maxDecrypters: 64,
};

/** Label and annotation keys: printable, no whitespace, none of the selector syntax characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects.
const mapKey = /^[^\s\u0000-\u001f\u007f=!,()]{1,317}$/u;
const keeperName = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Secrets over a store, a key ring and external keepers. */
export class SecretsService {
  constructor(
    private readonly store: SecretStore,
    private readonly ring: KeyRing,
    private readonly guard: Guard,
    private readonly keepers: ExternalKeepers,
    private readonly limits: SecretLimits = defaultLimits,
    private readonly now: () => Date = () => new Date(),
    private readonly observer: SecretsObserver = unobserved,
  ) {}

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
    const record = await this.store.get(namespace, name);
    if (!record) throw notFound("secret", name);
    return view(record);
  }

  /**
   * Lists secrets in (namespace, name) order. An empty namespace lists every namespace the
   * caller may read, and only those.
   */
  async list(
    caller: Caller,
    query: {
      readonly namespace: string;
      readonly labels: readonly LabelRequirement[];
      readonly fields: readonly FieldRequirement[];
      readonly after: ListCursor | undefined;
      readonly limit: number;
    },
  ): Promise<{ secrets: SecretView[]; next: ListCursor | undefined }> {
    let namespaces: "*" | readonly string[];
    if (query.namespace === "") {
      namespaces = allowedNamespaces(caller.principal, secretActions.read);
    } else {
      await this.guard.require(caller, secretActions.read, query.namespace);
      namespaces = [query.namespace];
    }
    const found = await this.store.list({
      namespaces,
      labels: query.labels,
      fields: query.fields,
      after: query.after,
      limit: query.limit + 1,
    });
    const page = found.slice(0, query.limit);
    const last = page.at(-1);
    return {
      secrets: page.map(view),
      next:
        found.length > query.limit && last
          ? { namespace: last.namespace, name: last.name }
          : undefined,
    };
  }

  /**
   * Replaces metadata and spec. An omitted value keeps the stored one; a sent value (or, for an
   * external keeper, a changed ref) increments the version. With an expected resource version
   * the update applies only if it still matches (conflict otherwise); without one, the
   * read-modify-write is retried on a lost race, so concurrent writers never lose an update
   * silently. allowMissing creates a missing secret.
   */
  async update(
    caller: Caller,
    input: SecretInput,
    options: {
      readonly expectedResourceVersion: string;
      readonly allowMissing: boolean;
      readonly rules?: DialectRules;
    },
  ): Promise<SecretView> {
    await this.guard.require(caller, secretActions.write, input.namespace, input.name);
    for (let attempt = 0; attempt < 5; attempt++) {
      const previous = await this.store.get(input.namespace, input.name);
      if (!previous) {
        if (!options.allowMissing) throw notFound("secret", input.name);
        await this.guard.require(caller, secretActions.create, input.namespace, input.name);
        const record = await this.newRecord(caller, input, options.rules);
        if ((await this.store.create(record)) === "created") {
          await this.audit(caller, "create", input, "success", `version ${record.version}`);
          return view(record);
        }
        if (options.expectedResourceVersion) throw this.conflictOn(input.name);
        continue;
      }
      if (
        options.expectedResourceVersion &&
        options.expectedResourceVersion !== previous.resourceVersion
      ) {
        await this.audit(caller, "write", input, "conflict", "stale resource version");
        throw this.conflictOn(input.name);
      }
      const next = await this.nextRecord(caller, previous, input, options.rules);
      if ((await this.store.update(previous, next)) === "updated") {
        await this.audit(caller, "write", input, "success", `version ${next.version}`);
        return view(next);
      }
      if (options.expectedResourceVersion) throw this.conflictOn(input.name);
    }
    throw this.conflictOn(input.name);
  }

  /** Deletes a secret with its history; with an expected resource version only if it matches. */
  async delete(
    caller: Caller,
    namespace: string,
    name: string,
    expectedResourceVersion = "",
  ): Promise<SecretView> {
    await this.guard.require(caller, secretActions.delete, namespace, name);
    const deleted = await this.store.delete(namespace, name, expectedResourceVersion || undefined);
    if (deleted === "conflict") throw this.conflictOn(name);
    if (!deleted) throw notFound("secret", name);
    await this.guard.record(caller, secretActions.delete, namespace, name, "success");
    return view(deleted);
  }

  /**
   * Decrypts up to maxDecryptNames secrets of one namespace, answering per name and never with a
   * whole-call not-found. Each name needs the decrypt grant in the namespace, a service account,
   * and the caller in the secret's decrypters; every name is audited with its outcome before any
   * value is returned.
   */
  async decrypt(
    caller: Caller,
    namespace: string,
    names: readonly string[],
    version = 0,
  ): Promise<Map<string, DecryptOutcome>> {
    const v = new Violations();
    checkObjectName(v, "namespace", namespace);
    if (names.length === 0) v.add("names", "at least one name is required");
    if (names.length > this.limits.maxDecryptNames)
      v.add("names", `at most ${this.limits.maxDecryptNames} names`);
    if (!Number.isSafeInteger(version) || version < 0)
      v.add("version", "must be zero or a positive version");
    v.throwIfAny();

    // The names are read and opened concurrently, and their audit events appended together: the
    // audit log writes events queued in the same tick as one batch, so ten names cost one audit
    // insert instead of ten. Nothing is returned until every append has resolved; if any fails,
    // the whole call fails and no value leaves.
    const unique = [...new Set(names)];
    const outcomes = await Promise.all(
      unique.map((name) => this.decryptOne(caller, namespace, name, version)),
    );
    await Promise.all(
      outcomes.map((outcome, i) => {
        this.observer.decrypted(outcome.auditOutcome);
        return this.guard.record(
          caller,
          secretActions.decrypt,
          namespace,
          unique[i] as string,
          outcome.auditOutcome,
          outcome.reason,
        );
      }),
    );
    return new Map(
      unique.map((name, i) => [name, (outcomes[i] as (typeof outcomes)[number]).result]),
    );
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
    const pair = await this.namespaceKey(namespace);
    return { keyId: pair.keyId, publicKey: pair.publicKey };
  }

  private async decryptOne(
    caller: Caller,
    namespace: string,
    name: string,
    version: number,
  ): Promise<{
    result: DecryptOutcome;
    auditOutcome: "success" | "denied" | "not_found" | "failed";
    reason?: string;
  }> {
    // The namespace-level decision first, so that a caller without the grant cannot tell which
    // names exist.
    const general = authorize(caller.principal, secretActions.decrypt, namespace, name);
    if (!general.allowed)
      return {
        result: { error: "not authorized" },
        auditOutcome: "denied",
        reason: general.reason,
      };
    const record = await this.store.get(namespace, name);
    if (!record) return { result: { error: "not found" }, auditOutcome: "not_found" };
    const specific = authorize(caller.principal, secretActions.decrypt, namespace, name, record);
    if (!specific.allowed)
      return {
        result: { error: "not authorized" },
        auditOutcome: "denied",
        reason: specific.reason,
      };

    if (record.keeper !== systemKeeper) {
      if (version !== 0 && version !== record.version) {
        return {
          result: { error: "not found" },
          auditOutcome: "not_found",
          reason: `version ${version} not kept`,
        };
      }
      const resolved = await this.keepers.resolve(record.keeper, record.ref);
      if ("failure" in resolved) {
        return {
          result: { error: "decryption failed" },
          auditOutcome: "failed",
          reason: resolved.failure,
        };
      }
      return { result: { value: resolved, version: record.version }, auditOutcome: "success" };
    }

    const wanted = version === 0 ? record.version : version;
    const envelope =
      wanted === record.version
        ? record.envelope
        : await this.store.getVersion(record.uid, wanted, record.version);
    if (!envelope) {
      return {
        result: { error: "not found" },
        auditOutcome: "not_found",
        reason: `version ${wanted} not kept`,
      };
    }
    try {
      const value = openValue(this.ring, envelope, {
        namespace,
        name,
        uid: record.uid,
        version: wanted,
      });
      this.observer.crypto("open", "ok");
      return { result: { value, version: wanted }, auditOutcome: "success" };
    } catch (err) {
      if (err instanceof DecryptionError) {
        this.observer.crypto("open", "failed");
        return {
          result: { error: "decryption failed" },
          auditOutcome: "failed",
          reason: `decryption failed: ${err.reason}`,
        };
      }
      throw err;
    }
  }

  private async newRecord(
    caller: Caller,
    input: SecretInput,
    rules?: DialectRules,
  ): Promise<SecretRecord> {
    const keeper = input.keeper || systemKeeper;
    this.validate(input, keeper, true, rules);
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

  /** Validates a write; on create a system-kept secret needs a value. */
  private validate(
    input: SecretInput,
    keeper: string,
    creating: boolean,
    rules: DialectRules | undefined,
  ): void {
    const v = new Violations();
    for (const r of rules?.(input, creating) ?? []) v.add(r.field, r.message);
    checkObjectName(v, "namespace", input.namespace);
    checkObjectName(v, "name", input.name);
    checkMap(v, "labels", input.labels, this.limits.maxLabels, 1024);
    checkMap(v, "annotations", input.annotations, this.limits.maxAnnotations, 16384);
    checkText(v, "description", input.description, 1024);
    if (input.decrypters.length > this.limits.maxDecrypters) {
      v.add("decrypters", `at most ${this.limits.maxDecrypters} decrypters`);
    }
    const seen = new Set<string>();
    input.decrypters.forEach((d, i) => {
      checkPrincipalName(v, `decrypters[${i}]`, d);
      if (seen.has(d)) v.add(`decrypters[${i}]`, `duplicate decrypter "${d}"`);
      seen.add(d);
    });
    if (!keeperName.test(keeper))
      v.add("keeper", "must be 1 to 64 letters, digits, '_', '.', ':' or '-'");
    if (keeper === systemKeeper) {
      if (input.ref !== "")
        v.add("ref", `must be empty for keeper "${systemKeeper}" (send a value instead)`);
      if (creating && input.value === undefined) v.add("value", "is required");
      if (input.value?.kind === "plaintext") {
        const size = input.value.value.byteLength;
        if (size === 0) v.add("value", "must not be empty");
        else if (size > this.limits.maxValueBytes) {
          v.add("value", `is ${size} bytes, more than the limit of ${this.limits.maxValueBytes}`);
        }
      }
    } else {
      if (input.ref === "") v.add("ref", `is required for keeper "${keeper}"`);
      else checkText(v, "ref", input.ref, 1024);
      if (input.value !== undefined)
        v.add("value", `must be empty for keeper "${keeper}" (its value lives there)`);
    }
    v.throwIfAny();
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
    const pair = await this.sealingKey(input.namespace, value.keyId);
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
    if (opened.byteLength === 0) v.add("value", "must not be empty");
    if (opened.byteLength > this.limits.maxValueBytes) {
      v.add(
        "value",
        `is ${opened.byteLength} bytes, more than the limit of ${this.limits.maxValueBytes}`,
      );
    }
    if (!v.isEmpty) opened.dispose();
    v.throwIfAny();
    return opened;
  }

  /**
   * The key pair a sealed value names: the namespace's current one, or the one before the last
   * rotation while its grace period lasts. Anything else is an invalid key id, with a message
   * saying which case it is.
   */
  private async sealingKey(namespace: string, keyId: string): Promise<NamespaceKeyPair> {
    const field = "value.sealed.key_id";
    const current = await this.store.getNamespaceKey(namespace);
    if (current?.keyId === keyId) return current;
    const previous = await this.store.getPreviousNamespaceKey(namespace);
    if (previous?.pair.keyId === keyId) {
      if (this.now() < previous.validUntil) return previous.pair;
      new Violations()
        .add(
          field,
          `key id "${keyId}" was rotated out and stopped being accepted at ${previous.validUntil.toISOString()}; fetch the current key with GetPublicKey`,
        )
        .throwIfAny();
    }
    new Violations()
      .add(
        field,
        `unknown key id "${keyId}" for namespace "${namespace}"; fetch the current one with GetPublicKey`,
      )
      .throwIfAny();
    throw new Error("unreachable");
  }

  /** Gives a namespace a new sealing key pair; the previous one is accepted until `graceUntil`. */
  async rotateNamespaceKey(caller: Caller, namespace: string, graceUntil: Date) {
    await this.guard.require(caller, adminActions.keysWrite, namespace);
    const v = new Violations();
    checkObjectName(v, "namespace", namespace);
    v.throwIfAny();
    const next = generateNamespaceKeyPair(this.ring, namespace);
    const previous = await this.store.rotateNamespaceKey(next, graceUntil);
    await this.guard.record(
      caller,
      "keys:namespace.rotate",
      namespace,
      "",
      "success",
      `new key ${next.keyId}`,
    );
    return { current: next, previous };
  }

  private async namespaceKey(namespace: string): Promise<NamespaceKeyPair> {
    const existing = await this.store.getNamespaceKey(namespace);
    if (existing) return existing;
    return this.store.putNamespaceKeyIfAbsent(generateNamespaceKeyPair(this.ring, namespace));
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

function view(record: SecretRecord): SecretView {
  const { envelope: _sealed, ...rest } = record;
  return rest;
}

function newResourceVersion(): string {
  return randomBytes(8).toString("hex");
}

function checkMap(
  v: Violations,
  field: string,
  map: Readonly<Record<string, string>>,
  maxEntries: number,
  maxValue: number,
): void {
  const entries = Object.entries(map);
  if (entries.length > maxEntries) v.add(field, `at most ${maxEntries} entries`);
  for (const [key, value] of entries) {
    if (!mapKey.test(key)) {
      v.add(
        `${field}[${JSON.stringify(key)}]`,
        "keys are 1 to 317 characters without whitespace, control characters or any of = ! , ( )",
      );
    }
    checkText(v, `${field}[${JSON.stringify(key)}]`, value, maxValue);
  }
}
