/**
 * The integrity MAC of a secret's head record. A value's ciphertext is bound to (namespace, name,
 * uid, version) by its AEAD, but history keeps older versions' ciphertexts, so someone who can
 * write the database could rebuild an older head from them (copy version 1's sealed value into
 * the head and set version 1) and it would open. The head MAC closes that: a keyed BLAKE2b-256
 * over what a head claims (namespace, name, uid, version, resource version, keeper, ref and
 * decrypters) with a subkey of a master key, recomputed on every write. A rebuilt head carries
 * an old version with a resource version that head never had, or a MAC it cannot compute.
 */
import { deriveSubkey, type KeyRing } from "./keyring.js";
import { requireSodium } from "./sodium.js";

/** What a head claims, and its MAC covers. */
export interface HeadFacts {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly version: number;
  readonly resourceVersion: string;
  readonly keeper: string;
  readonly ref: string;
  readonly decrypters: readonly string[];
}

/** A head's MAC (hex) and the id of the master key its subkey comes from. */
export interface HeadMac {
  readonly keyId: string;
  readonly mac: string;
}

/** The MAC of a head under the active master key (or `keyId`'s). */
export function macHead(ring: KeyRing, facts: HeadFacts, keyId = ring.activeId): HeadMac {
  const sodium = requireSodium();
  const key = deriveSubkey(ring, "heads", keyId);
  try {
    return { keyId, mac: sodium.to_hex(sodium.crypto_generichash(32, encode(facts), key)) };
  } finally {
    sodium.memzero(key);
  }
}

/** Whether `stored` is the MAC of these facts; false when its key is not in the ring. */
export function headMacHolds(ring: KeyRing, facts: HeadFacts, stored: HeadMac): boolean {
  if (!ring.has(stored.keyId)) return false;
  const expected = macHead(ring, facts, stored.keyId).mac;
  const sodium = requireSodium();
  return (
    expected.length === stored.mac.length &&
    sodium.memcmp(sodium.from_string(expected), sodium.from_string(stored.mac))
  );
}

/**
 * A version tag, then every field as a 4-byte big-endian length and its UTF-8 bytes, the
 * decrypters preceded by their count: no two different heads encode alike. Never change it
 * (stored MACs would stop matching); add a new tag instead.
 */
function encode(f: HeadFacts): Uint8Array {
  const fields = [
    "seald.head.v1",
    f.namespace,
    f.name,
    f.uid,
    String(f.version),
    f.resourceVersion,
    f.keeper,
    f.ref,
    String(f.decrypters.length),
    ...f.decrypters,
  ];
  const parts: Buffer[] = [];
  for (const field of fields) {
    const bytes = Buffer.from(field, "utf8");
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}
