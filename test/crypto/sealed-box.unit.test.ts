import { randomBytes } from "node:crypto";
import sodium from "libsodium-wrappers";
import { beforeAll, describe, expect, it } from "vitest";
import { DecryptionError } from "../../src/crypto/envelope.js";
import {
  generateNamespaceKeyPair,
  openSealedValue,
  publicKeyId,
  rewrapNamespacePrivateKey,
  SEALED_BOX_OVERHEAD_BYTES,
  SealedBoxError,
  type SealedBoxErrorKind,
  sealForPublicKey,
} from "../../src/crypto/sealed-box.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import type { NamespaceKeyPair } from "../../src/domain/sealed.js";
import { bothRing, newOnlyRing, oldRing } from "./rings.js";

let teamA: NamespaceKeyPair;
let teamB: NamespaceKeyPair;

beforeAll(async () => {
  await loadSodium();
  teamA = generateNamespaceKeyPair(oldRing, "team-a");
  teamB = generateNamespaceKeyPair(oldRing, "team-b");
});

function sealedBoxError(open: () => unknown): SealedBoxError {
  try {
    open();
  } catch (err) {
    expect(err).toBeInstanceOf(SealedBoxError);
    return err as SealedBoxError;
  }
  throw new Error("expected the sealed value to be rejected");
}

function decryptionReason(open: () => unknown): string {
  try {
    open();
  } catch (err) {
    expect(err).toBeInstanceOf(DecryptionError);
    return (err as DecryptionError).reason;
  }
  throw new Error("expected the private key not to unwrap");
}

