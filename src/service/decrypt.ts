/**
 * Batch decrypt: up to maxDecryptNames secrets of one namespace, answered per name and never with
 * a whole-call not-found. Each name needs the decrypt grant in the namespace, a service account,
 * and the caller in the secret's decrypters; every name is audited with its outcome before any
 * value is returned. Errors are deliberately coarse for the caller; the audit record has why.
 */
import type { Caller } from "../auth/caller.js";
import type { Guard } from "../auth/guard.js";
import { authorize } from "../auth/policy.js";
import { secretActions } from "../auth/principal.js";
import { DecryptionError, openValue } from "../crypto/envelope.js";
import type { KeyRing } from "../crypto/keyring.js";
import type { SecretValue } from "../crypto/secret-value.js";
import { boundsOf } from "../domain/deadline.js";
import { MalformedRecordError, Violations } from "../domain/errors.js";
import { type SecretRecord, systemKeeper } from "../domain/secret.js";
import type { ExternalKeepers, SecretStore, SecretsObserver } from "./ports.js";
import type { SecretLimits } from "./secret-rules.js";
import { checkObjectName } from "./validation.js";

/** The outcome of decrypting one name, as the caller sees it. */
export type DecryptOutcome =
  | { readonly value: SecretValue; readonly version: number }
  | { readonly error: "not found" | "not authorized" | "decryption failed" | "not text" };

/**
 * The form the caller takes values in: "bytes" (any value), or "text", where a value that is not
 * valid UTF-8 is refused for its own name ("not text") instead of failing the call or being
 * rewritten. The caller's choice, never the value's content, decides the form.
 */
export type ValueForm = "text" | "bytes";

type AuditOutcome = "success" | "denied" | "not_found" | "failed";

/** One name's outcome with what its audit record says. */
interface Decrypted {
  readonly result: DecryptOutcome;
  readonly audit: AuditOutcome;
  readonly reason?: string;
}

const success = (value: SecretValue, version: number): Decrypted => ({
  result: { value, version },
  audit: "success",
});
const notAuthorized = { error: "not authorized" } as const;
const denied = (reason: string): Decrypted => ({
  result: notAuthorized,
  audit: "denied",
  reason,
});
const missing = (reason?: string): Decrypted => ({
  result: { error: "not found" },
  audit: "not_found",
  ...(reason === undefined ? {} : { reason }),
});
const missingAsDenied = (): Decrypted => ({
  result: notAuthorized,
  audit: "not_found",
  reason: "no such secret (answered as not authorized: the caller may not read the namespace)",
});
const failed = (reason: string): Decrypted => ({
  result: { error: "decryption failed" },
  audit: "failed",
  reason,
});

/** A text caller gets only valid UTF-8; anything else is refused for that name, and audited so. */
function inForm(d: Decrypted, form: ValueForm): Decrypted {
  if (form === "bytes" || !("value" in d.result) || d.result.value.isUtf8) return d;
  d.result.value.dispose();
  return {
    result: { error: "not text" },
    audit: "failed",
    reason: "the value is not valid UTF-8 and was asked for as text",
  };
}

export interface DecryptorOptions {
  readonly store: Pick<SecretStore, "get" | "getVersion">;
  readonly ring: KeyRing;
  readonly guard: Guard;
  readonly keepers: ExternalKeepers;
  readonly limits: SecretLimits;
  readonly observer: SecretsObserver;
}

export class Decryptor {
  constructor(private readonly o: DecryptorOptions) {}

