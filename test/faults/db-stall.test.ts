/**
 * A database that stalls with its connections open (SIGSTOP: the kernel still accepts and
 * buffers, nothing answers) must fail calls fast, as Unavailable / 503, and serve again as soon
 * as it resumes, without a restart. This file runs a FerretDB and a seald of its own, since it
 * pauses the database.
 */
import { rmSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "../../src/store/embedded.js";
import { client } from "../harness/clients.js";
import { bearer, grpc, grpcClient } from "../harness/grpc.js";
import { adminToken, eventually, startTestSeald, tempDir, testClock } from "../harness/seald.js";

/** The time to Unavailable that issue 13 sets as the target. */
const failFastMs = 2500;
// The test runs seald with a 1.5 s database timeout, not the 2 s default, so that a loaded
// 2-core CI machine (scheduling delays of 0.5 s were seen) does not make it flaky; the default
// is measured by scripts/db-stall.ts.
const dbTimeoutMs = 1500;

describe("a stalled database", () => {
  const dir = tempDir("seald-stall-db-");
  let db: EmbeddedDatabase | undefined;
  let seald: Seald | undefined;
  let paused = false;
  let svcToken = "";
  const clock = testClock();

  const pause = () => {
    if (!db) return;
    process.kill(db.pid, "SIGSTOP");
    paused = true;
  };
  const resume = () => {
    if (db && paused) process.kill(db.pid, "SIGCONT");
    paused = false;
  };

  beforeAll(async () => {
    db = await startEmbeddedDatabase({ dir });
    seald = await startTestSeald({ mongodbUri: db.uri, dbTimeoutMs }, { now: clock.now });
    const access = client(AccessService, seald.url, adminToken);
    await access.createPrincipal({
      principal: { name: "svc", kind: PrincipalKind.SERVICE_ACCOUNT },
    });
    await access.grantRole({ binding: { principal: "svc", role: "decrypter", namespace: "o" } });
    svcToken = (await access.createToken({ principal: "svc" })).secret;
    await client(SecretsService, seald.url, adminToken).createSecret({
      secret: {
        namespace: "o",
        name: "s",
        decrypters: ["svc"],
        value: { kind: { case: "plaintext", value: "stall-value" } },
      },
    });
  }, 60_000);

  afterAll(async () => {
    // Never leave a stopped process behind, whatever failed.
    resume();
    await seald?.close().catch(() => {});
    await db?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  /** Each call as a real client makes it, answering its outcome: "ok", a code name or status. */
  const calls = () => {
    const url = seald?.url ?? "";
    const grpcJs = grpcClient(SecretsService, new URL(url).host);
    const decrypter = client(SecretsService, url, svcToken);
    const rest = async (path: string) =>
      String(
        (await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${adminToken}` } }))
          .status,
      );
    const getSecret = (deadlineMs = 10_000) =>
      new Promise<string>((resolve) => {
        grpcJs.getSecret?.(
          { namespace: "o", name: "s" },
          bearer(adminToken),
          { deadline: Date.now() + deadlineMs },
          (err: grpc.ServiceError | null) => resolve(err ? (grpc.status[err.code] ?? "?") : "ok"),
        );
      });
    return {
      grpcJs,
      getSecret,
      "GetSecret (grpc-js)": () => getSecret(),
      "DecryptSecrets (connect gRPC)": () =>
        decrypter.decryptSecrets({ namespace: "o", names: ["s"] }).then(
          (r) => (r.results.s?.result.value === "stall-value" ? "ok" : "wrong value"),
          (e: unknown) => Code[ConnectError.from(e).code] ?? "?",
        ),
      "Sensu GET": () => rest("/api/enterprise/secrets/v1/namespaces/o/secrets/s"),
      "Grafana GET": () => rest("/apis/secret.grafana.app/v1beta1/namespaces/o/securevalues/s"),
    };
  };

  it("answers Unavailable / 503 within 2.5 s while paused, then serves again once resumed", async () => {
    const c = calls();
    const checks: [string, () => Promise<string>, string, string][] = [
      ["GetSecret (grpc-js)", c["GetSecret (grpc-js)"], "ok", "UNAVAILABLE"],
      ["DecryptSecrets (connect gRPC)", c["DecryptSecrets (connect gRPC)"], "ok", "Unavailable"],
      ["Sensu GET", c["Sensu GET"], "200", "503"],
      ["Grafana GET", c["Grafana GET"], "200", "503"],
    ];
    try {
      for (const [name, call, ok] of checks) expect(await call(), name).toBe(ok);
      // Past the authenticator's 1 s cache, so the token lookup meets the stall too.
      clock.advance(1000);
      pause();
      for (const [name, call, , failed] of checks) {
        const started = Date.now();
        const outcome = await call();
        const ms = Date.now() - started;
        expect({ name, outcome }).toEqual({ name, outcome: failed });
        expect(ms, `${name} took ${ms} ms`).toBeLessThan(failFastMs);
      }
      // A caller's own shorter deadline wins over the database timeout.
      const started = Date.now();
      expect(await c.getSecret(300)).toBe("DEADLINE_EXCEEDED");
      expect(Date.now() - started).toBeLessThan(1000);

      resume();
      // The driver dropped the connections that timed out; fresh ones serve at once.
      for (const [name, call, ok] of checks) {
        await eventually(async () => (await call()) === ok, 15_000).catch(() => {
          throw new Error(`${name} did not recover after SIGCONT`);
        });
      }
      await eventually(async () => (await fetch(`${seald?.url}/readyz`)).status === 200, 15_000);
    } finally {
      resume();
      c.grpcJs.close();
    }
  }, 90_000);
});
