/**
 * Authentication over the in-memory access store: tokens resolve to principals with their
 * bindings, revoked and expired tokens fail, the cache never outlives its bound or a token's
 * expiry, and a token hashed under an older master key moves to the active one when used.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { Authenticator, credentialFrom } from "../../src/auth/authenticate.js";
import { generateToken, hashToken } from "../../src/auth/tokens.js";
import { parseMasterKeys } from "../../src/crypto/keyring.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import { DomainError } from "../../src/domain/errors.js";
import { masterKeyLine } from "../harness/keys.js";
import { MemoryAccessStore } from "../harness/memory-stores.js";

const oldRing = parseMasterKeys(masterKeyLine("old", 3), "test keys");
const rotatedRing = parseMasterKeys(
  [masterKeyLine("new", 4), masterKeyLine("old", 3)].join(","),
  "test keys",
);
const t0 = 1_780_000_000_000;

beforeAll(async () => {
  await loadSodium();
});

/** A store with principal "billing" (decrypter in team-a) and one token for it. */
async function storeWithToken(
  ring = oldRing,
  token = generateToken(),
  extra: { expireTime?: Date } = {},
) {
  const store = new MemoryAccessStore();
  await store.insertPrincipal({
    name: "billing",
    kind: "service_account",
    displayName: "",
    createTime: new Date(t0),
    createdBy: "admin",
  });
  await store.insertBinding({
    principal: "billing",
    role: "decrypter",
    namespace: "team-a",
    createTime: new Date(t0),
  });
  await store.insertToken({
    id: "t1",
    principal: "billing",
    ...hashToken(ring, token),
    description: "",
    createTime: new Date(t0),
    ...extra,
  });
  return { store, token };
}

async function failure(call: Promise<unknown>): Promise<DomainError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof DomainError)) throw new Error(`expected a DomainError, got ${String(err)}`);
  return err;
}

describe("Authenticator", () => {
  it("resolves a token to its principal and bindings", async () => {
    const { store, token } = await storeWithToken();
    const auth = new Authenticator(store, oldRing);
    expect(await auth.authenticate(token)).toEqual({
      name: "billing",
      kind: "service_account",
      bindings: [{ role: "decrypter", namespace: "team-a" }],
    });
  });

  it("refuses an unknown token, and one not shaped like a token, as invalid credentials", async () => {
    const { store } = await storeWithToken();
    const auth = new Authenticator(store, oldRing);
    for (const bad of [generateToken(), "short", ""]) {
      const err = await failure(auth.authenticate(bad));
      expect([err.code, err.details.credentials]).toEqual(["unauthenticated", "invalid"]);
    }
  });

  it("refuses a revoked token once the cache bound has passed, and at once without a cache entry", async () => {
    const { store, token } = await storeWithToken();
    let now = t0;
    const auth = new Authenticator(store, oldRing, { cacheTtlMs: 1000, now: () => now });
    await auth.authenticate(token);
    await store.revokeToken("t1", new Date(t0));
    // The documented bound: a replica may accept a revoked token for up to the cache TTL.
    now = t0 + 999;
    await auth.authenticate(token);
    now = t0 + 1000;
    expect((await failure(auth.authenticate(token))).code).toBe("unauthenticated");
    expect((await failure(new Authenticator(store, oldRing).authenticate(token))).code).toBe(
      "unauthenticated",
    );
  });

  it("refuses a token from its expiry on, and never caches past it", async () => {
    const { store, token } = await storeWithToken(oldRing, generateToken(), {
      expireTime: new Date(t0 + 500),
    });
    let now = t0;
    const auth = new Authenticator(store, oldRing, { cacheTtlMs: 10_000, now: () => now });
    await auth.authenticate(token);
    now = t0 + 499;
    await auth.authenticate(token);
    now = t0 + 500;
    expect((await failure(auth.authenticate(token))).code).toBe("unauthenticated");
  });

  it("moves a token hashed under an older master key to the active one when it is used", async () => {
    const { store, token } = await storeWithToken(oldRing);
    expect(await store.kekIdsInUse()).toEqual(["old"]);
    await new Authenticator(store, rotatedRing).authenticate(token);
    expect(await store.kekIdsInUse()).toEqual(["new"]);
    // The old key can now leave the ring: the token works under the new key alone.
    const newOnly = parseMasterKeys(masterKeyLine("new", 4), "test keys");
    expect((await new Authenticator(store, newOnly).authenticate(token)).name).toBe("billing");
  });
});

describe("credentialFrom", () => {
  it("takes the token of an accepted scheme, in any case", () => {
    expect(credentialFrom("Bearer abc", ["Bearer"])).toBe("abc");
    expect(credentialFrom("bearer  abc ", ["Bearer"])).toBe("abc");
    expect(credentialFrom("Key abc", ["Bearer", "Key"])).toBe("abc");
  });

  it("calls a missing header, another scheme or an empty token missing credentials", () => {
    for (const header of [undefined, "", "Basic abc", "Bearer", "Bearer   ", "Key abc"]) {
      let err: unknown;
      try {
        credentialFrom(header, ["Bearer"]);
      } catch (e) {
        err = e;
      }
      expect(err, String(header)).toBeInstanceOf(DomainError);
      expect((err as DomainError).details.credentials).toBe("missing");
    }
  });
});
