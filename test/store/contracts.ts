/**
 * The storage ports' contracts as tests, run against both implementations: the MongoDB stores of
 * src/store on the test database (contracts.test.ts) and the in-memory stores of the unit tier
 * (memory-contracts.unit.test.ts). What passes against FerretDB and fails in memory (or the other
 * way round) is a fake that no longer tells the truth about the store, which would make the unit
 * tier's results worthless; these keep the two in step.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { AccessStore, TokenRecord } from "../../src/auth/access-store-port.js";
import type { AuditStore } from "../../src/auth/audit.js";
import type { AuditRecord } from "../../src/auth/audit-chain.js";
import { type KeyRing, parseMasterKeys } from "../../src/crypto/keyring.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import type { Envelope, NamespaceKeyPair } from "../../src/domain/sealed.js";
import type { SecretRecord } from "../../src/domain/secret.js";
import type { FieldRequirement, LabelRequirement } from "../../src/domain/selector.js";
import type { DamagedSecret, ListQuery, SecretStore } from "../../src/service/ports.js";
import type { ProviderRecord, ProviderStore } from "../../src/service/providers.js";
import { masterKeyLine } from "../harness/keys.js";

/** The ring whose active key ("m1") MACs the heads a secret store writes. */
const ring = parseMasterKeys(masterKeyLine("m1", 11), "contract keys");

const t0 = new Date("2026-01-01T00:00:00.000Z");
const later = (ms: number) => new Date(t0.getTime() + ms);
let serial = 0;

function envelope(kekId: string, fill: number): Envelope {
  return {
    kekId,
    dekNonce: new Uint8Array(24).fill(fill),
    wrappedDek: new Uint8Array(48).fill(fill),
    nonce: new Uint8Array(24).fill(fill),
    ciphertext: new Uint8Array(20).fill(fill),
  };
}

function secret(namespace: string, name: string, over: Partial<SecretRecord> = {}): SecretRecord {
  serial++;
  return {
    namespace,
    name,
    uid: `uid-${serial}`,
    labels: {},
    annotations: {},
    description: "",
    decrypters: [],
    keeper: "system",
    ref: "",
    version: 1,
    resourceVersion: `rv-${serial}`,
    createTime: t0,
    updateTime: t0,
    createdBy: "ed",
    updatedBy: "ed",
    envelope: envelope("k1", 1),
    ...over,
  };
}

/** The record after one more write: a new resource version, and a new value when `value`. */
function next(
  previous: SecretRecord,
  over: Partial<SecretRecord> = {},
  value = false,
): SecretRecord {
  serial++;
  const version = value ? previous.version + 1 : previous.version;
  return {
    ...previous,
    version,
    resourceVersion: `rv-${serial}`,
    updateTime: later(serial),
    envelope: value ? envelope("k1", version) : previous.envelope,
    ...over,
  };
}

function keyPair(namespace: string, fill: number, kekId = "k1"): NamespaceKeyPair {
  return {
    namespace,
    keyId: `key-${fill}`,
    publicKey: new Uint8Array(32).fill(fill),
    wrappedPrivateKey: {
      kekId,
      nonce: new Uint8Array(24).fill(fill),
      ciphertext: new Uint8Array(48).fill(fill),
    },
  };
}

const all = (over: Partial<ListQuery> = {}): ListQuery => ({
  namespaces: "*",
  labels: [],
  fields: [],
  after: undefined,
  limit: 100,
  ...over,
});

const names = (records: readonly (SecretRecord | DamagedSecret)[]) =>
  records.map((r) => `${r.namespace}/${r.name}`);

/**
 * The SecretStore contract; `make` gives a fresh, empty store that MACs heads with `ring` and
 * keeps `maxVersions` values.
 */
