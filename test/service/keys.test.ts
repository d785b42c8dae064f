import { statSync } from "node:fs";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { client } from "../harness/clients.js";
import {
  adminToken,
  masterKeyLine as key,
  mongoUri,
  spawnSeald,
  startTestSeald,
  tempDir,
  uniqueDatabase,
} from "../harness/seald.js";

describe("master keys across restarts", () => {
  const database = uniqueDatabase("keys");
  let mongo: MongoClient;
  beforeAll(async () => {
    mongo = await MongoClient.connect(mongoUri());
  });
  afterAll(async () => {
    await mongo?.close();
  });

  async function decrypter(url: string): Promise<string> {
    const access = client(AccessService, url, adminToken);
    const existing = await access.getPrincipal({ name: "reader-svc" }).catch(() => undefined);
    if (!existing) {
      await access.createPrincipal({
        principal: { name: "reader-svc", kind: PrincipalKind.SERVICE_ACCOUNT },
      });
      await access.grantRole({
        binding: { principal: "reader-svc", role: "decrypter", namespace: "k" },
      });
    }
    return (await access.createToken({ principal: "reader-svc" })).secret;
  }

  it("refuses a restart without the key stored data names, and reads old and new values with the old key kept", async () => {
    const first = await startTestSeald({ database, masterKeys: key("old", 1) });
    const writer = client(SecretsService, first.url, adminToken);
    await writer.createSecret({
      secret: {
        namespace: "k",
        name: "before",
        decrypters: ["reader-svc"],
        value: { kind: { case: "plaintext", value: "sealed-under-old" } },
      },
    });
    await first.close();

    // A different key only: start-up refuses and names the missing key id.
    const { startSeald } = await import("../../src/app.js");
    const { testConfig, silentLogger } = await import("../harness/seald.js");
    const wrong = await startSeald(
      testConfig({ database, masterKeys: key("other", 2) }),
      silentLogger(),
    );
    await expect(wrong.databaseStarted).rejects.toThrow(
      /master key "old", which is not configured/,
    );
    await wrong.close();

    // The new key first (active), the old one kept: both values open.
    const second = await startTestSeald({
      database,
      masterKeys: `${key("new", 3)},${key("old", 1)}`,
    });
    try {
      const w = client(SecretsService, second.url, adminToken);
      await w.createSecret({
        secret: {
          namespace: "k",
          name: "after",
          decrypters: ["reader-svc"],
          value: { kind: { case: "plaintext", value: "sealed-under-new" } },
        },
      });
      const heads = mongo
        .db(database)
        .collection<{ name: string; sealed: { kekId: string } }>("secrets");
      expect((await heads.findOne({ name: "before" }))?.sealed.kekId).toBe("old");
      expect((await heads.findOne({ name: "after" }))?.sealed.kekId).toBe("new");
      const svc = client(SecretsService, second.url, await decrypter(second.url));
      const res = await svc.decryptSecrets({ namespace: "k", names: ["before", "after"] });
      expect(res.results.before?.result).toEqual({ case: "value", value: "sealed-under-old" });
      expect(res.results.after?.result).toEqual({ case: "value", value: "sealed-under-new" });
    } finally {
      await second.close();
    }
  });

  it("exits with a message naming the problem for a malformed key, and names the missing id at start-up", async () => {
    const bad = spawnSeald([], { SEALD_MONGODB_URI: mongoUri(), SEALD_MASTER_KEYS: "k1:c2hvcnQ=" });
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toMatch(/SEALD_MASTER_KEYS: key "k1" is 5 bytes, want 32/);
    expect(bad.stderr()).not.toContain("c2hvcnQ");

    const missing = spawnSeald([], {
      SEALD_LISTEN: "127.0.0.1:0",
      SEALD_MONGODB_URI: mongoUri(),
      SEALD_DATABASE: database,
      SEALD_MASTER_KEYS: key("unrelated", 9),
    });
    expect(await missing.exited).toBe(1);
    expect(missing.stderr()).toMatch(/master key "new", "old", which is not configured/);
  });

  it("refuses an external database without a master key", async () => {
    const p = spawnSeald([], { SEALD_MONGODB_URI: mongoUri() });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toMatch(/SEALD_MASTER_KEYS: required with an external database/);
  });

  it("generates a development key (mode 0600) for the embedded database and warns", async () => {
    const dataDir = tempDir("seald-devkey-");
    const p = spawnSeald([], { SEALD_LISTEN: "127.0.0.1:0", SEALD_DATA_DIR: dataDir });
    const warning = await p.waitForLog(/GENERATED a development master key/, 30_000);
    expect(JSON.parse(warning).level).toBe("warn");
    expect(statSync(join(dataDir, "master.key")).mode & 0o777).toBe(0o600);
    await p.waitForLog(/"msg":"listening"/);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  });
});
