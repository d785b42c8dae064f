/**
 * The Grafana seed document's examples, verbatim: each request is sent as written (only the
 * Authorization token is one this server issued) and must get the documented status and a body
 * of the documented shape, server-generated uid, timestamps and resource versions aside.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { client } from "../harness/clients.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";

// The examples as the seed document shows them.
const createRequest = `POST /apis/secret.grafana.app/v1beta1/namespaces/default/securevalues HTTP/1.1
Accept: application/json
Content-Type: application/json
Authorization: Bearer eyJrIjoiT0tTcG1pUlY2RnVKZTFVaDFsNFZXdE9ZWmNrMkZYbk

{
  "metadata": {
    "name": "api-key"
  },
  "spec": {
    "description": "External API Key",
    "value": "secret-api-key-12345",
    "decrypters": ["synthetic-monitoring"]
  }
}`;
const createResponse = `HTTP/1.1 201 Created
Content-Type: application/json; charset=UTF-8
Content-Length: 343

{
  "apiVersion": "secret.grafana.app/v1beta1",
  "kind": "SecureValue",
  "metadata": {
    "name": "api-key",
    "namespace": "default",
    "uid": "f1e2d3c4-b5a6-7890-abcd-ef1234567890",
    "creationTimestamp": "2024-01-15T10:35:00Z"
  },
  "spec": {
    "description": "External API Key",
    "decrypters": ["synthetic-monitoring"]
  },
  "status": {}
}`;
const listRequest = `GET /apis/secret.grafana.app/v1beta1/namespaces/default/securevalues HTTP/1.1
Accept: application/json
Content-Type: application/json
Authorization: Bearer eyJrIjoiT0tTcG1pUlY2RnVKZTFVaDFsNFZXdE9ZWmNrMkZYbk`;
const listResponse = `HTTP/1.1 200 OK
Content-Type: application/json; charset=UTF-8
Content-Length: 383

{
  "apiVersion": "secret.grafana.app/v1beta1",
  "kind": "SecureValueList",
  "metadata": {
    "resourceVersion": "12345"
  },
  "items": [
    {
      "apiVersion": "secret.grafana.app/v1beta1",
      "kind": "SecureValue",
      "metadata": {
        "name": "database-password",
        "namespace": "default",
        "creationTimestamp": "2024-01-15T10:30:00Z"
      },
      "spec": {
        "description": "Production DB Password",
        "decrypters": ["synthetic-monitoring"]
      },
      "status": {}
    }
  ]
}`;
const getRequest = `GET /apis/secret.grafana.app/v1beta1/namespaces/default/securevalues/api-key HTTP/1.1
Accept: application/json
Content-Type: application/json
Authorization: Bearer eyJrIjoiT0tTcG1pUlY2RnVKZTFVaDFsNFZXdE9ZWmNrMkZYbk`;
const getResponse = `HTTP/1.1 200 OK
Content-Type: application/json; charset=UTF-8
Content-Length: 294

{
  "apiVersion": "secret.grafana.app/v1beta1",
  "kind": "SecureValue",
  "metadata": {
    "name": "api-key",
    "namespace": "default",
    "uid": "f1e2d3c4-b5a6-7890-abcd-ef1234567890",
    "creationTimestamp": "2024-01-15T10:35:00Z"
  },
  "spec": {
    "description": "External API Key",
    "decrypters": ["synthetic-monitoring"]
  },
  "status": {}
}`;
const updateRequest = `PUT /apis/secret.grafana.app/v1beta1/namespaces/default/securevalues/api-key HTTP/1.1
Accept: application/json
Content-Type: application/json
Authorization: Bearer eyJrIjoiT0tTcG1pUlY2RnVKZTFVaDFsNFZXdE9ZWmNrMkZYbk

{
  "metadata": {
    "name": "api-key"
  },
  "spec": {
    "description": "External API Key",
    "value": "new-value-12345",
    "decrypters": ["synthetic-monitoring"]
  }
}`;
const updateResponse = `HTTP/1.1 200 OK
Content-Type: application/json; charset=UTF-8
Content-Length: 282

{
  "apiVersion": "secret.grafana.app/v1beta1",
  "kind": "SecureValue",
  "metadata": {
    "name": "api-key",
    "namespace": "default",
    "uid": "f1e2d3c4-b5a6-7890-abcd-ef1234567890",
    "creationTimestamp": "2024-01-15T10:35:00Z"
  },
  "spec": {
    "description": "External API Key",
    "decrypters": ["synthetic-monitoring"]
  }
}`;
const deleteRequest = `DELETE /apis/secret.grafana.app/v1beta1/namespaces/default/securevalues/api-key HTTP/1.1
Accept: application/json
Content-Type: application/json
Authorization: Bearer eyJrIjoiT0tTcG1pUlY2RnVKZTFVaDFsNFZXdE9ZWmNrMkZYbk`;
const deleteResponse = `HTTP/1.1 200 OK
Content-Type: application/json; charset=UTF-8
Content-Length: 65

{
  "apiVersion": "v1",
  "kind": "Status",
  "status": "Success",
  "code": 200
}`;

const seedPlaintexts = ["secret-api-key-12345", "new-value-12345"];
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const rfc3339Utc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

interface HttpMessage {
  readonly startLine: string;
  readonly headers: [string, string][];
  readonly body: string;
}

/** Splits an HTTP message as the document writes it. */
function parseMessage(text: string): HttpMessage {
  const blank = text.indexOf("\n\n");
  const head = blank < 0 ? text : text.slice(0, blank);
  const [startLine = "", ...lines] = head.split("\n");
  const headers = lines.map((l): [string, string] => {
    const colon = l.indexOf(":");
    return [l.slice(0, colon), l.slice(colon + 1).trim()];
  });
  return { startLine, headers, body: blank < 0 ? "" : text.slice(blank + 2) };
}

