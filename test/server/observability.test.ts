import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { type Seald, startSeald } from "../../src/app.js";
import { createLogger } from "../../src/log.js";
import { client } from "../harness/clients.js";
import { adminToken, eventually, testConfig } from "../harness/seald.js";

describe("request logs and metrics", () => {
  let seald: Seald;
  const lines: Record<string, unknown>[] = [];
  const secretName = "payroll-db-password";
  const value = "correct-horse-battery-staple";

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString("utf8").split("\n")) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    seald = await startSeald(testConfig(), createLogger("debug", sink));
    await seald.databaseStarted;
    const admin = client(SecretsService, seald.url, adminToken);
    await admin.createSecret({
      secret: { namespace: "obs", name: secretName, value: { kind: { case: "plaintext", value } } },
    });
    await admin.getSecret({ namespace: "obs", name: "missing" }).catch(() => {});
    await client(SecretsService, seald.url, `seald_${"q".repeat(43)}`, "connect-json")
      .getSecret({ namespace: "obs", name: secretName })
      .catch(() => {});
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("writes one line per request with request id, principal, route, outcome and duration", async () => {
    const res = await fetch(`${seald.url}/secrets.v1.SecretsService/GetSecret`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${adminToken}`,
        "x-request-id": "trace-abc-123",
      },
      body: JSON.stringify({ namespace: "obs", name: secretName }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("trace-abc-123");
    // The line is written when the response finishes, which may come after fetch has it.
    await eventually(() => lines.some((l) => l.requestId === "trace-abc-123"));
    const line = lines.find((l) => l.requestId === "trace-abc-123");
    expect(line).toMatchObject({
      msg: "request",
      principal: "admin",
      protocol: "connect",
      route: "/secrets.v1.SecretsService/GetSecret",
      outcome: "ok",
      status: 200,
    });
    expect(typeof line?.durationMs).toBe("number");
    const created = lines.find((l) => l.route === "/secrets.v1.SecretsService/CreateSecret");
    expect(created).toMatchObject({ protocol: "grpc", outcome: "ok", principal: "admin" });
    expect(lines.find((l) => l.outcome === "NotFound")).toMatchObject({
      route: "/secrets.v1.SecretsService/GetSecret",
    });
    const denied = lines.find((l) => l.outcome === "Unauthenticated");
    expect(denied).toMatchObject({ protocol: "connect", status: 401 });
    expect(denied?.principal).toBeUndefined();
    // A generated id when the client sends none (or an unusable one).
    const other = await fetch(`${seald.url}/healthz`, {
      headers: { "x-request-id": "bad id with spaces" },
    });
    expect(other.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("never logs a value, a token or a credential", () => {
    const text = JSON.stringify(lines);
    expect(text).not.toContain(value);
    expect(text).not.toContain(adminToken);
    expect(text).not.toContain("q".repeat(43));
  });

  it("exports request, crypto, decrypt, database and process metrics without names or values in labels", async () => {
    const res = await fetch(`${seald.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(
      /seald_requests_total\{protocol="grpc",route="\/secrets\.v1\.SecretsService\/CreateSecret",outcome="ok"\} 1/,
    );
    expect(text).toMatch(
      /seald_requests_total\{protocol="grpc",route="\/secrets\.v1\.SecretsService\/GetSecret",outcome="NotFound"\} 1/,
    );
    expect(text).toMatch(
      /seald_request_duration_seconds_bucket\{.*route="\/secrets\.v1\.SecretsService\/CreateSecret"/,
    );
    expect(text).toMatch(/seald_crypto_operations_total\{operation="seal",outcome="ok"\} 1/);
    expect(text).toMatch(
      /seald_db_operation_duration_seconds_count\{command="insert",outcome="ok"\} \d+/,
    );
    expect(text).toMatch(/seald_process_cpu_seconds_total/);
    expect(text).toContain("seald_decrypts_total");
    for (const leak of [secretName, value, adminToken, "obs"]) expect(text).not.toContain(leak);
  });

  it("labels unknown paths as one route, so arbitrary URLs cannot grow the metrics", async () => {
    await fetch(`${seald.url}/secrets.v1.SecretsService/${secretName}`, { method: "POST" });
    const text = await (await fetch(`${seald.url}/metrics`)).text();
    expect(text).not.toContain(secretName);
    expect(text).toMatch(/route="unknown"/);
  });

  it("labels REST requests by their route template, never by the names in the path", async () => {
    const sensu = `/api/enterprise/secrets/v1/namespaces/obs-ns/secrets/${secretName}`;
    const grafana = `/apis/secret.grafana.app/v1beta1/namespaces/obs-ns/securevalues/${secretName}`;
    for (const path of [
      sensu,
      grafana,
      `/api/enterprise/secrets/v1/${secretName}/x/y`,
      "/apis",
      `/api/v1/namespaces/obs-ns/secrets/${secretName}`,
    ]) {
      await fetch(`${seald.url}${path}`, { headers: { authorization: `Bearer ${adminToken}` } });
    }
    const text = await (await fetch(`${seald.url}/metrics`)).text();
    expect(text).not.toContain(secretName);
    expect(text).not.toContain("obs-ns");
    expect(text).toContain(
      'route="GET /api/enterprise/secrets/v1/namespaces/:namespace/secrets/:name"',
    );
    expect(text).toContain(
      'route="GET /apis/secret.grafana.app/v1beta1/namespaces/:namespace/securevalues/:name"',
    );
    expect(text).toMatch(/protocol="sensu",route="GET unmatched"/);
    // Discovery is the Grafana dialect's, and so is every other path under /api/v1 and /apis.
    expect(text).toContain('protocol="grafana",route="GET /apis"');
    expect(text).toMatch(/protocol="grafana",route="GET unmatched"/);
  });

  it("labels an unknown path under /api/ as Sensu's and unmatched, in the log and the metrics", async () => {
    const path = `/api/core/v2/namespaces/obs-ns/checks/${secretName}`;
    const res = await fetch(`${seald.url}${path}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(res.status).toBe(404);
    const requestId = res.headers.get("x-request-id");
    const line = lines.find((l) => l.requestId === requestId && l.msg === "request");
    expect(line).toMatchObject({ protocol: "sensu", route: "DELETE unmatched", status: 404 });
    expect(JSON.stringify(line)).not.toContain(secretName);
    await fetch(`${seald.url}/health`);
    const text = await (await fetch(`${seald.url}/metrics`)).text();
    expect(text).toMatch(/protocol="sensu",route="DELETE unmatched",outcome="404"/);
    expect(text).toMatch(/protocol="sensu",route="GET \/health",outcome="200"/);
    expect(text).not.toContain(secretName);
    expect(text).not.toContain("obs-ns");
  });
});