export function secretStoreContract(
  make: (options: { ring: KeyRing; maxVersions: number }) => Promise<SecretStore>,
): void {
  describe("SecretStore", () => {
    beforeAll(async () => {
      await loadSodium();
    });
    it("creates once per (namespace, name) and reads back what it stored", async () => {
      const store = await make({ ring, maxVersions: 10 });
      const r = secret("team-a", "db", {
        labels: { "app.kubernetes.io/name": "shop", $x: "y" },
        annotations: { note: "n" },
        decrypters: ["b", "a"],
        description: "d",
      });
      expect(await store.create(r)).toBe("created");
      expect(await store.create(secret("team-a", "db"))).toBe("exists");
      expect(await store.get("team-a", "db")).toEqual(r);
      expect(await store.get("team-a", "nope")).toBeUndefined();
      expect(await store.get("team-b", "db")).toBeUndefined();
    });

    it("lists in (namespace, name) order, after a cursor, up to a limit, in the namespaces asked", async () => {
      const store = await make({ ring, maxVersions: 10 });
      for (const [ns, name] of [
        ["a-x", "a"],
        ["a", "b"],
        ["a", "a"],
        ["a.b", "c"],
        ["b", "a"],
      ] as const) {
        await store.create(secret(ns, name));
      }
      expect(names(await store.list(all()))).toEqual(["a/a", "a/b", "a-x/a", "a.b/c", "b/a"]);
      expect(
        names(await store.list(all({ after: { namespace: "a", name: "b" }, limit: 2 }))),
      ).toEqual(["a-x/a", "a.b/c"]);
      expect(names(await store.list(all({ namespaces: ["b", "a"] })))).toEqual([
        "a/a",
        "a/b",
        "b/a",
      ]);
      expect(await store.list(all({ namespaces: [] }))).toEqual([]);
    });

    it("evaluates label and field requirements as Kubernetes and Sensu selectors mean them", async () => {
      const store = await make({ ring, maxVersions: 10 });
      await store.create(
        secret("ns", "web", {
          labels: { app: "shop", tier: "web" },
          decrypters: ["billing", "ops"],
        }),
      );
      await store.create(secret("ns", "db", { labels: { app: "shop-db" }, decrypters: ["ops"] }));
      await store.create(
        secret("ns", "bare", { keeper: "env", ref: "APP_X", envelope: undefined }),
      );
      const byLabel = async (...labels: LabelRequirement[]) =>
        (await store.list(all({ labels }))).map((r) => r.name);
      const byField = async (...fields: FieldRequirement[]) =>
        (await store.list(all({ fields }))).map((r) => r.name);
      expect(await byLabel({ key: "app", op: "=", values: ["shop"] })).toEqual(["web"]);
      expect(await byLabel({ key: "app", op: "!=", values: ["shop"] })).toEqual(["bare", "db"]);
      expect(await byLabel({ key: "app", op: "in", values: ["shop", "shop-db"] })).toEqual([
        "db",
        "web",
      ]);
      expect(await byLabel({ key: "tier", op: "notin", values: ["web"] })).toEqual(["bare", "db"]);
      expect(await byLabel({ key: "tier", op: "exists", values: [] })).toEqual(["web"]);
      expect(await byLabel({ key: "tier", op: "!exists", values: [] })).toEqual(["bare", "db"]);
      expect(await byLabel({ key: "app", op: "matches", values: ["op-"] })).toEqual(["db"]);
      expect(await byLabel({ key: "app", op: "matches", values: ["."] })).toEqual([]);
      expect(
        await byLabel(
          { key: "app", op: "matches", values: ["shop"] },
          { key: "tier", op: "!exists", values: [] },
        ),
      ).toEqual(["db"]);
      expect(await byField({ field: "decrypter", op: "=", values: ["billing"] })).toEqual(["web"]);
      expect(await byField({ field: "decrypter", op: "!=", values: ["billing"] })).toEqual([
        "bare",
        "db",
      ]);
      expect(await byField({ field: "decrypter", op: "in", values: ["ops", "x"] })).toEqual([
        "db",
        "web",
      ]);
      expect(await byField({ field: "decrypter", op: "notin", values: ["ops"] })).toEqual(["bare"]);
      expect(await byField({ field: "keeper", op: "=", values: ["env"] })).toEqual(["bare"]);
      expect(await byField({ field: "ref", op: "matches", values: ["PP_"] })).toEqual(["bare"]);
      expect(await byField({ field: "name", op: "in", values: ["db", "web"] })).toEqual([
        "db",
        "web",
      ]);
      expect(await byField({ field: "namespace", op: "!=", values: ["ns"] })).toEqual([]);
    });

    it("updates only from the stored resource version", async () => {
      const store = await make({ ring, maxVersions: 10 });
      const v1 = secret("ns", "db");
      await store.create(v1);
      const a = next(v1, { description: "a" });
      expect(await store.update(v1, a)).toBe("updated");
      expect(await store.update(v1, next(v1, { description: "b" }))).toBe("conflict");
      expect(await store.get("ns", "db")).toEqual(a);
      expect(await store.update(secret("ns", "gone"), secret("ns", "gone"))).toBe("conflict");
      expect(await store.get("ns", "gone")).toBeUndefined();
    });

    it("keeps the older values of the last maxVersions, and serves nothing outside that window", async () => {
      const store = await make({ ring, maxVersions: 3 });
      let current = secret("ns", "db");
      await store.create(current);
      for (let i = 0; i < 4; i++) {
        const updated = next(current, {}, true);
        expect(await store.update(current, updated)).toBe("updated");
        current = updated;
      }
      expect(current.version).toBe(5);
      const kept = async (v: number) => store.getVersion(current.uid, v, current.version);
      expect(await kept(1)).toBeUndefined();
      expect(await kept(2)).toBeUndefined();
      expect(await kept(3)).toEqual(envelope("k1", 3));
      expect(await kept(4)).toEqual(envelope("k1", 4));
      // The current value is the head's, never the history's.
      expect(await kept(5)).toBeUndefined();
      // A lowered limit narrows the window at once.
      expect(await store.getVersion(current.uid, 3, 6)).toBeUndefined();
      // A metadata-only write keeps the version and adds no history.
      const meta = next(current, { description: "m" });
      expect(await store.update(current, meta)).toBe("updated");
      expect(await store.getVersion(current.uid, 4, meta.version)).toEqual(envelope("k1", 4));
    });

    it("deletes a secret with its history, honouring an expected resource version", async () => {
      const store = await make({ ring, maxVersions: 10 });
      const v1 = secret("ns", "db");
      await store.create(v1);
      const v2 = next(v1, {}, true);
      await store.update(v1, v2);
      expect(await store.delete("ns", "db", "stale")).toBe("conflict");
      expect(await store.get("ns", "db")).toEqual(v2);
      expect(await store.delete("ns", "db", v2.resourceVersion)).toBe("deleted");
      expect(await store.get("ns", "db")).toBeUndefined();
      expect(await store.delete("ns", "db")).toBeUndefined();
      // Created again under the same name: a new secret, nothing of the old one's history.
      const again = secret("ns", "db", { uid: v1.uid, version: 2 });
      await store.create(again);
      expect(await store.getVersion(v1.uid, 1, 2)).toBeUndefined();
    });

    it("keeps the first namespace key pair stored, and the previous one after a rotation", async () => {
      const store = await make({ ring, maxVersions: 10 });
      expect(await store.getNamespaceKey("ns")).toBeUndefined();
      const first = keyPair("ns", 1);
      expect(await store.putNamespaceKeyIfAbsent(first)).toEqual(first);
      expect(await store.putNamespaceKeyIfAbsent(keyPair("ns", 2))).toEqual(first);
      expect(await store.getNamespaceKey("ns")).toEqual(first);
      expect(await store.getPreviousNamespaceKey("ns")).toBeUndefined();

      const second = keyPair("ns", 3);
      expect(await store.rotateNamespaceKey(second, later(1000))).toEqual(first);
      expect(await store.getNamespaceKey("ns")).toEqual(second);
      expect(await store.getPreviousNamespaceKey("ns")).toEqual({
        pair: first,
        validUntil: later(1000),
      });

      const fresh = keyPair("other", 4);
      expect(await store.rotateNamespaceKey(fresh, later(1000))).toBeUndefined();
      expect(await store.getNamespaceKey("other")).toEqual(fresh);
      expect(await store.getPreviousNamespaceKey("other")).toBeUndefined();
    });

    it("names every master key that stored values, history, head MACs and namespace keys depend on", async () => {
      const store = await make({ ring, maxVersions: 10 });
      expect(await store.kekIdsInUse()).toEqual([]);
      const v1 = secret("ns", "a", { envelope: envelope("k0", 1) });
      await store.create(v1);
      await store.update(v1, { ...next(v1, {}, true), envelope: envelope("k2", 2) });
      await store.create(secret("ns", "b", { keeper: "env", ref: "APP_X", envelope: undefined }));
      await store.putNamespaceKeyIfAbsent(keyPair("ns", 1, "k3"));
      expect(await store.kekIdsInUse()).toEqual(["k0", "k2", "k3", "m1"]);
      // A rotated-out namespace key still accepted in its grace period keeps its master key.
      await store.rotateNamespaceKey(keyPair("ns", 2, "k4"), later(1000));
      expect(await store.kekIdsInUse()).toEqual(["k0", "k2", "k3", "k4", "m1"]);
    });
  });
}

