import { describe, expect, it } from "vitest";
import { sealValue } from "../../src/crypto/envelope.js";
import { KeyRing } from "../../src/crypto/keyring.js";
import { SecretValue } from "../../src/crypto/secret-value.js";
import { loadSodium, requireSodium } from "../../src/crypto/sodium.js";

// Vitest gives each test file its own module graph, so nothing has loaded libsodium here yet.
describe("loadSodium", () => {
  it("is required before sealing, with a message saying what to do", () => {
    expect(() => requireSodium()).toThrow(
      "libsodium is not initialised: await loadSodium() at start-up",
    );
    const ring = KeyRing.fromEntries([["k1", new Uint8Array(32)]]);
    const binding = { namespace: "n", name: "a", uid: "u", version: 1 };
    expect(() => sealValue(ring, SecretValue.fromString("x"), binding)).toThrow(
      "await loadSodium() at start-up",
    );
  });

  it("initialises once and exposes the functions sealing uses", async () => {
    const [a, b] = await Promise.all([loadSodium(), loadSodium()]);
    expect(a).toBe(b);
    expect(requireSodium()).toBe(a);
    for (const fn of [
      a.crypto_aead_xchacha20poly1305_ietf_encrypt,
      a.crypto_aead_xchacha20poly1305_ietf_decrypt,
      a.crypto_box_seal,
      a.crypto_box_seal_open,
      a.crypto_kdf_derive_from_key,
      a.crypto_generichash,
    ]) {
      expect(fn).toBeTypeOf("function");
    }
    expect(a.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES).toBe(24);
    expect(a.crypto_kdf_CONTEXTBYTES).toBe(8);
  });
});
