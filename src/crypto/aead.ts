import { randomFillSync } from "node:crypto";
import type { KeyRing } from "./keyring.js";
import type { Sodium } from "./sodium.js";

// XChaCha20-Poly1305-IETF sizes, fixed by the algorithm; written out so that type and record
// validation need not wait for libsodium to load.
/** Key length of XChaCha20-Poly1305-IETF. */
export const AEAD_KEY_BYTES = 32;
/** Nonce length of XChaCha20-Poly1305-IETF; 24 bytes is long enough to pick at random. */
export const AEAD_NONCE_BYTES = 24;
/** Authentication tag length of XChaCha20-Poly1305-IETF. */
export const AEAD_TAG_BYTES = 16;

const encoder = new TextEncoder();
// TextEncoder turns a lone surrogate into U+FFFD, so "\uD800" and "\uFFFD" would bind the same.
const LONE_SURROGATE = /\p{Cs}/u;

/** Whether a string encodes to UTF-8 without loss (no lone surrogates). */
export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/**
 * Encodes a format tag and fields for use as associated data: each one as a 4-byte big-endian
 * length followed by its bytes (strings as UTF-8), so ("a", "bc") and ("ab", "c") differ.
 */
export function associatedData(
  tag: string,
  fields: ReadonlyArray<string | Uint8Array>,
): Uint8Array {
  const parts = [tag, ...fields];
  const sizes = parts.map((part) => {
    if (typeof part !== "string") return part.byteLength;
    if (!isWellFormed(part)) throw new TypeError("associated data holds a lone surrogate");
    return Buffer.byteLength(part, "utf8");
  });
  const length = sizes.reduce((sum, size) => sum + 4 + size, 0);
  // Built in one pass into one buffer because this runs twice per seal and per open, and
  // TextEncoder.encode costs about a microsecond per short string on Node 20.
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let offset = 0;
  parts.forEach((part, index) => {
    const size = sizes[index] ?? 0;
    view.setUint32(offset, size);
    const start = offset + 4;
    if (typeof part !== "string") {
      out.set(part, start);
    } else if (size === part.length) {
      // Namespaces, names, uids and versions are nearly always ASCII (a well-formed string is
      // ASCII exactly when its UTF-8 and UTF-16 lengths agree), which can skip the encoder.
      for (let i = 0; i < size; i++) out[start + i] = part.charCodeAt(i);
    } else {
      encoder.encodeInto(part, out.subarray(start, start + size));
    }
    offset = start + size;
  });
  return out;
}

/**
 * Returns `length` bytes from the operating system's CSPRNG through node:crypto.
 */
export function freshRandomBytes(length: number): Uint8Array {
  // Not sodium.randombytes_buf: both builds of libsodium-wrappers 0.8 feed its RNG 4 bytes per
  // call into JavaScript (getRandomValues in the ESM build, crypto.randomBytes(4) in the CJS one),
  // which measured about 85 us for a 24-byte nonce and 120 us for a key, against under 3 us here
  // for the same OS randomness. That alone made sealValue ~20x slower than its AEAD work.
  return randomFillSync(new Uint8Array(length));
}

/** Encrypts with XChaCha20-Poly1305-IETF under a fresh random nonce. */
export function aeadSeal(
  sodium: Sodium,
  plaintext: Uint8Array,
  ad: Uint8Array,
  key: Uint8Array,
): { nonce: Uint8Array; ciphertext: Uint8Array } {
  const nonce = freshRandomBytes(AEAD_NONCE_BYTES);
  const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    plaintext,
    ad,
    null,
    nonce,
    key,
  );
  return { nonce, ciphertext };
}

/** Decrypts with XChaCha20-Poly1305-IETF, returning undefined when it does not authenticate. */
export function aeadOpen(
  sodium: Sodium,
  ciphertext: Uint8Array,
  ad: Uint8Array,
  nonce: Uint8Array,
  key: Uint8Array,
): Uint8Array | undefined {
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    // libsodium-wrappers throws one generic error for a forged or corrupted input; the callers
    // only need to know that it did not open.
    return undefined;
  }
}

/** Whether nonce and ciphertext have lengths XChaCha20-Poly1305-IETF could have produced. */
export function aeadShapeOk(nonce: Uint8Array, ciphertext: Uint8Array): boolean {
  return nonce.byteLength === AEAD_NONCE_BYTES && ciphertext.byteLength >= AEAD_TAG_BYTES;
}

/** Returns the ring's active key id and key. */
export function activeKek(ring: KeyRing): { kekId: string; kek: Uint8Array } {
  return { kekId: ring.activeId, kek: ring.require(ring.activeId) };
}