describe("generateNamespaceKeyPair", () => {
  it("makes an X25519 key pair whose id is derived from the public key", () => {
    expect(teamA.namespace).toBe("team-a");
    expect(teamA.publicKey).toHaveLength(32);
    expect(teamA.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(teamA.keyId).toBe(publicKeyId(teamA.publicKey));
    expect(teamA.keyId).toBe(
      sodium.to_hex(sodium.crypto_generichash(32, teamA.publicKey, null)).slice(0, 16),
    );
    expect(teamB.keyId).not.toBe(teamA.keyId);
    expect(teamA.wrappedPrivateKey.kekId).toBe("old");
    expect(teamA.wrappedPrivateKey.nonce).toHaveLength(24);
    expect(teamA.wrappedPrivateKey.ciphertext).toHaveLength(32 + 16);
  });
});

describe("openSealedValue", () => {
  it("opens what a client sealed with libsodium's crypto_box_seal", () => {
    const box = sodium.crypto_box_seal(sodium.from_string("from a client"), teamA.publicKey);
    const base64 = sodium.to_base64(box, sodium.base64_variants.ORIGINAL);
    expect(openSealedValue(oldRing, teamA, base64).unsafeRevealString()).toBe("from a client");
  });

  it("opens sealForPublicKey output, padded or not, including binary and empty values", () => {
    const bytes = randomBytes(1024);
    const sealed = sealForPublicKey(teamA.publicKey, bytes);
    expect(sealed).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(openSealedValue(oldRing, teamA, sealed).unsafeRevealBytes()).toEqual(
      new Uint8Array(bytes),
    );
    expect(openSealedValue(oldRing, teamA, sealed.replace(/=+$/, "")).unsafeRevealBytes()).toEqual(
      new Uint8Array(bytes),
    );
    const empty = sealForPublicKey(teamA.publicKey, new Uint8Array());
    expect(openSealedValue(oldRing, teamA, empty).byteLength).toBe(0);
  });

  it("uses the real crypto_box_seal overhead", () => {
    expect(SEALED_BOX_OVERHEAD_BYTES).toBe(sodium.crypto_box_SEALBYTES);
  });

  const good = () => sealForPublicKey(teamA.publicKey, new TextEncoder().encode("value"));
  const cases: Array<[SealedBoxErrorKind, string, () => string, RegExp]> = [
    [
      "bad_base64",
      "URL-safe alphabet",
      () => `${good().replaceAll("+", "-").replaceAll("/", "_")}-_`,
      /not standard base64/,
    ],
    [
      "bad_base64",
      "embedded newline",
      () => `${good().slice(0, 20)}\n${good().slice(20)}`,
      /not standard base64/,
    ],
    ["bad_base64", "not base64 at all", () => "this is not base64!", /not standard base64/],
    ["too_short", "empty string", () => "", /is 0 bytes, shorter than the 48 bytes/],
    [
      "too_short",
      "47 bytes",
      () => Buffer.from(randomBytes(47)).toString("base64"),
      /is 47 bytes, shorter than the 48 bytes crypto_box_seal adds/,
    ],
    [
      "does_not_open",
      "random bytes",
      () => Buffer.from(randomBytes(80)).toString("base64"),
      /does not open with public key [0-9a-f]{16} of namespace "team-a"/,
    ],
    [
      "does_not_open",
      "a box for another namespace",
      () => sealForPublicKey(teamB.publicKey, new TextEncoder().encode("value")),
      /does not open with public key [0-9a-f]{16} of namespace "team-a"/,
    ],
    [
      "does_not_open",
      "a box missing its last byte",
      () => Buffer.from(Buffer.from(good(), "base64").subarray(0, -1)).toString("base64"),
      /does not open/,
    ],
  ];

  it.each(cases)("rejects as %s: %s", (kind, _, input, message) => {
    const err = sealedBoxError(() => openSealedValue(oldRing, teamA, input()));
    expect(err.kind).toBe(kind);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(kind === "does_not_open" ? teamA.keyId : "sealed value");
  });

  it("rejects a flipped byte anywhere in the box", () => {
    const box = Buffer.from(good(), "base64");
    for (let i = 0; i < box.byteLength; i++) {
      const tampered = Buffer.from(box);
      tampered[i] = (tampered[i] ?? 0) ^ 0x80;
      expect(
        sealedBoxError(() => openSealedValue(oldRing, teamA, tampered.toString("base64"))).kind,
        `byte ${i}`,
      ).toBe("does_not_open");
    }
  });

  it("treats a stored private key that does not unwrap as a server fault, not a client one", () => {
    const sealed = good();
    expect(decryptionReason(() => openSealedValue(newOnlyRing, teamA, sealed))).toBe("unknown_kek");
    // Private key record copied to another namespace.
    expect(
      decryptionReason(() => openSealedValue(oldRing, { ...teamA, namespace: "team-b" }, sealed)),
    ).toBe("unwrap_failed");
    // Public key replaced (with key id to match), which would have clients seal for someone else.
    const swapped = { ...teamA, publicKey: teamB.publicKey, keyId: teamB.keyId };
    expect(decryptionReason(() => openSealedValue(oldRing, swapped, sealed))).toBe("unwrap_failed");
    // Public key alone replaced: caught by the wrap, before any box is tried against it.
    expect(
      decryptionReason(() =>
        openSealedValue(oldRing, { ...teamA, publicKey: teamB.publicKey }, sealed),
      ),
    ).toBe("unwrap_failed");
    // Key id edited.
    expect(
      decryptionReason(() =>
        openSealedValue(oldRing, { ...teamA, keyId: "0000000000000000" }, sealed),
      ),
    ).toBe("unwrap_failed");
  });
});

describe("rewrapNamespacePrivateKey", () => {
  it("moves the private key to the new active master key, keeping the key pair", () => {
    const sealed = sealForPublicKey(teamA.publicKey, new TextEncoder().encode("rotated"));
    const rewrapped = rewrapNamespacePrivateKey(bothRing, teamA);
    expect(rewrapped.wrappedPrivateKey.kekId).toBe("new");
    expect(rewrapped.keyId).toBe(teamA.keyId);
    expect(rewrapped.publicKey).toEqual(teamA.publicKey);
    expect(openSealedValue(bothRing, rewrapped, sealed).unsafeRevealString()).toBe("rotated");
    expect(openSealedValue(newOnlyRing, rewrapped, sealed).unsafeRevealString()).toBe("rotated");
    expect(decryptionReason(() => openSealedValue(newOnlyRing, teamA, sealed))).toBe("unknown_kek");
  });

  it("refuses a private key that does not unwrap", () => {
    expect(decryptionReason(() => rewrapNamespacePrivateKey(newOnlyRing, teamA))).toBe(
      "unknown_kek",
    );
    expect(
      decryptionReason(() =>
        rewrapNamespacePrivateKey(bothRing, { ...teamA, namespace: "team-b" }),
      ),
    ).toBe("unwrap_failed");
  });
});
