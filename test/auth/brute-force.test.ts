/**
 * Brute-force limits under concurrency, over real sockets from distinct loopback addresses:
 * wrong tokens sent all at once are cut at the limit instead of all being tried, requests with no
 * credential are limited per address, a burst with one good token is not refused, and failures
 * are audited as one record per kind per address and window with a count, not one per request.
 */
import * as http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { AuditService } from "../../gen/secrets/v1/audit_service_pb.js";
import type { Seald } from "../../src/app.js";
import { repeatedFailuresAction } from "../../src/auth/failure-audit.js";
import { sensuPrefix } from "../../src/rest/sensu/routes.js";
import { client } from "../harness/clients.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";

/** One GET of the Sensu providers from `from` (a loopback address), its status. */
function get(seald: Seald, from: string, authorization?: string): Promise<number> {
  const url = new URL(`${seald.url}${sensuPrefix}/providers`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        localAddress: from,
        agent: false,
        headers: authorization ? { authorization } : {},
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

describe("brute-force limits", () => {
  let seald: Seald;
  const audit = () => client(AuditService, seald.url, adminToken);
  const unauthenticatedFrom = async (address: string) =>
    (await audit().listAuditEvents({ outcome: "unauthenticated", pageSize: 1000 })).events.filter(
      (e) => e.remoteAddress === address,
    );

  beforeAll(async () => {
    seald = await startTestSeald({
      database: uniqueDatabase("brute"),
      authMaxFailures: 5,
      authMaxAnonymous: 20,
    });
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("tries at most the limit of wrong tokens sent at once, refusing the rest at once", async () => {
    const statuses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        get(seald, "127.0.0.11", `Key seald_${String(i).padStart(43, "w")}`),
      ),
    );
    expect(count(statuses, 401)).toBeLessThanOrEqual(5);
    expect(count(statuses, 401)).toBeGreaterThan(0);
    expect(count(statuses, 429)).toBe(100 - count(statuses, 401));
    // Refused for the window now, a good token included; another address is not affected.
    expect(await get(seald, "127.0.0.11", `Key ${adminToken}`)).toBe(429);
    expect(await get(seald, "127.0.0.12", `Key ${adminToken}`)).toBe(200);
    // The tried failures are one audit record (the first), not one each.
    expect((await unauthenticatedFrom("127.0.0.11")).length).toBe(1);
  });

  it("limits requests without credentials per address, and audits them as one record", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push(await get(seald, "127.0.0.13"));
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(statuses.slice(20)).toEqual(Array(40).fill(429));
    const records = await unauthenticatedFrom("127.0.0.13");
    expect(records.length).toBe(1);
    expect(records[0]?.reason).toBe("missing or unsupported credentials");
    // Credentials still work from that address: it was refused only its anonymous requests.
    expect(await get(seald, "127.0.0.13", `Key ${adminToken}`)).toBe(200);
  });

  it("does not refuse a burst of concurrent calls with one good token", async () => {
    const access = client(AccessService, seald.url, adminToken);
    await access.createPrincipal({ principal: { name: "bursty", kind: PrincipalKind.USER } });
    const token = (await access.createToken({ principal: "bursty" })).secret;
    const statuses = await Promise.all(
      Array.from({ length: 50 }, () => get(seald, "127.0.0.14", `Key ${token}`)),
    );
    expect(statuses).toEqual(Array(50).fill(200));
  });

  it("writes the repeats' count when the window is written out", async () => {
    // close() writes out every count not yet written; a new server reads the trail back.
    const database = uniqueDatabase("brute_flush");
    const first = await startTestSeald({ database, authMaxAnonymous: 1000 });
    for (let i = 0; i < 30; i++) await get(first, "127.0.0.15");
    await first.close();
    const second = await startTestSeald({ database });
    try {
      const events = (
        await client(AuditService, second.url, adminToken).listAuditEvents({
          outcome: "unauthenticated",
          pageSize: 100,
        })
      ).events.filter((e) => e.remoteAddress === "127.0.0.15");
      expect(events.map((e) => e.action).sort()).toEqual(
        ["sensu:GET /providers", repeatedFailuresAction].sort(),
      );
      const repeats = events.find((e) => e.action === repeatedFailuresAction);
      expect(repeats?.reason).toMatch(
        /^29 more failed authentications \(missing or unsupported credentials\)/,
      );
    } finally {
      await second.close();
    }
  });
});
