/**
 * Key management use cases (admins only): the status of the master keys, the re-wrap job, and
 * namespace sealing-key rotation.
 */
import type { Caller } from "../auth/caller.js";
import type { Guard } from "../auth/guard.js";
import { adminActions } from "../auth/principal.js";
import type { KeyRing } from "../crypto/keyring.js";
import { Violations } from "../domain/errors.js";
import type { NamespaceKeys } from "./namespace-keys.js";
import type { KeyUsageCounts, RewrapJob, RewrapJobState } from "./rewrap.js";
import { checkObjectName } from "./validation.js";

/** One master key and what still depends on it. */
export interface KeyStatus extends KeyUsageCounts {
  readonly keyId: string;
  readonly configured: boolean;
  readonly active: boolean;
}

export interface KeyUseCasesOptions {
  readonly ring: KeyRing;
  readonly guard: Guard;
  readonly rewrap: RewrapJob;
  readonly namespaceKeys: NamespaceKeys;
  /** How long a namespace's previous public key is accepted after a rotation. */
  readonly publicKeyGraceMs: number;
  readonly now?: () => Date;
}

/** Key management over the key ring, the re-wrap job and the namespace sealing keys. */
export class KeyUseCases {
  private readonly ring: KeyRing;
  private readonly guard: Guard;
  private readonly rewrap: RewrapJob;
  private readonly namespaceKeys: NamespaceKeys;
  private readonly publicKeyGraceMs: number;
  private readonly now: () => Date;

  constructor(options: KeyUseCasesOptions) {
    this.ring = options.ring;
    this.guard = options.guard;
    this.rewrap = options.rewrap;
    this.namespaceKeys = options.namespaceKeys;
    this.publicKeyGraceMs = options.publicKeyGraceMs;
    this.now = options.now ?? (() => new Date());
  }

  async status(
    caller: Caller,
  ): Promise<{ activeKeyId: string; keys: KeyStatus[]; job: RewrapJobState }> {
    await this.guard.require(caller, adminActions.keysRead, "");
    const usage = await this.rewrap.usage();
    const ids = [...new Set([...this.ring.ids, ...usage.keys()])];
    const keys = ids.map((keyId) => ({
      keyId,
      configured: this.ring.has(keyId),
      active: keyId === this.ring.activeId,
      ...(usage.get(keyId) ?? { values: 0, history: 0, namespaceKeys: 0, tokens: 0 }),
    }));
    return { activeKeyId: this.ring.activeId, keys, job: await this.rewrap.status() };
  }

  async startRewrap(caller: Caller): Promise<RewrapJobState> {
    await this.guard.require(caller, adminActions.keysWrite, "");
    const job = await this.rewrap.start();
    await this.guard.record(
      caller,
      "keys:rewrap.start",
      "",
      "",
      "success",
      `target ${job.targetKeyId}`,
    );
    return job;
  }

  /** Gives a namespace a new sealing key pair; the previous one stays accepted for the grace. */
  async rotatePublicKey(caller: Caller, namespace: string) {
    await this.guard.require(caller, adminActions.keysWrite, namespace);
    const v = new Violations();
    checkObjectName(v, "namespace", namespace);
    v.throwIfAny();
    const graceUntil = new Date(this.now().getTime() + this.publicKeyGraceMs);
    const { current, previous } = await this.namespaceKeys.rotate(namespace, graceUntil);
    await this.guard.record(
      caller,
      "keys:namespace.rotate",
      namespace,
      "",
      "success",
      `new key ${current.keyId}`,
    );
    return { current, previous, graceUntil };
  }
}
