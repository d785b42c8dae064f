/**
 * Token hashing and the constant-time comparison authentication relies on, as pure functions.
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  candidateHashes,
  generateToken,
  hashToken,
  looksLikeToken,
  sameHash,
} from "../../src/auth/tokens.js";
import { parseMasterKeys } from "../../src/crypto/keyring.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import { masterKeyLine } from "../harness/keys.js";

const ring = parseMasterKeys(
  [masterKeyLine("new", 1), masterKeyLine("old", 2)].join(","),
  "test keys",
);
const oldOnly = parseMasterKeys(masterKeyLine("old", 2), "test keys");

beforeAll(async () => {
  await loadSodium();
});

describe("sameHash", () => {
  const a = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

  it("is true for equal hashes", () => {
    expect(sameHash(a, a)).toBe(true);
  });

  it("is false when the first byte differs", () => {
    expect(sameHash(a, `ff${a.slice(2)}`)).toBe(false);
  });

  it("is false when the last byte differs", () => {
    expect(sameHash(a, `${a.slice(0, -2)}00`)).toBe(false);
  });

  it("is false for hashes of different lengths, a prefix included", () => {
    expect(sameHash(a, a.slice(0, -2))).toBe(false);
    expect(sameHash(a.slice(0, -2), a)).toBe(false);
    expect(sameHash(a, `${a}00`)).toBe(false);
  });
});

describe("hashToken", () => {
  const token = generateToken();

  it("is 32 bytes of hex under the active key by default, and repeatable", () => {
    const h = hashToken(ring, token);
    expect(h.kekId).toBe("new");
    expect(h.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken(ring, token)).toEqual(h);
  });

  it("is keyed: another master key, or another token, gives another hash", () => {
    const h = hashToken(ring, token);
    expect(hashToken(ring, token, "old").hash).not.toBe(h.hash);
    expect(hashToken(ring, generateToken()).hash).not.toBe(h.hash);
  });

  it("depends on the key, not on the ring it sits in", () => {
    expect(hashToken(oldOnly, token)).toEqual(hashToken(ring, token, "old"));
  });

  it("never contains the token", () => {
    expect(hashToken(ring, token).hash).not.toContain(token.slice(6));
  });
});

describe("candidateHashes", () => {
  it("is the token's hash under every key of the ring, the active key first", () => {
    const token = generateToken();
    expect(candidateHashes(ring, token)).toEqual([
      hashToken(ring, token, "new"),
      hashToken(ring, token, "old"),
    ]);
  });

  it("finds a token stored before a rotation: its old hash is among the candidates", () => {
    const token = generateToken();
    const stored = hashToken(oldOnly, token);
    expect(candidateHashes(ring, token).some((c) => sameHash(c.hash, stored.hash))).toBe(true);
  });
});

describe("generateToken", () => {
  it("makes distinct tokens shaped like tokens", () => {
    const a = generateToken();
    expect(looksLikeToken(a)).toBe(true);
    expect(generateToken()).not.toBe(a);
    expect(looksLikeToken(`${a}x`)).toBe(false);
  });
});
