import { randomBytes } from "node:crypto";
import sodium from "libsodium-wrappers";
import { beforeAll, describe, expect, it } from "vitest";
import { associatedData } from "../../src/crypto/aead.js";
import {
  DecryptionError,
  type DecryptionFailure,
  openValue,
  rewrapEnvelope,
  type SecretBinding,
  sealValue,
} from "../../src/crypto/envelope.js";
import { KeyRing, parseMasterKeys } from "../../src/crypto/keyring.js";
import { SecretValue } from "../../src/crypto/secret-value.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import type { Envelope } from "../../src/domain/sealed.js";
import { bothRing, newKey, newOnlyRing, oldKey, oldRing } from "./rings.js";

const binding: SecretBinding = {
  namespace: "team-a",
  name: "db-password",
  uid: "0b6c3f0e-8a4c-4d7e-9d2b-5f1e2a3b4c5d",
  version: 3,
};

const PLAINTEXT = randomBytes(1024);

function failure(open: () => unknown): DecryptionFailure {
  try {
    open();
  } catch (err) {
    expect(err).toBeInstanceOf(DecryptionError);
    expect((err as Error).message).toBe("decryption failed");
    return (err as DecryptionError).reason;
  }
  throw new Error("expected the envelope not to open");
}

function flipped(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

function seal(ring: KeyRing = oldRing, b: SecretBinding = binding): Envelope {
  return sealValue(ring, SecretValue.fromBytes(PLAINTEXT), b);
}

beforeAll(async () => {
  await loadSodium();
});

describe("sealValue / openValue", () => {
  it("round-trips a 1 KiB value under the active key", () => {
    const envelope = seal();
    expect(envelope.kekId).toBe("old");
    expect(envelope.nonce).toHaveLength(24);
    expect(envelope.dekNonce).toHaveLength(24);
    expect(envelope.wrappedDek).toHaveLength(32 + 16);
    expect(envelope.ciphertext).toHaveLength(1024 + 16);
    expect(Buffer.from(envelope.ciphertext).includes(PLAINTEXT.subarray(0, 16))).toBe(false);
    expect(openValue(oldRing, envelope, binding).unsafeRevealBytes()).toEqual(
      new Uint8Array(PLAINTEXT),
    );
  });

  it("round-trips text and the empty value", () => {
    const text = sealValue(oldRing, SecretValue.fromString("s3cr3t ✓"), binding);
    expect(openValue(oldRing, text, binding).unsafeRevealString()).toBe("s3cr3t ✓");
    const empty = sealValue(oldRing, SecretValue.fromString(""), binding);
    expect(openValue(oldRing, empty, binding).byteLength).toBe(0);
  });

  it("leaves the caller's SecretValue usable", () => {
    const value = SecretValue.fromString("still mine");
    sealValue(oldRing, value, binding);
    expect(value.unsafeRevealString()).toBe("still mine");
  });

  it("uses a fresh data key and nonces on every call", () => {
    const a = seal();
    const b = seal();
    expect(a.nonce).not.toEqual(b.nonce);
    expect(a.dekNonce).not.toEqual(b.dekNonce);
    expect(a.ciphertext).not.toEqual(b.ciphertext);
    expect(a.wrappedDek).not.toEqual(b.wrappedDek);
    // Each envelope's DEK opens only its own ciphertext.
    expect(
      failure(() =>
        openValue(oldRing, { ...a, nonce: b.nonce, ciphertext: b.ciphertext }, binding),
      ),
    ).toBe("value_failed");
  });

  it.each([
    ["namespace", { namespace: "team-b" }],
    ["name", { name: "db-password2" }],
    ["uid", { uid: "0b6c3f0e-8a4c-4d7e-9d2b-5f1e2a3b4c5e" }],
    ["version", { version: 4 }],
  ])("does not open under a different %s", (_, change) => {
    const envelope = seal();
    expect(failure(() => openValue(oldRing, envelope, { ...binding, ...change }))).toBe(
      "unwrap_failed",
    );
  });

  it("encodes the binding unambiguously", () => {
    const envelope = seal(oldRing, { ...binding, namespace: "a", name: "bc" });
    expect(
      openValue(oldRing, envelope, { ...binding, namespace: "a", name: "bc" }).byteLength,
    ).toBe(1024);
    expect(
      failure(() => openValue(oldRing, envelope, { ...binding, namespace: "ab", name: "c" })),
    ).toBe("unwrap_failed");
    const v1 = seal(oldRing, { ...binding, uid: "u1", version: 11 });
    expect(failure(() => openValue(oldRing, v1, { ...binding, uid: "u11", version: 1 }))).toBe(
      "unwrap_failed",
    );
  });

  it("rejects a ciphertext and wrapped key swapped in from another record", () => {
    const mine = seal();
    const other = { ...binding, name: "api-token" };
    const theirs = seal(oldRing, other);
    // Whole envelope copied into my record.
    expect(failure(() => openValue(oldRing, theirs, binding))).toBe("unwrap_failed");
    // Only their ciphertext in my record, keeping my wrapped key.
    expect(
      failure(() =>
        openValue(
          oldRing,
          { ...mine, nonce: theirs.nonce, ciphertext: theirs.ciphertext },
          binding,
        ),
      ),
    ).toBe("value_failed");
    // Their wrapped key with my ciphertext.
    expect(
      failure(() =>
        openValue(
          oldRing,
          { ...mine, dekNonce: theirs.dekNonce, wrappedDek: theirs.wrappedDek },
          binding,
        ),
      ),
    ).toBe("unwrap_failed");
  });

  it.each([
    ["ciphertext", "value_failed"],
    ["nonce", "value_failed"],
    ["wrappedDek", "unwrap_failed"],
    ["dekNonce", "unwrap_failed"],
  ] as const)("fails when any single byte of %s is flipped", (field, reason) => {
    const envelope = seal();
    const bytes = envelope[field];
    for (let i = 0; i < bytes.byteLength; i++) {
      const tampered = { ...envelope, [field]: flipped(bytes, i) };
      expect(
        failure(() => openValue(oldRing, tampered, binding)),
        `byte ${i}`,
      ).toBe(reason);
    }
    expect(openValue(oldRing, envelope, binding).byteLength).toBe(1024);
  });

  it("fails when the envelope names a key the ring does not hold", () => {
    const envelope = seal(newOnlyRing);
    expect(failure(() => openValue(oldRing, envelope, binding))).toBe("unknown_kek");
    expect(failure(() => openValue(oldRing, { ...envelope, kekId: "nope" }, binding))).toBe(
      "unknown_kek",
    );
  });

  it("fails when the kekId field is edited to another key the ring holds", () => {
    const envelope = seal(bothRing);
    expect(envelope.kekId).toBe("new");
    expect(failure(() => openValue(bothRing, { ...envelope, kekId: "old" }, binding))).toBe(
      "unwrap_failed",
    );
  });

  it("fails as malformed on truncated fields", () => {
    const envelope = seal();
    expect(
      failure(() =>
        openValue(oldRing, { ...envelope, nonce: envelope.nonce.subarray(1) }, binding),
      ),
    ).toBe("malformed");
    expect(
      failure(() => openValue(oldRing, { ...envelope, ciphertext: new Uint8Array(15) }, binding)),
    ).toBe("malformed");
    expect(
      failure(() => openValue(oldRing, { ...envelope, dekNonce: new Uint8Array(0) }, binding)),
    ).toBe("malformed");
  });

  it("refuses a binding that could not name a record", () => {
    const value = SecretValue.fromString("x");
    expect(() => sealValue(oldRing, value, { ...binding, uid: "" })).toThrow(TypeError);
    expect(() => sealValue(oldRing, value, { ...binding, version: 0 })).toThrow(TypeError);
    expect(() => sealValue(oldRing, value, { ...binding, version: 1.5 })).toThrow(TypeError);
    expect(() => sealValue(oldRing, value, { ...binding, name: "bad\uD800" })).toThrow(TypeError);
  });
});

describe("the stored format", () => {
  // Written against the documented layout rather than through openValue, so it also catches a
  // change of format that would make every stored record unreadable.
  const fields = (b: SecretBinding) => [b.namespace, b.name, b.uid, String(b.version)];

  it("binds the value ciphertext itself to its record, not only the wrapped key", () => {
    const envelope = seal();
    const dek = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      envelope.wrappedDek,
      associatedData("seald/v1/dek", ["old", ...fields(binding)]),
      envelope.dekNonce,
      new Uint8Array(oldKey),
    );
    expect(dek).toHaveLength(32);
    const decrypt = (b: SecretBinding) =>
      sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        envelope.ciphertext,
        associatedData("seald/v1/value", fields(b)),
        envelope.nonce,
        dek,
      );
    expect(decrypt(binding)).toEqual(new Uint8Array(PLAINTEXT));
    // Even a holder of the DEK cannot move the ciphertext to another record.
    for (const change of [{ namespace: "x" }, { name: "x" }, { uid: "x" }, { version: 9 }]) {
      expect(() => decrypt({ ...binding, ...change })).toThrow();
    }
  });

  it("encodes non-ASCII fields as UTF-8 and tells apart strings that merely look alike", () => {
    expect(Buffer.from(associatedData("t", ["é", "😀"])).toString("hex")).toBe(
      "0000000174" + "00000002c3a9" + "00000004f09f9880",
    );
    const composed = { ...binding, namespace: "équipe", name: "clé-😀" };
    const envelope = seal(oldRing, composed);
    expect(openValue(oldRing, envelope, composed).byteLength).toBe(1024);
    // "é" as one code point and as "e" plus a combining accent are different names.
    const decomposed = { ...composed, namespace: "e\u0301quipe" };
    expect(failure(() => openValue(oldRing, envelope, decomposed))).toBe("unwrap_failed");
  });

  it("length-prefixes every associated-data field", () => {
    expect(Buffer.from(associatedData("t", ["ab", new Uint8Array([7])])).toString("hex")).toBe(
      `00000001${Buffer.from("t").toString("hex")}00000002${Buffer.from("ab").toString("hex")}0000000107`,
    );
  });
});