function token(id: string, hash: string, over: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id,
    principal: "ed",
    kekId: "k1",
    hash,
    description: "",
    createTime: t0,
    ...over,
  };
}

/** The AccessStore contract; `make` gives a fresh, empty store. */
export function accessStoreContract(make: () => Promise<AccessStore>): void {
  describe("AccessStore", () => {
    const principal = (name: string) => ({
      name,
      kind: "user" as const,
      displayName: name.toUpperCase(),
      createTime: t0,
      createdBy: "admin",
    });

    it("inserts each principal once and lists them by name, after a name, up to a limit", async () => {
      const store = await make();
      for (const name of ["carol", "alice", "bob"])
        expect(await store.insertPrincipal(principal(name))).toBe(true);
      expect(await store.insertPrincipal(principal("bob"))).toBe(false);
      expect(await store.getPrincipal("alice")).toEqual(principal("alice"));
      expect((await store.listPrincipals(undefined, 2)).map((p) => p.name)).toEqual([
        "alice",
        "bob",
      ]);
      expect((await store.listPrincipals("alice", 10)).map((p) => p.name)).toEqual([
        "bob",
        "carol",
      ]);
    });

    it("finds a token only by a hash made with the key its record names", async () => {
      const store = await make();
      const t = token("t1", "aa".repeat(32));
      await store.insertToken(t);
      expect(await store.findTokenByHash([{ kekId: "k1", hash: t.hash }])).toEqual(t);
      expect(await store.findTokenByHash([{ kekId: "k2", hash: t.hash }])).toBeUndefined();
      expect(
        await store.findTokenByHash([
          { kekId: "k2", hash: "bb".repeat(32) },
          { kekId: "k1", hash: t.hash },
        ]),
      ).toEqual(t);
      expect(await store.getToken("t1")).toEqual(t);
      await expect(store.insertToken(token("t2", t.hash))).rejects.toThrow();
    });

    it("lists tokens newest first and revokes once, keeping the first revoke time", async () => {
      const store = await make();
      await store.insertToken(token("old", "01".repeat(32), { createTime: later(1) }));
      await store.insertToken(token("new", "02".repeat(32), { createTime: later(2) }));
      await store.insertToken(token("hers", "03".repeat(32), { principal: "eve" }));
      expect((await store.listTokens("ed")).map((t) => t.id)).toEqual(["new", "old"]);
      expect((await store.listTokens(undefined)).map((t) => t.id)).toEqual(["new", "old", "hers"]);
      expect((await store.revokeToken("old", later(10)))?.revokeTime).toEqual(later(10));
      expect((await store.revokeToken("old", later(20)))?.revokeTime).toEqual(later(10));
      expect(await store.revokeToken("none", later(20))).toBeUndefined();
    });

    it("moves a token to a new hash, carrying a revocation with it", async () => {
      const store = await make();
      const t = token("t1", "0a".repeat(32), { kekId: "old" });
      await store.insertToken(t);
      await store.revokeToken("t1", later(5));
      const revoked = await store.getToken("t1");
      if (!revoked) throw new Error("token vanished");
      await store.rekeyToken(revoked, { kekId: "new", hash: "0b".repeat(32) });
      expect(await store.findTokenByHash([{ kekId: "old", hash: t.hash }])).toBeUndefined();
      expect(await store.findTokenByHash([{ kekId: "new", hash: "0b".repeat(32) }])).toMatchObject({
        id: "t1",
        kekId: "new",
        revokeTime: later(5),
      });
      expect(await store.kekIdsInUse()).toEqual(["new"]);
      expect((await store.listTokens("ed")).map((t) => t.id)).toEqual(["t1"]);
    });

    it("stores each binding once, lists them in order, and knows whether an admin exists", async () => {
      const store = await make();
      const binding = (p: string, role: "admin" | "reader", namespace: string) => ({
        principal: p,
        role,
        namespace,
        createTime: t0,
      });
      expect(await store.hasAdmin()).toBe(false);
      expect(await store.insertBinding(binding("bob", "reader", "b"))).toBe(true);
      expect(await store.insertBinding(binding("bob", "reader", "b"))).toBe(false);
      await store.insertBinding(binding("bob", "reader", "a"));
      await store.insertBinding(binding("amy", "admin", "team"));
      expect(await store.hasAdmin()).toBe(false);
      await store.insertBinding(binding("amy", "admin", "*"));
      expect(await store.hasAdmin()).toBe(true);
      expect(
        (await store.listBindings({})).map((b) => `${b.principal} ${b.role}@${b.namespace}`),
      ).toEqual(["amy admin@*", "amy admin@team", "bob reader@a", "bob reader@b"]);
      expect((await store.listBindings({ namespace: "b" })).map((b) => b.principal)).toEqual([
        "bob",
      ]);
      expect(await store.deleteBinding({ principal: "bob", role: "reader", namespace: "b" })).toBe(
        true,
      );
      expect(await store.deleteBinding({ principal: "bob", role: "reader", namespace: "b" })).toBe(
        false,
      );
    });

    it("deletes a principal with its tokens and bindings", async () => {
      const store = await make();
      await store.insertPrincipal(principal("ed"));
      await store.insertToken(token("t1", "0c".repeat(32)));
      await store.insertBinding({
        principal: "ed",
        role: "reader",
        namespace: "a",
        createTime: t0,
      });
      expect(await store.deletePrincipal("ed")).toBe(true);
      expect(await store.deletePrincipal("ed")).toBe(false);
      expect(await store.getToken("t1")).toBeUndefined();
      expect(await store.listBindings({ principal: "ed" })).toEqual([]);
    });
  });
}

