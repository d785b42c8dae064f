import type { Envelope } from "../domain/sealed.js";
import {
  AEAD_KEY_BYTES,
  activeKek,
  aeadOpen,
  aeadSeal,
  aeadShapeOk,
  associatedData,
  freshRandomBytes,
  isWellFormed,
} from "./aead.js";
import type { KeyRing } from "./keyring.js";
import { SecretValue } from "./secret-value.js";
import { requireSodium, type Sodium } from "./sodium.js";

/** The record a sealed value belongs to; sealing binds the ciphertext to all four fields. */
export type SecretBinding = {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly version: number;
};

/** Why a value did not open; for audit logs only, never for the caller. */
export type DecryptionFailure =
  /** The envelope names a master key the ring does not hold. */
  | "unknown_kek"
  /** The DEK did not open: wrong master key, corrupted wrap, or a different record's binding. */
  | "unwrap_failed"
  /** The value did not open: corrupted ciphertext or nonce, or a ciphertext from another record. */
  | "value_failed"
  /** A nonce or ciphertext has a length sealing never produces. */
  | "malformed";

/**
 * A sealed value that did not open; the message is deliberately uninformative and `reason` is
 * meant only for the audit log.
 */
export class DecryptionError extends Error {
  /** What failed, for the audit log. */
  readonly reason: DecryptionFailure;

  constructor(reason: DecryptionFailure) {
    // One fixed message, so that nothing a caller sees distinguishes a missing key from a forged
    // record (decrypt failures are coarse to the caller and detailed in the audit log, as the README's
    // DecryptSecrets section says).
    super("decryption failed");
    this.name = "DecryptionError";
    this.reason = reason;
  }
}

// Format tags keep value and DEK ciphertexts (and future formats) from ever being confused with
// each other even if the same key were used; bump "v1" when the layout changes.
const VALUE_TAG = "seald/v1/value";
const DEK_TAG = "seald/v1/dek";

function bindingFields(binding: SecretBinding): string[] {
  return [binding.namespace, binding.name, binding.uid, String(binding.version)];
}

function checkBinding(binding: SecretBinding): void {
  // Programming errors, not decryption failures: sealing under an empty uid or a fractional
  // version would bind the value to a record that can never be named again.
  for (const field of ["namespace", "name", "uid"] as const) {
    const value = binding[field];
    if (typeof value !== "string" || value === "" || !isWellFormed(value)) {
      throw new TypeError(`sealing binding: ${field} must be a non-empty, well-formed string`);
    }
  }
  if (!Number.isSafeInteger(binding.version) || binding.version < 1) {
    throw new TypeError("sealing binding: version must be a positive integer");
  }
}

function wrapDek(sodium: Sodium, ring: KeyRing, dek: Uint8Array, binding: SecretBinding) {
  const { kekId, kek } = activeKek(ring);
  // The wrap binds the record too, so a wrapped DEK moved to another record does not unwrap, and
  // binds the KEK id so that a record whose kekId field was edited fails here rather than later.
  const { nonce, ciphertext } = aeadSeal(
    sodium,
    dek,
    associatedData(DEK_TAG, [kekId, ...bindingFields(binding)]),
    kek,
  );
  return { kekId, dekNonce: nonce, wrappedDek: ciphertext };
}

function unwrapDek(
  sodium: Sodium,
  ring: KeyRing,
  envelope: Envelope,
  binding: SecretBinding,
): Uint8Array {
  const kek = ring.get(envelope.kekId);
  if (kek === undefined) throw new DecryptionError("unknown_kek");
  if (!aeadShapeOk(envelope.dekNonce, envelope.wrappedDek)) throw new DecryptionError("malformed");
  const dek = aeadOpen(
    sodium,
    envelope.wrappedDek,
    associatedData(DEK_TAG, [envelope.kekId, ...bindingFields(binding)]),
    envelope.dekNonce,
    kek,
  );
  if (dek === undefined) throw new DecryptionError("unwrap_failed");
  if (dek.byteLength !== AEAD_KEY_BYTES) {
    // Authenticated yet the wrong size: only a bug in an earlier format could store this.
    dek.fill(0);
    throw new DecryptionError("malformed");
  }
  return dek;
}

/** Seals a value for one record under a fresh data key wrapped by the ring's active master key. */
export function sealValue(ring: KeyRing, value: SecretValue, binding: SecretBinding): Envelope {
  checkBinding(binding);
  const sodium = requireSodium();
  // A fresh DEK per call, never per secret: each version is independent, and a random 24-byte
  // nonce under a key used once cannot repeat.
  const dek = freshRandomBytes(AEAD_KEY_BYTES);
  const plaintext = value.unsafeRevealBytes();
  try {
    const { nonce, ciphertext } = aeadSeal(
      sodium,
      plaintext,
      associatedData(VALUE_TAG, bindingFields(binding)),
      dek,
    );
    return { ...wrapDek(sodium, ring, dek, binding), nonce, ciphertext };
  } finally {
    // Best effort: copies libsodium made inside its WebAssembly heap are beyond our reach.
    plaintext.fill(0);
    dek.fill(0);
  }
}

/** Opens a sealed value of one record, throwing DecryptionError if anything does not open. */
export function openValue(ring: KeyRing, envelope: Envelope, binding: SecretBinding): SecretValue {
  checkBinding(binding);
  const sodium = requireSodium();
  const dek = unwrapDek(sodium, ring, envelope, binding);
  try {
    if (!aeadShapeOk(envelope.nonce, envelope.ciphertext)) throw new DecryptionError("malformed");
    const plaintext = aeadOpen(
      sodium,
      envelope.ciphertext,
      associatedData(VALUE_TAG, bindingFields(binding)),
      envelope.nonce,
      dek,
    );
    if (plaintext === undefined) throw new DecryptionError("value_failed");
    try {
      return SecretValue.fromBytes(plaintext);
    } finally {
      plaintext.fill(0);
    }
  } finally {
    dek.fill(0);
  }
}

/**
 * Re-wraps an envelope's data key under the ring's active master key, leaving nonce and
 * ciphertext untouched, for key rotation; throws DecryptionError if the old wrap does not open.
 */
export function rewrapEnvelope(
  ring: KeyRing,
  envelope: Envelope,
  binding: SecretBinding,
): Envelope {
  checkBinding(binding);
  const sodium = requireSodium();
  // Always unwraps and wraps afresh, even under the active key, so a rotation job that calls
  // this also proves every wrap it touches still opens.
  const dek = unwrapDek(sodium, ring, envelope, binding);
  try {
    return {
      ...wrapDek(sodium, ring, dek, binding),
      nonce: envelope.nonce,
      ciphertext: envelope.ciphertext,
    };
  } finally {
    dek.fill(0);
  }
}
