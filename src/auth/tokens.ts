/**
 * Access tokens: "seald_" and 43 base64url characters (32 random bytes), so they are easy to
 * recognise in a leak scanner. Only a keyed hash is stored: BLAKE2b keyed with a subkey of a
 * master key, so a copy of the database alone cannot be used to test guesses offline.
 */
import { randomBytes } from "node:crypto";
import { deriveSubkey, type KeyRing } from "../crypto/keyring.js";
import { requireSodium } from "../crypto/sodium.js";

export const tokenPrefix = "seald_";
const tokenPattern = /^seald_[A-Za-z0-9_-]{43}$/;

/** A fresh random token. */
export function generateToken(): string {
  return tokenPrefix + randomBytes(32).toString("base64url");
}

/** True for strings shaped like a generated token. */
export function looksLikeToken(value: string): boolean {
  return tokenPattern.test(value);
}

/** A token's stored form under one master key: the key id and the hex keyed hash. */
export interface TokenHash {
  readonly kekId: string;
  readonly hash: string;
}

/** The keyed hash of a token under the given master key (the active one by default). */
export function hashToken(ring: KeyRing, token: string, kekId = ring.activeId): TokenHash {
  const sodium = requireSodium();
  const key = deriveSubkey(ring, "tokens", kekId);
  try {
    return { kekId, hash: sodium.to_hex(sodium.crypto_generichash(32, token, key)) };
  } finally {
    sodium.memzero(key);
  }
}

/** The token's hash under every key of the ring, to find tokens stored before a rotation. */
export function candidateHashes(ring: KeyRing, token: string): TokenHash[] {
  return ring.ids.map((id) => hashToken(ring, token, id));
}

/** Compares two hex hashes in constant time. */
export function sameHash(a: string, b: string): boolean {
  const sodium = requireSodium();
  if (a.length !== b.length) return false;
  return sodium.memcmp(sodium.from_hex(a), sodium.from_hex(b));
}