function auditRecord(seq: number, over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    seq,
    time: later(seq),
    principal: "ed",
    action: "secret.securevalues:read",
    namespace: "ns",
    name: `n${seq}`,
    outcome: "success",
    requestId: `r${seq}`,
    remoteAddress: "192.0.2.1",
    prevMac: `mac${seq - 1}`,
    mac: `mac${seq}`,
    keyId: "k1",
    ...over,
  };
}

/** The AuditStore contract; `make` gives a fresh, empty store. */
export function auditStoreContract(make: () => Promise<AuditStore>): void {
  describe("AuditStore", () => {
    it("stores records in order until a seq is taken, and says how many it stored", async () => {
      const store = await make();
      expect(await store.head()).toBeUndefined();
      expect(await store.insert([])).toBe(0);
      expect(await store.insert([auditRecord(1), auditRecord(2)])).toBe(2);
      expect(await store.head()).toEqual({ seq: 2, mac: "mac2" });
      // Another writer took 2: nothing of this batch is stored.
      expect(await store.insert([auditRecord(2, { name: "late" }), auditRecord(3)])).toBe(0);
      expect(await store.insert([auditRecord(3)])).toBe(1);
      expect(await store.insert([auditRecord(5)])).toBe(1);
      // 4 is stored, 5 is taken, so 6 is not stored either: no hole behind the winner.
      expect(await store.insert([auditRecord(4), auditRecord(5), auditRecord(6)])).toBe(1);
      expect(await store.head()).toEqual({ seq: 5, mac: "mac5" });
      const scanned: number[] = [];
      for await (const e of store.scan()) scanned.push(e.seq);
      expect(scanned).toEqual([1, 2, 3, 4, 5]);
    });

    it("finds records newest first by every filter, before a seq, up to a limit", async () => {
      const store = await make();
      await store.insert([
        auditRecord(1),
        auditRecord(2, { outcome: "denied", principal: "eve" }),
        auditRecord(3, { namespace: "other", reason: "why" }),
        auditRecord(4, { action: "secret.securevalues:decrypt" }),
      ]);
      const seqs = async (q: Parameters<AuditStore["find"]>[0], limit = 10) =>
        (await store.find(q, limit)).map((e) => e.seq);
      expect(await seqs({})).toEqual([4, 3, 2, 1]);
      expect(await seqs({}, 2)).toEqual([4, 3]);
      expect(await seqs({ beforeSeq: 3 })).toEqual([2, 1]);
      expect(await seqs({ outcome: "denied" })).toEqual([2]);
      expect(await seqs({ principal: "ed", namespace: "ns" })).toEqual([4, 1]);
      expect(await seqs({ action: "secret.securevalues:decrypt" })).toEqual([4]);
      expect(await seqs({ since: later(2), until: later(4) })).toEqual([3, 2]);
      expect(await store.find({ namespace: "other" }, 1)).toEqual([
        auditRecord(3, { namespace: "other", reason: "why" }),
      ]);
    });
  });
}