/** The documented response with the server-generated values replaced by matchers. */
function expectedShape(body: unknown): unknown {
  if (Array.isArray(body)) return body.map(expectedShape);
  if (body === null || typeof body !== "object") return body;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (k === "uid") out[k] = expect.stringMatching(uuid);
    else if (k === "creationTimestamp") out[k] = expect.stringMatching(rfc3339Utc);
    else if (k === "resourceVersion") out[k] = expect.stringMatching(/^\S+$/);
    else out[k] = expectedShape(v);
  }
  return out;
}

describe("the Grafana seed document's examples", () => {
  let seald: Seald;
  let editorToken = "";
  let smToken = "";
  const bodies: string[] = [];

  /** Sends a documented request verbatim, with the token replaced when one is given. */
  async function send(request: string, token?: string) {
    const m = parseMessage(request);
    const [method = "", path = ""] = m.startLine.split(" ");
    const headers = new Headers();
    for (const [name, value] of m.headers) {
      headers.set(name, name === "Authorization" && token ? `Bearer ${token}` : value);
    }
    const res = await fetch(`${seald.url}${path}`, {
      method,
      headers,
      ...(m.body === "" ? {} : { body: m.body }),
    });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, contentType: res.headers.get("content-type"), text };
  }

  /** Sends the request and checks status, content type and body shape against the document. */
  async function expectDocumented(request: string, response: string) {
    const documented = parseMessage(response);
    const status = Number(documented.startLine.split(" ")[1]);
    const got = await send(request, editorToken);
    expect(got.status, got.text).toBe(status);
    const contentType = documented.headers.find(([n]) => n === "Content-Type")?.[1];
    expect(got.contentType).toBe(contentType);
    const body = JSON.parse(got.text);
    expect(body).toMatchObject(expectedShape(JSON.parse(documented.body)) as object);
    return body;
  }

  beforeAll(async () => {
    seald = await startTestSeald({ database: uniqueDatabase("grafana_seed") });
    const admin = client(AccessService, seald.url, adminToken);
    await admin.createPrincipal({
      principal: { name: "grafana-editor", kind: PrincipalKind.USER },
    });
    await admin.grantRole({
      binding: { principal: "grafana-editor", role: "editor", namespace: "default" },
    });
    editorToken = (await admin.createToken({ principal: "grafana-editor" })).secret;
    await admin.createPrincipal({
      principal: { name: "synthetic-monitoring", kind: PrincipalKind.SERVICE_ACCOUNT },
    });
    await admin.grantRole({
      binding: { principal: "synthetic-monitoring", role: "decrypter", namespace: "default" },
    });
    smToken = (await admin.createToken({ principal: "synthetic-monitoring" })).secret;
  });
  afterAll(async () => {
    await seald?.close();
  });

  const decrypt = async (name: string) => {
    const res = await client(SecretsService, seald.url, smToken).decryptSecrets({
      namespace: "default",
      names: [name],
    });
    return res.results[name];
  };

  it("answers the documented requests with their literal token 401 in Grafana's shape", async () => {
    for (const request of [createRequest, listRequest, getRequest, updateRequest, deleteRequest]) {
      const got = await send(request);
      expect(got.status).toBe(401);
      expect(JSON.parse(got.text)).toEqual({
        message: "Unauthorized",
        messageId: "auth.unauthorized",
        statusCode: 401,
        traceID: "",
      });
    }
    // The refused create stored nothing.
    expect((await send(getRequest, editorToken)).status).toBe(404);
  });

  it("lists as documented", async () => {
    // The list example shows one secure value; create it first, through the API.
    const value = `db-${Math.random()}`;
    seedPlaintexts.push(value);
    const res = await fetch(
      `${seald.url}/apis/secret.grafana.app/v1beta1/namespaces/default/securevalues`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${editorToken}`, "content-type": "application/json" },
        body: JSON.stringify({
          metadata: { name: "database-password" },
          spec: {
            description: "Production DB Password",
            value,
            decrypters: ["synthetic-monitoring"],
          },
        }),
      },
    );
    bodies.push(await res.text());
    expect(res.status).toBe(201);
    const list = await expectDocumented(listRequest, listResponse);
    expect(list.items).toHaveLength(1);
  });

  it("creates, gets, updates and deletes as documented", async () => {
    const created = await expectDocumented(createRequest, createResponse);
    expect(created.status).toEqual({ version: 1, keeper: "system" });
    expect((await decrypt("api-key"))?.result).toEqual({
      case: "value",
      value: "secret-api-key-12345",
    });

    const got = await expectDocumented(getRequest, getResponse);
    expect(got.metadata.uid).toBe(created.metadata.uid);
    expect(got.metadata.creationTimestamp).toBe(created.metadata.creationTimestamp);

    const updated = await expectDocumented(updateRequest, updateResponse);
    expect(updated.metadata.uid).toBe(created.metadata.uid);
    expect(updated.metadata.creationTimestamp).toBe(created.metadata.creationTimestamp);
    expect(updated.metadata.resourceVersion).not.toBe(created.metadata.resourceVersion);
    expect(updated.status.version).toBe(2);
    expect((await decrypt("api-key"))?.result).toEqual({ case: "value", value: "new-value-12345" });

    const deleted = await expectDocumented(deleteRequest, deleteResponse);
    expect(deleted).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      details: { name: "api-key", kind: "SecureValue" },
      code: 200,
    });
    const gone = await send(getRequest, editorToken);
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.text)).toMatchObject({
      kind: "Status",
      reason: "NotFound",
      message: 'securevalues.secret.grafana.app "api-key" not found',
      code: 404,
    });
    // The decrypter may not read the namespace: a deleted name answers as one it may not decrypt.
    expect((await decrypt("api-key"))?.result).toEqual({ case: "error", value: "not authorized" });
  });

  it("never returned a value in any response", () => {
    expect(bodies.length).toBeGreaterThan(10);
    for (const body of bodies) {
      for (const plaintext of seedPlaintexts) expect(body).not.toContain(plaintext);
      expect(body).not.toContain('"value"');
    }
  });
});