describe("rewrapEnvelope", () => {
  it("moves the data key to the new active key without touching the ciphertext", () => {
    const original = seal(oldRing);
    const rewrapped = rewrapEnvelope(bothRing, original, binding);
    expect(rewrapped.kekId).toBe("new");
    expect(rewrapped.nonce).toEqual(original.nonce);
    expect(rewrapped.ciphertext).toEqual(original.ciphertext);
    expect(rewrapped.wrappedDek).not.toEqual(original.wrappedDek);

    const expected = new Uint8Array(PLAINTEXT);
    expect(openValue(bothRing, rewrapped, binding).unsafeRevealBytes()).toEqual(expected);
    expect(openValue(newOnlyRing, rewrapped, binding).unsafeRevealBytes()).toEqual(expected);
    // Before the rewrap, the new-only ring could not open it: the rewrap is what made it work.
    expect(failure(() => openValue(newOnlyRing, original, binding))).toBe("unknown_kek");
    // The old envelope still opens while the old key is kept, so reads work during rotation.
    expect(openValue(bothRing, original, binding).unsafeRevealBytes()).toEqual(expected);
  });

  it("refuses to rewrap an envelope that does not open for this record", () => {
    const original = seal(oldRing);
    expect(failure(() => rewrapEnvelope(bothRing, original, { ...binding, version: 2 }))).toBe(
      "unwrap_failed",
    );
    expect(failure(() => rewrapEnvelope(newOnlyRing, original, binding))).toBe("unknown_kek");
  });

  it("keeps the record binding on the new wrap", () => {
    const rewrapped = rewrapEnvelope(bothRing, seal(oldRing), binding);
    expect(failure(() => openValue(newOnlyRing, rewrapped, { ...binding, name: "other" }))).toBe(
      "unwrap_failed",
    );
  });
});

describe("a ring from configuration text", () => {
  it("seals and opens with keys parsed from SEALD_MASTER_KEYS", () => {
    const ring = parseMasterKeys(
      `k1:${Buffer.from(newKey).toString("base64")}, k0:${Buffer.from(oldKey).toString("base64")}`,
      "SEALD_MASTER_KEYS",
    );
    const envelope = sealValue(ring, SecretValue.fromString("hello"), binding);
    expect(envelope.kekId).toBe("k1");
    expect(openValue(ring, envelope, binding).unsafeRevealString()).toBe("hello");
    // The same key bytes under a different id do not open it: the id is bound too.
    const renamed = KeyRing.fromEntries([["k2", newKey]]);
    expect(failure(() => openValue(renamed, { ...envelope, kekId: "k2" }, binding))).toBe(
      "unwrap_failed",
    );
  });
});