function provider(name: string, over: Partial<ProviderRecord> = {}): ProviderRecord {
  return {
    name,
    type: "Env",
    labels: {},
    annotations: {},
    createTime: t0,
    updateTime: t0,
    createdBy: "admin",
    updatedBy: "admin",
    ...over,
  };
}

/** The ProviderStore contract; `make` gives a fresh, empty store. */
export function providerStoreContract(make: () => Promise<ProviderStore>): void {
  describe("ProviderStore", () => {
    it("creates when absent, replaces keeping the creation facts, and leaves a tombstone", async () => {
      const store = await make();
      await store.insertIfAbsent(provider("env", { createdBy: "" }));
      await store.insertIfAbsent(provider("env", { createdBy: "someone" }));
      expect(await store.get("env")).toEqual(provider("env", { createdBy: "" }));
      expect(
        await store.put(
          provider("env", {
            createTime: later(5),
            updateTime: later(5),
            createdBy: "x",
            updatedBy: "x",
          }),
        ),
      ).toBe("updated");
      expect(await store.get("env")).toEqual(
        provider("env", { createdBy: "", updateTime: later(5), updatedBy: "x" }),
      );
      expect(await store.delete("env")).toBe(true);
      expect(await store.delete("env")).toBe(false);
      expect(await store.get("env")).toBeUndefined();
      // The tombstone keeps the default from coming back by itself.
      await store.insertIfAbsent(provider("env"));
      expect(await store.get("env")).toBeUndefined();
      // A put brings it back as a new provider.
      const back = provider("env", { createTime: later(9), createdBy: "y" });
      expect(await store.put(back)).toBe("created");
      expect(await store.get("env")).toEqual(back);
    });

    it("lists live providers by name, after a name, up to a limit, by name requirements", async () => {
      const store = await make();
      for (const name of ["vault", "env", "aws", "gone"]) await store.put(provider(name));
      await store.delete("gone");
      const list = async (over: Partial<Parameters<ProviderStore["list"]>[0]> = {}) =>
        (
          await store.list({
            names: [],
            labels: [],
            types: [],
            after: undefined,
            limit: 10,
            ...over,
          })
        ).map((p) => p.name);
      expect(await list()).toEqual(["aws", "env", "vault"]);
      expect(await list({ after: "aws", limit: 1 })).toEqual(["env"]);
      expect(await list({ names: [{ op: "!=", values: ["env"] }] })).toEqual(["aws", "vault"]);
      expect(await list({ names: [{ op: "in", values: ["env", "gone"] }] })).toEqual(["env"]);
      expect(await list({ names: [{ op: "notin", values: ["env"] }] })).toEqual(["aws", "vault"]);
      expect(await list({ names: [{ op: "matches", values: ["a"] }] })).toEqual(["aws", "vault"]);
      expect(await list({ names: [{ op: "=", values: ["gone"] }] })).toEqual([]);
      // Sensu's `types`: any of them; a type no provider has matches nothing.
      expect(await list({ types: ["Env"] })).toEqual(["aws", "env", "vault"]);
      expect(await list({ types: ["VaultProvider"] })).toEqual([]);
      expect(await list({ types: ["VaultProvider", "Env"], limit: 1 })).toEqual(["aws"]);
    });

    it("keeps labels and annotations (keys with dots and slashes), replaces them, selects on labels", async () => {
      const store = await make();
      const managed = { "sensu.io/managed_by": "sensuctl", region: "eu-west" };
      await store.put(provider("a", { labels: managed, annotations: { "a.b/c": "note" } }));
      await store.put(provider("b", { labels: { region: "us" } }));
      await store.put(provider("c"));
      expect(await store.get("a")).toEqual(
        provider("a", { labels: managed, annotations: { "a.b/c": "note" } }),
      );
      const list = async (labels: Parameters<ProviderStore["list"]>[0]["labels"]) =>
        (await store.list({ names: [], labels, types: [], after: undefined, limit: 10 })).map(
          (p) => p.name,
        );
      expect(await list([{ key: "sensu.io/managed_by", op: "=", values: ["sensuctl"] }])).toEqual([
        "a",
      ]);
      expect(await list([{ key: "region", op: "!=", values: ["us"] }])).toEqual(["a", "c"]);
      expect(await list([{ key: "region", op: "in", values: ["us", "eu-west"] }])).toEqual([
        "a",
        "b",
      ]);
      expect(await list([{ key: "region", op: "notin", values: ["us"] }])).toEqual(["a", "c"]);
      expect(await list([{ key: "region", op: "matches", values: ["west"] }])).toEqual(["a"]);
      expect(await list([{ key: "region", op: "exists", values: [] }])).toEqual(["a", "b"]);
      expect(await list([{ key: "region", op: "!exists", values: [] }])).toEqual(["c"]);
      // A put replaces the labels: the old ones no longer select it.
      await store.put(provider("a", { labels: { region: "us" } }));
      expect((await store.get("a"))?.labels).toEqual({ region: "us" });
      expect((await store.get("a"))?.annotations).toEqual({});
      expect(await list([{ key: "sensu.io/managed_by", op: "exists", values: [] }])).toEqual([]);
    });
  });
}
