import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";
import {
  Health,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { Seald } from "../../src/app.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "../../src/store/embedded.js";
import { grpcClient, serverStream } from "../harness/grpc.js";
import { eventually, startTestSeald, tempDir } from "../harness/seald.js";

describe("readiness follows the database", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });

  it("turns not-ready when the database stops and ready again when it returns, without a restart", async () => {
    const dir = tempDir("seald-readiness-db-");
    let db: EmbeddedDatabase = await startEmbeddedDatabase({ dir });
    cleanup.push(() => db.stop());
    const port = new URL(db.uri).port;
    const seald: Seald = await startTestSeald({ mongodbUri: db.uri });
    cleanup.push(() => seald.close());

    const health = createClient(
      Health,
      createConnectTransport({ baseUrl: seald.url, httpVersion: "1.1" }),
    );
    const readyz = async () => (await fetch(`${seald.url}/readyz`)).status;
    expect(await readyz()).toBe(200);
    expect((await health.check({})).status).toBe(Status.SERVING);

    // Watch over gRPC from before the outage to after it.
    const watcher = grpcClient(Health, seald.address);
    cleanup.push(async () => watcher.close());
    const seen: Status[] = [];
    const call = serverStream<HealthCheckResponse>(watcher, "watch", {
      service: "secrets.v1.SecretsService",
    });
    call.on("data", (m: HealthCheckResponse) => seen.push(m.status));
    call.on("error", () => {});
    cleanup.push(async () => call.cancel());
    await eventually(() => seen.includes(Status.SERVING));

    await db.stop();
    const stoppedAt = Date.now();
    await eventually(async () => (await readyz()) === 503, 10_000);
    // Fails fast: well within the driver's bounded server selection, not a 30 s hang.
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    expect((await fetch(`${seald.url}/healthz`)).status).toBe(200);
    expect((await health.check({})).status).toBe(Status.NOT_SERVING);
    await eventually(() => seen.at(-1) === Status.NOT_SERVING);

    db = await startEmbeddedDatabase({ dir, listen: `127.0.0.1:${port}` });
    await eventually(async () => (await readyz()) === 200, 20_000);
    expect((await health.check({})).status).toBe(Status.SERVING);
    await eventually(() => seen.at(-1) === Status.SERVING);
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING, Status.SERVING]);
  });

  it("waits for a database that is down at start-up instead of failing, then becomes ready", async () => {
    // Find a free port by starting and stopping a database on it.
    const dir = tempDir("seald-late-db-");
    const probe = await startEmbeddedDatabase({ dir });
    const port = new URL(probe.uri).port;
    await probe.stop();

    const { startSeald } = await import("../../src/app.js");
    const { testConfig, silentLogger } = await import("../harness/seald.js");
    const seald = await startSeald(
      testConfig({ mongodbUri: `mongodb://127.0.0.1:${port}/?directConnection=true` }),
      silentLogger(),
    );
    cleanup.push(() => seald.close());
    expect((await fetch(`${seald.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${seald.url}/healthz`)).status).toBe(200);

    const db = await startEmbeddedDatabase({ dir, listen: `127.0.0.1:${port}` });
    cleanup.push(() => db.stop());
    expect(await seald.databaseStarted).toBe(true);
    await eventually(async () => (await fetch(`${seald.url}/readyz`)).status === 200, 20_000);
  });
});
