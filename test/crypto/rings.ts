/**
 * Key rings for the crypto tests, as a master key rotation sees them: before ("old" only),
 * during ("new" active, "old" still held) and after ("new" only). Keys are random per run.
 */
import { randomBytes } from "node:crypto";
import { KeyRing } from "../../src/crypto/keyring.js";

export const oldKey = randomBytes(32);
export const newKey = randomBytes(32);
export const oldRing = KeyRing.fromEntries([["old", oldKey]]);
export const bothRing = KeyRing.fromEntries([
  ["new", newKey],
  ["old", oldKey],
]);
export const newOnlyRing = KeyRing.fromEntries([["new", newKey]]);