  async decrypt(
    caller: Caller,
    namespace: string,
    names: readonly string[],
    version = 0,
    form: ValueForm = "text",
  ): Promise<Map<string, DecryptOutcome>> {
    const v = new Violations();
    checkObjectName(v, "namespace", namespace);
    if (names.length === 0) v.add("names", "at least one name is required");
    if (names.length > this.o.limits.maxDecryptNames)
      v.add("names", `at most ${this.o.limits.maxDecryptNames} names`);
    if (!Number.isSafeInteger(version) || version < 0)
      v.add("version", "must be zero or a positive version");
    v.throwIfAny();

    // The names are read and opened concurrently, and their audit events appended together: the
    // audit log writes events queued in the same tick as one batch, so ten names cost one audit
    // insert instead of ten. Nothing is returned until every append has resolved; if any fails,
    // the whole call fails and no value leaves.
    const unique = [...new Set(names)];
    const settled = await Promise.allSettled(
      unique.map(async (name) =>
        inForm(await this.decryptOne(caller, namespace, name, version), form),
      ),
    );
    const outcomes = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    // Should any name or any audit append fail, the whole call fails: no value leaves, and the
    // plaintexts already opened for the other names are wiped.
    const wipe = () => {
      for (const o of outcomes) if ("value" in o.result) o.result.value.dispose();
    };
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) {
      wipe();
      throw failed.reason;
    }
    try {
      await Promise.all(
        outcomes.map((outcome, i) => {
          this.o.observer.decrypted(outcome.audit);
          return this.o.guard.record(
            caller,
            secretActions.decrypt,
            namespace,
            unique[i] as string,
            outcome.audit,
            outcome.reason,
          );
        }),
      );
    } catch (err) {
      wipe();
      throw err;
    }
    return new Map(unique.map((name, i) => [name, (outcomes[i] as Decrypted).result]));
  }

  private async decryptOne(
    caller: Caller,
    namespace: string,
    name: string,
    version: number,
  ): Promise<Decrypted> {
    // The namespace-level decision first, so that a caller without the grant cannot tell which
    // names exist.
    const general = authorize(caller.principal, secretActions.decrypt, namespace, name);
    if (!general.allowed) return denied(general.reason);
    try {
      return await this.decryptKnown(caller, namespace, name, version);
    } catch (err) {
      // A damaged head or history record spoils its own name only.
      if (!(err instanceof MalformedRecordError)) throw err;
      const outcome = failed(`the stored record is damaged: ${err.problem}`);
      // Whether the caller is a decrypter of a damaged head cannot be known; one that may not
      // read the namespace is not told that a record exists there.
      return this.mayRead(caller, namespace, name)
        ? outcome
        : { ...outcome, result: notAuthorized };
    }
  }

  /** After the namespace-level decision: look the secret up and open or resolve its value. */
  private async decryptKnown(
    caller: Caller,
    namespace: string,
    name: string,
    version: number,
  ): Promise<Decrypted> {
    const record = await this.o.store.get(namespace, name, boundsOf(caller));
    if (!record) {
      // A caller who may read the namespace can list its names anyway and is told "not found".
      // To one who may not, a missing name answers as one it is not a decrypter of does, so the
      // decrypt grant alone reveals nothing about which secrets exist; the audit keeps the truth.
      return this.mayRead(caller, namespace, name) ? missing() : missingAsDenied();
    }
    const specific = authorize(caller.principal, secretActions.decrypt, namespace, name, record);
    if (!specific.allowed) return denied(specific.reason);
    return record.keeper === systemKeeper
      ? this.openSealed(caller, namespace, name, record, version)
      : this.resolveExternal(namespace, record, version);
  }

  private mayRead(caller: Caller, namespace: string, name: string): boolean {
    return authorize(caller.principal, secretActions.read, namespace, name).allowed;
  }

  /** A value held elsewhere: only its current version exists. */
  private async resolveExternal(
    namespace: string,
    record: SecretRecord,
    version: number,
  ): Promise<Decrypted> {
    if (version !== 0 && version !== record.version) return missing(`version ${version} not kept`);
    const resolved = await this.o.keepers.resolve(record.keeper, record.ref, namespace);
    if ("failure" in resolved) return failed(resolved.failure);
    return success(resolved, record.version);
  }

  /** A value seald sealed: the current one from the head, an older one from the kept history. */
  private async openSealed(
    caller: Caller,
    namespace: string,
    name: string,
    record: SecretRecord,
    version: number,
  ): Promise<Decrypted> {
    const wanted = version === 0 ? record.version : version;
    const envelope =
      wanted === record.version
        ? record.envelope
        : await this.o.store.getVersion(record.uid, wanted, record.version, boundsOf(caller));
    if (!envelope) return missing(`version ${wanted} not kept`);
    try {
      // Bound to the name asked for: a record that claims to be another secret does not open.
      const value = openValue(this.o.ring, envelope, {
        namespace,
        name,
        uid: record.uid,
        version: wanted,
      });
      this.o.observer.crypto("open", "ok");
      return success(value, wanted);
    } catch (err) {
      if (!(err instanceof DecryptionError)) throw err;
      this.o.observer.crypto("open", "failed");
      return failed(`decryption failed: ${err.reason}`);
    }
  }
}
