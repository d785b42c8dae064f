import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { KeysService } from "../../gen/secrets/v1/keys_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { decodeStandardBase64 } from "../../src/crypto/base64.js";
import { sealForPublicKey } from "../../src/crypto/sealed-box.js";
import { loadSodium } from "../../src/crypto/sodium.js";
import { client } from "../harness/clients.js";
import {
  adminToken,
  eventually,
  masterKeyLine as key,
  startTestSeald,
  testClock,
  uniqueDatabase,
} from "../harness/seald.js";

const fastJob = { batchSize: 10, pauseMs: 40, leaseMs: 800, checkEveryMs: 200 };

describe("master-key rotation without downtime", () => {
  const started: Seald[] = [];
  afterAll(async () => {
    for (const s of started) await s.close();
  });

  it("re-wraps every data key under load with zero failed requests, and another replica finishes a job whose holder died", async () => {
    const database = uniqueDatabase("rotate");
    const old = await startTestSeald({ database, masterKeys: key("old", 1) });
    started.push(old);
    const admin = client(SecretsService, old.url, adminToken);
    const access = client(AccessService, old.url, adminToken);
    await access.createPrincipal({
      principal: { name: "svc", kind: PrincipalKind.SERVICE_ACCOUNT },
    });
    await access.grantRole({ binding: { principal: "svc", role: "decrypter", namespace: "rot" } });
    const svcToken = (await access.createToken({ principal: "svc" })).secret;
    const names = Array.from({ length: 60 }, (_, i) => `s${String(i).padStart(3, "0")}`);
    for (const name of names) {
      await admin.createSecret({
        secret: {
          namespace: "rot",
          name,
          decrypters: ["svc"],
          value: { kind: { case: "plaintext", value: `v1-${name}` } },
        },
      });
    }
    // Some history under the old key, and a namespace key.
    for (const name of names.slice(0, 10)) {
      const s = await admin.getSecret({ namespace: "rot", name });
      await admin.updateSecret({
        secret: {
          namespace: "rot",
          name,
          decrypters: ["svc"],
          value: { kind: { case: "plaintext", value: `v2-${name}` } },
        },
        expectedResourceVersion: s.secret?.resourceVersion ?? "",
      });
    }
    await admin.getPublicKey({ namespace: "rot" });
    // A namespace key rotated under the old key (its previous pair is still in its grace
    // period), and a secret of an external keeper, whose head only has a MAC to move.
    await client(KeysService, old.url, adminToken).rotatePublicKey({ namespace: "rot" });
    await admin.createSecret({
      secret: { namespace: "rot", name: "ext", keeper: "env", ref: "X" },
    });
    await old.close();
    started.pop();

    // The rolled-out configuration: the new key active, the old one kept. Two replicas.
    const ring = `${key("new", 2)},${key("old", 1)}`;
    // The replica that will die pauses longer between batches (and holds a longer lease), so
    // the job is still far from done when the test sees it halfway and stops that replica. At
    // the survivor's pace the few batches left are a few hundred milliseconds, which a slow
    // status call on a loaded machine can outlast, and a job finished before its holder died
    // leaves nothing to take over.
    const runner = await startTestSeald(
      { database, masterKeys: ring },
      { rewrap: { ...fastJob, pauseMs: 300, leaseMs: 2000 } },
    );
    const survivor = await startTestSeald({ database, masterKeys: ring }, { rewrap: fastJob });
    started.push(runner, survivor);

    // Continuous load on the surviving replica: reads, writes and decrypts.
    const load = { stop: false, ok: 0, failed: [] as string[] };
    const reader = client(SecretsService, survivor.url, adminToken);
    const decrypter = client(SecretsService, survivor.url, svcToken);
    const loop = (async () => {
      for (let i = 0; !load.stop; i++) {
        const name = names[i % names.length] ?? "";
        try {
          await reader.getSecret({ namespace: "rot", name });
          const d = await decrypter.decryptSecrets({ namespace: "rot", names: [name] });
          if (d.results[name]?.result.case !== "value")
            throw new Error(`decrypt ${name}: ${JSON.stringify(d.results[name]?.result)}`);
          await reader.createSecret({
            secret: {
              namespace: "rot-load",
              name: `n${i}`,
              value: { kind: { case: "plaintext", value: "x" } },
            },
          });
          load.ok++;
        } catch (err) {
          load.failed.push(String(err));
        }
      }
    })();

    const keys = client(KeysService, runner.url, adminToken);
    const first = await keys.startRewrap({});
    expect(first.rewrap?.state).toBe("running");
    expect(first.rewrap?.targetKeyId).toBe("new");
    const firstHolder = first.rewrap?.holder;
    await eventually(
      async () => Number((await keys.getKeyStatus({})).rewrap?.processed ?? 0) >= 20,
      20_000,
    );
    // The job's replica dies halfway (its lease is left to lapse).
    await runner.close();
    started.splice(started.indexOf(runner), 1);

    const status = client(KeysService, survivor.url, adminToken);
    await eventually(async () => (await status.getKeyStatus({})).rewrap?.state === "done", 60_000);
    load.stop = true;
    await loop;

    const final = await status.getKeyStatus({});
    expect(final.rewrap?.holder).not.toBe(firstHolder);
    expect(final.activeKeyId).toBe("new");
    const oldUsage = final.keys.find((k) => k.keyId === "old");
    expect(oldUsage).toMatchObject({ values: 0n, history: 0n, namespaceKeys: 0n });
    expect(load.failed).toEqual([]);
    expect(load.ok).toBeGreaterThan(5);

    // Every secret, current and kept versions, still decrypts.
    const all = await decrypter.decryptSecrets({ namespace: "rot", names });
    for (const name of names) expect(all.results[name]?.result.case, name).toBe("value");
    const v1 = await decrypter.decryptSecrets({
      namespace: "rot",
      names: names.slice(0, 10),
      version: 1n,
    });
    for (const name of names.slice(0, 10))
      expect(v1.results[name]?.result).toEqual({ case: "value", value: `v1-${name}` });

    // With nothing on it any more, the old key can go.
    const after = await startTestSeald({ database, masterKeys: key("new", 2) });
    started.push(after);
    const check = await client(SecretsService, after.url, svcToken).decryptSecrets({
      namespace: "rot",
      names: names.slice(0, 3),
    });
    for (const name of names.slice(0, 3)) expect(check.results[name]?.result.case).toBe("value");
  }, 180_000);

  it("accepts values sealed for a rotated namespace key during the grace period only", async () => {
    await loadSodium();
    // An hour of grace on a clock the test moves: no stall of this machine ends it before the
    // value sealed in time is sent, and the end is reached without waiting for it.
    const graceMs = 3_600_000;
    const clock = testClock();
    const seald = await startTestSeald(
      { database: uniqueDatabase("grace"), publicKeyGraceMs: graceMs },
      { now: clock.now },
    );
    started.push(seald);
    const secrets = client(SecretsService, seald.url, adminToken);
    const before = await secrets.getPublicKey({ namespace: "g" });
    const rotated = await client(KeysService, seald.url, adminToken).rotatePublicKey({
      namespace: "g",
    });
    expect(rotated.previousKeyId).toBe(before.keyId);
    expect(rotated.keyId).not.toBe(before.keyId);
    expect((await secrets.getPublicKey({ namespace: "g" })).keyId).toBe(rotated.keyId);
    const seal = (publicKey: string) =>
      sealForPublicKey(
        decodeStandardBase64(publicKey) ?? new Uint8Array(),
        new TextEncoder().encode("v"),
      );
    const create = (name: string, keyId: string, box: string) =>
      secrets.createSecret({
        secret: {
          namespace: "g",
          name,
          value: { kind: { case: "sealed", value: { keyId, box } } },
        },
      });
    await create("inside-grace", before.keyId, seal(before.publicKey));
    await create("new-key", rotated.keyId, seal(rotated.publicKey));
    clock.advance(graceMs);
    const err = await create("after-grace", before.keyId, seal(before.publicKey)).catch((e) =>
      ConnectError.from(e),
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toMatch(/was rotated out and stopped being accepted/);
    await create("new-key-later", rotated.keyId, seal(rotated.publicKey));
  });
});
