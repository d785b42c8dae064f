/**
 * The Sensu dialect under refusal and fault: 429 with Retry-After once an address keeps failing,
 * 500 for a damaged stored record (its problem in the log, only its name in the body), and Sensu's
 * /health while the database does not answer.
 */
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Seald, startSeald } from "../../src/app.js";
import { createLogger } from "../../src/log.js";
import { sensuPrefix } from "../../src/rest/sensu/routes.js";
import { collections } from "../../src/store/schema.js";
import { adminToken, mongoUri, testConfig, uniqueDatabase } from "../harness/seald.js";

describe("Sensu routes under refusal and fault", () => {
  const database = uniqueDatabase("sensu_faults");
  const logLines: string[] = [];
  let seald: Seald;
  let mongo: MongoClient;

  const get = (path: string, auth: string) =>
    fetch(`${seald.url}${sensuPrefix}${path}`, { headers: { Authorization: auth } });

  beforeAll(async () => {
    seald = await startSeald(
      testConfig({ database, authMaxFailures: 3, logLevel: "error" }),
      createLogger("error", { write: (line: string) => logLines.push(line) }),
    );
    await seald.databaseStarted;
    mongo = await MongoClient.connect(mongoUri());
  });
  afterAll(async () => {
    await mongo?.close();
    await seald?.close();
  });

  it("answers 500 for a damaged record, naming only the secret, with the problem in the log", async () => {
    // A record no seald wrote: it does not have the stored shape.
    await mongo
      .db(database)
      .collection<{ _id: string }>(collections.secrets)
      .insertOne({ _id: "ops broken", namespace: "ops", name: "broken", labels: 5 } as never);
    const res = await get("/namespaces/ops/secrets/broken", `Key ${adminToken}`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe(
      '{"message":"the stored record of secret \\"broken\\" is damaged","code":0}',
    );
    const lines = logLines.map((l) => JSON.parse(l));
    const logged = lines.find((l) => l.msg === 'the stored record of secret "broken" is damaged');
    expect(logged?.problem).toBe("uid is not a string");
    expect(logged?.route).toBe("GET /namespaces/:namespace/secrets/:name");
    // The list that meets it leaves it out and says so in the log; nothing else is lost.
    const list = await get("/namespaces/ops/secrets", `Key ${adminToken}`);
    expect(list.status).toBe(200);
    expect(((await list.json()) as unknown[]).length).toBe(0);
    expect(
      logLines
        .map((l) => JSON.parse(l))
        .some((l) => l.msg === "left a damaged secret record out of a list"),
    ).toBe(true);
    expect((await get("/namespaces/other/secrets", `Key ${adminToken}`)).status).toBe(200);
  });

  it("refuses an address that keeps failing with 429 and Retry-After, good token included", async () => {
    const bad = `Key seald_${"x".repeat(43)}`;
    for (let i = 0; i < 3; i++) expect((await get("/providers", bad)).status).toBe(401);
    for (const auth of [bad, `Key ${adminToken}`, `Bearer ${adminToken}`]) {
      const res = await get("/providers", auth);
      expect(res.status).toBe(429);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await res.json()).toEqual({
        message: "too many failed authentication attempts",
        code: 5,
      });
    }
  });
});

describe("Sensu's /health while the database does not answer", () => {
  let seald: Seald;

  beforeAll(async () => {
    // Nothing listens on port 1: the server runs, the database never answers.
    seald = await startSeald(
      testConfig({
        database: uniqueDatabase("sensu_health"),
        mongodbUri: "mongodb://127.0.0.1:1/",
      }),
      createLogger("silent"),
    );
    seald.databaseStarted.catch(() => {});
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("still answers 200, as Sensu does, with the database member unhealthy; /readyz is 503", async () => {
    const res = await fetch(`${seald.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      Alarms: null,
      ClusterHealth: [
        {
          MemberID: 0,
          MemberIDHex: "0",
          Name: "database",
          Err: "database unavailable",
          Healthy: false,
        },
      ],
      Header: { cluster_id: 0, member_id: 0, raft_term: 0 },
    });
    expect((await fetch(`${seald.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${seald.url}/version`)).status).toBe(200);
  });
});
