/**
 * Namespace sealing keys: each namespace's X25519 key pair for client-side sealing (its private
 * half wrapped by the master key), created on first use, and rotated with a grace period during
 * which the previous key is still accepted. Used by the secrets use cases (the public key, opening
 * sealed values) and by key administration (rotation). Authorisation is the callers' business.
 */
import type { KeyRing } from "../crypto/keyring.js";
import { generateNamespaceKeyPair } from "../crypto/sealed-box.js";
import { Violations } from "../domain/errors.js";
import type { NamespaceKeyPair } from "../domain/sealed.js";
import type { SecretStore } from "./ports.js";

type KeyStore = Pick<
  SecretStore,
  "getNamespaceKey" | "putNamespaceKeyIfAbsent" | "rotateNamespaceKey" | "getPreviousNamespaceKey"
>;

export class NamespaceKeys {
  constructor(
    private readonly store: KeyStore,
    private readonly ring: KeyRing,
    private readonly now: () => Date,
  ) {}

  /** The namespace's current key pair, created on first use (replicas racing agree on one). */
  async current(namespace: string): Promise<NamespaceKeyPair> {
    const existing = await this.store.getNamespaceKey(namespace);
    if (existing) return existing;
    return this.store.putNamespaceKeyIfAbsent(generateNamespaceKeyPair(this.ring, namespace));
  }

  /**
   * The key pair a sealed value names: the namespace's current one, or the one before the last
   * rotation while its grace period lasts. Anything else is an invalid key id (field `field`),
   * with a message saying which case it is.
   */
  async forSealedValue(namespace: string, keyId: string, field: string): Promise<NamespaceKeyPair> {
    const current = await this.store.getNamespaceKey(namespace);
    if (current?.keyId === keyId) return current;
    const previous = await this.store.getPreviousNamespaceKey(namespace);
    const v = new Violations();
    if (previous?.pair.keyId === keyId) {
      if (this.now() < previous.validUntil) return previous.pair;
      v.add(
        field,
        `key id "${keyId}" was rotated out and stopped being accepted at ${previous.validUntil.toISOString()}; fetch the current key with GetPublicKey`,
      );
    } else {
      v.add(
        field,
        `unknown key id "${keyId}" for namespace "${namespace}"; fetch the current one with GetPublicKey`,
      );
    }
    v.throwIfAny();
    throw new Error("unreachable: a violation was added");
  }

  /** Gives the namespace a new key pair; the previous one is accepted until `graceUntil`. */
  async rotate(
    namespace: string,
    graceUntil: Date,
  ): Promise<{ current: NamespaceKeyPair; previous: NamespaceKeyPair | undefined }> {
    const next = generateNamespaceKeyPair(this.ring, namespace);
    const previous = await this.store.rotateNamespaceKey(next, graceUntil);
    return { current: next, previous };
  }
}
