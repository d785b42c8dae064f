/**
 * Key management use cases (admins only): the status of the master keys, the re-wrap job, and
 * namespace sealing-key rotation.
 */
import type { Caller } from "../auth/caller.js";
import { adminActions } from "../auth/principal.js";
import type { KeyRing } from "../crypto/keyring.js";
import type { Guard } from "./guard.js";
import type { KeyUsageCounts, RewrapJob, RewrapJobState } from "./rewrap.js";
import type { SecretsService } from "./secrets.js";

/** One master key and what still depends on it. */
export interface KeyStatus extends KeyUsageCounts {
  readonly keyId: string;
  readonly configured: boolean;
  readonly active: boolean;
}

/** Key management over the key ring, the re-wrap job and the secrets. */
export class KeysService {
  constructor(
    private readonly ring: KeyRing,
    private readonly guard: Guard,
    private readonly rewrap: RewrapJob,
    private readonly secrets: SecretsService,
    private readonly publicKeyGraceMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

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

  async rotatePublicKey(caller: Caller, namespace: string) {
    const graceUntil = new Date(this.now().getTime() + this.publicKeyGraceMs);
    const { current, previous } = await this.secrets.rotateNamespaceKey(
      caller,
      namespace,
      graceUntil,
    );
    return { current, previous, graceUntil };
  }
}
