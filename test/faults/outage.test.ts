import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "../../src/store/embedded.js";
import { client } from "../harness/clients.js";
import {
  adminToken,
  eventually,
  mongoUri,
  spawnSeald,
  startTestSeald,
  tempDir,
  testMasterKeys,
  uniqueDatabase,
} from "../harness/seald.js";

describe("faults with real processes", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  it("fails fast with Unavailable / 503 while the database is down, and recovers without a restart", async () => {
    const dir = tempDir("seald-outage-db-");
    let db: EmbeddedDatabase = await startEmbeddedDatabase({ dir });
    cleanup.push(() => db.stop());
    const port = new URL(db.uri).port;
    const seald: Seald = await startTestSeald({ mongodbUri: db.uri });
    cleanup.push(() => seald.close());
    const rpc = client(SecretsService, seald.url, adminToken);
    await rpc.createSecret({
      secret: { namespace: "o", name: "s", value: { kind: { case: "plaintext", value: "v" } } },
    });
    const sensu = () =>
      fetch(`${seald.url}/api/enterprise/secrets/v1/namespaces/o/secrets/s`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
    expect((await sensu()).status).toBe(200);

    await db.stop();
    // Each call fails within the driver's bounded server selection (2 s), never hangs.
    const started = Date.now();
    const err = await rpc
      .getSecret({ namespace: "o", name: "s" })
      .catch((e) => ConnectError.from(e));
    expect(Date.now() - started).toBeLessThan(5000);
    expect((err as ConnectError).code).toBe(Code.Unavailable);
    const rest = await sensu();
    expect(rest.status).toBe(503);
    expect(await rest.json()).toEqual({ message: "database unavailable, retry later", code: 0 });
    await eventually(async () => (await fetch(`${seald.url}/readyz`)).status === 503, 10_000);

    db = await startEmbeddedDatabase({ dir, listen: `127.0.0.1:${port}` });
    await eventually(async () => (await fetch(`${seald.url}/readyz`)).status === 200, 20_000);
    expect((await rpc.getSecret({ namespace: "o", name: "s" })).secret?.name).toBe("s");
    expect((await sensu()).status).toBe(200);
  });

  it("keeps every acknowledged write readable and decryptable after SIGKILL during a write storm", async () => {
    const database = uniqueDatabase("kill");
    const env = {
      SEALD_LISTEN: "127.0.0.1:0",
      SEALD_MONGODB_URI: mongoUri(),
      SEALD_DATABASE: database,
      SEALD_MASTER_KEYS: testMasterKeys,
      SEALD_BOOTSTRAP_TOKEN: adminToken,
    };
    const first = spawnSeald([], env);
    const url = `http://${JSON.parse(await first.waitForLog(/"msg":"listening"/)).address}`;
    await first.waitForLog(/"msg":"ready to serve"/);
    const access = client(AccessService, url, adminToken);
    await access.createPrincipal({
      principal: { name: "svc", kind: PrincipalKind.SERVICE_ACCOUNT },
    });
    await access.grantRole({
      binding: { principal: "svc", role: "decrypter", namespace: "storm" },
    });
    const svcToken = (await access.createToken({ principal: "svc" })).secret;

    const writer = client(SecretsService, url, adminToken);
    const acknowledged = new Map<string, string>();
    // A write in flight when the process dies may or may not have happened; either is correct.
    const inFlight = new Map<string, string>();
    let stop = false;
    const storm = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let i = 0; !stop; i++) {
          const name = `w${w}-${i}`;
          const value = `value-${w}-${i}`;
          try {
            await writer.createSecret({
              secret: {
                namespace: "storm",
                name,
                decrypters: ["svc"],
                value: { kind: { case: "plaintext", value } },
              },
            });
            acknowledged.set(name, value);
            // Updates too, so value versions move while the process dies.
            const current = await writer.getSecret({ namespace: "storm", name });
            const next = `${value}-v2`;
            inFlight.set(name, next);
            await writer.updateSecret({
              secret: {
                namespace: "storm",
                name,
                decrypters: ["svc"],
                value: { kind: { case: "plaintext", value: next } },
              },
              expectedResourceVersion: current.secret?.resourceVersion ?? "",
            });
            acknowledged.set(name, next);
          } catch {
            return;
          }
        }
      })(),
    );
    await eventually(() => acknowledged.size >= 40, 30_000);
    first.child.kill("SIGKILL");
    stop = true;
    await Promise.all(storm);
    expect(await first.exited).toBe("SIGKILL");

    const second = spawnSeald([], env);
    cleanup.push(async () => {
      second.child.kill("SIGTERM");
      await second.exited;
    });
    const url2 = `http://${JSON.parse(await second.waitForLog(/"msg":"listening"/)).address}`;
    await second.waitForLog(/"msg":"ready to serve"/);
    const names = [...acknowledged.keys()];
    const reader = client(SecretsService, url2, svcToken);
    for (let i = 0; i < names.length; i += 100) {
      const batch = names.slice(i, i + 100);
      const res = await reader.decryptSecrets({ namespace: "storm", names: batch });
      for (const name of batch) {
        const result = res.results[name]?.result;
        expect(result?.case, name).toBe("value");
        expect([acknowledged.get(name), inFlight.get(name)], name).toContain(result?.value);
      }
    }
    // Nothing half-written: every secret that exists (acknowledged or not) reads and decrypts.
    const listed = await client(SecretsService, url2, adminToken).listSecrets({
      namespace: "storm",
      pageSize: 1000,
    });
    const all = listed.secrets.map((s) => s.name);
    for (let i = 0; i < all.length; i += 100) {
      const res = await reader.decryptSecrets({ namespace: "storm", names: all.slice(i, i + 100) });
      for (const name of all.slice(i, i + 100))
        expect(res.results[name]?.result.case, name).toBe("value");
    }
  }, 120_000);
});
