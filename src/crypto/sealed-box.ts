import type { NamespaceKeyPair, WrappedPrivateKey } from "../domain/sealed.js";
import { activeKek, aeadOpen, aeadSeal, aeadShapeOk, associatedData } from "./aead.js";
import { decodeStandardBase64, encodeStandardBase64 } from "./base64.js";
import { DecryptionError } from "./envelope.js";
import type { KeyRing } from "./keyring.js";
import { SecretValue } from "./secret-value.js";
import { requireSodium, type Sodium } from "./sodium.js";

/** Length of an X25519 public or private key. */
export const BOX_KEY_BYTES = 32;
/** Bytes crypto_box_seal adds to a message: an ephemeral public key and a MAC. */
export const SEALED_BOX_OVERHEAD_BYTES = 48;

/** Which check a sealed value failed. */
export type SealedBoxErrorKind = "bad_base64" | "too_short" | "does_not_open";

/**
 * A client-sealed value the server cannot accept; the message says which check failed and is
 * safe to return to the client as InvalidArgument.
 */
export class SealedBoxError extends Error {
  /** Which check failed. */
  readonly kind: SealedBoxErrorKind;

  constructor(kind: SealedBoxErrorKind, message: string) {
    super(message);
    this.name = "SealedBoxError";
    this.kind = kind;
  }
}

// Binds a wrapped private key to its namespace, key id and public key: a private key copied to
// another namespace's record, or a record whose public key was replaced (which would have clients
// seal for someone else's key), does not unwrap.
const PRIVATE_KEY_TAG = "seald/v1/namespace-key";

function privateKeyAd(
  kekId: string,
  keyPair: Pick<NamespaceKeyPair, "namespace" | "keyId" | "publicKey">,
) {
  return associatedData(PRIVATE_KEY_TAG, [
    kekId,
    keyPair.namespace,
    keyPair.keyId,
    keyPair.publicKey,
  ]);
}

/**
 * Returns the key id of a public key: the first 16 hex characters (64 bits) of its BLAKE2b-256
 * hash (crypto_generichash), which is stable and changes whenever the key does.
 */
export function publicKeyId(publicKey: Uint8Array): string {
  // 64 bits is plenty: the id only has to tell a namespace's current key from its earlier ones,
  // and it is short enough for an operator to compare by eye.
  const sodium = requireSodium();
  return sodium.to_hex(sodium.crypto_generichash(32, publicKey, null)).slice(0, 16);
}

function wrapPrivateKey(
  sodium: Sodium,
  ring: KeyRing,
  privateKey: Uint8Array,
  keyPair: Pick<NamespaceKeyPair, "namespace" | "keyId" | "publicKey">,
): WrappedPrivateKey {
  const { kekId, kek } = activeKek(ring);
  return { kekId, ...aeadSeal(sodium, privateKey, privateKeyAd(kekId, keyPair), kek) };
}

function unwrapPrivateKey(sodium: Sodium, ring: KeyRing, keyPair: NamespaceKeyPair): Uint8Array {
  const { kekId, nonce, ciphertext } = keyPair.wrappedPrivateKey;
  const kek = ring.get(kekId);
  if (kek === undefined) throw new DecryptionError("unknown_kek");
  if (!aeadShapeOk(nonce, ciphertext)) throw new DecryptionError("malformed");
  const privateKey = aeadOpen(sodium, ciphertext, privateKeyAd(kekId, keyPair), nonce, kek);
  if (privateKey === undefined) throw new DecryptionError("unwrap_failed");
  return privateKey;
}

/**
 * Generates a namespace's X25519 key pair for client-side sealing, its private half wrapped by
 * the ring's active master key.
 */
export function generateNamespaceKeyPair(ring: KeyRing, namespace: string): NamespaceKeyPair {
  if (namespace === "") {
    throw new TypeError("generateNamespaceKeyPair: namespace must not be empty");
  }
  const sodium = requireSodium();
  const { publicKey, privateKey } = sodium.crypto_box_keypair();
  try {
    const identity = { namespace, keyId: publicKeyId(publicKey), publicKey };
    return { ...identity, wrappedPrivateKey: wrapPrivateKey(sodium, ring, privateKey, identity) };
  } finally {
    privateKey.fill(0);
  }
}

/**
 * Opens a base64 crypto_box_seal box sent by a client, throwing SealedBoxError for client
 * mistakes and DecryptionError if the stored private key itself does not unwrap.
 */
export function openSealedValue(
  ring: KeyRing,
  keyPair: NamespaceKeyPair,
  boxBase64: string,
): SecretValue {
  const sodium = requireSodium();
  // Client input first, so a malformed request costs no private key unwrap.
  const box = decodeStandardBase64(boxBase64);
  if (box === undefined) {
    throw new SealedBoxError(
      "bad_base64",
      "sealed value is not standard base64 (A-Z a-z 0-9 + / with optional = padding, no whitespace)",
    );
  }
  if (box.byteLength < SEALED_BOX_OVERHEAD_BYTES) {
    throw new SealedBoxError(
      "too_short",
      `sealed value is ${box.byteLength} bytes, shorter than the ${SEALED_BOX_OVERHEAD_BYTES} bytes ` +
        "crypto_box_seal adds to any message",
    );
  }
  const privateKey = unwrapPrivateKey(sodium, ring, keyPair);
  try {
    let plaintext: Uint8Array;
    try {
      plaintext = sodium.crypto_box_seal_open(box, keyPair.publicKey, privateKey);
    } catch {
      throw new SealedBoxError(
        "does_not_open",
        `sealed value does not open with public key ${keyPair.keyId} of namespace ` +
          `"${keyPair.namespace}"; seal it with crypto_box_seal for that key`,
      );
    }
    try {
      return SecretValue.fromBytes(plaintext);
    } finally {
      plaintext.fill(0);
    }
  } finally {
    privateKey.fill(0);
  }
}

/** Seals bytes for a public key with crypto_box_seal and returns standard base64, as a client does. */
export function sealForPublicKey(publicKey: Uint8Array, value: Uint8Array): string {
  return encodeStandardBase64(requireSodium().crypto_box_seal(value, publicKey));
}

/**
 * Re-wraps a namespace's private key under the ring's active master key, for key rotation; the
 * key pair and its id do not change.
 */
export function rewrapNamespacePrivateKey(
  ring: KeyRing,
  keyPair: NamespaceKeyPair,
): NamespaceKeyPair {
  const sodium = requireSodium();
  const privateKey = unwrapPrivateKey(sodium, ring, keyPair);
  try {
    return { ...keyPair, wrappedPrivateKey: wrapPrivateKey(sodium, ring, privateKey, keyPair) };
  } finally {
    privateKey.fill(0);
  }
}
