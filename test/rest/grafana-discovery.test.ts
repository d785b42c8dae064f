/**
 * Kubernetes discovery in the Grafana dialect, over real HTTP against a real server: /api, /apis
 * (legacy and aggregated, by Accept), the group, its version, /version, the Status 404 of every
 * unknown path under /api and /apis, and Grafana's 401 before any of it.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import type { Seald } from "../../src/app.js";
import { client } from "../harness/clients.js";
import { adminToken, root, startTestSeald, uniqueDatabase } from "../harness/seald.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field.
type Json = any;

const v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const v2beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
/** What client-go's discovery client (kubectl 1.30+) sends: aggregated first, then legacy. */
const clientGoAccept = `${v2},application/json`;
const json = "application/json; charset=UTF-8";
const group = "secret.grafana.app";
const groupVersion = { groupVersion: `${group}/v1beta1`, version: "v1beta1" };
const verbs = ["create", "delete", "get", "list", "update"];
const sealdVersion = JSON.parse(readFileSync(`${root}/package.json`, "utf8")).version;
const notFound = {
  kind: "Status",
  apiVersion: "v1",
  metadata: {},
  status: "Failure",
  message: "the server could not find the requested resource",
  reason: "NotFound",
  details: {},
  code: 404,
};

describe("Grafana dialect: Kubernetes discovery", () => {
  let seald: Seald;
  /** A user with no role anywhere: discovery needs authentication, not authorisation. */
  let nobody = "";

  async function get(
    path: string,
    options: { accept?: string; token?: string | null; method?: string } = {},
  ) {
    const headers: Record<string, string> = {};
    if (options.accept !== undefined) headers.accept = options.accept;
    const token = options.token === undefined ? nobody : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${seald.url}${path}`, { method: options.method ?? "GET", headers });
    const text = await res.text();
    return {
      status: res.status,
      type: res.headers.get("content-type"),
      vary: res.headers.get("vary"),
      text,
      body: JSON.parse(text) as Json,
    };
  }

  beforeAll(async () => {
    seald = await startTestSeald({ database: uniqueDatabase("grafana-discovery") });
    const admin = client(AccessService, seald.url, adminToken);
    await admin.createPrincipal({ principal: { name: "nobody", kind: PrincipalKind.USER } });
    nobody = (await admin.createToken({ principal: "nobody" })).secret;
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("answers /api with APIVersions listing no versions (seald serves no core group)", async () => {
    for (const accept of [undefined, "application/json", "*/*"]) {
      const reply = await get("/api", accept === undefined ? {} : { accept });
      expect(reply.status, reply.text).toBe(200);
      expect(reply.type).toBe(json);
      expect(reply.vary).toBe("Accept");
      expect(reply.body).toEqual({
        kind: "APIVersions",
        versions: [],
        serverAddressByClientCIDRs: [],
      });
    }
  });

  it("answers /apis with an APIGroupList holding secret.grafana.app, v1beta1 preferred", async () => {
    const reply = await get("/apis", { accept: "application/json" });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.type).toBe(json);
    expect(reply.vary).toBe("Accept");
    expect(reply.body).toEqual({
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: [{ name: group, versions: [groupVersion], preferredVersion: groupVersion }],
    });
    // Kubernetes serves the roots with a trailing slash as well.
    expect((await get("/apis/", { accept: "application/json" })).body).toEqual(reply.body);
  });

  it("answers the aggregated form to client-go's Accept, for /api and /apis alike", async () => {
    // client-go keeps the aggregated resources only when both roots answer aggregated.
    const api = await get("/api", { accept: clientGoAccept });
    expect(api.status, api.text).toBe(200);
    expect(api.type).toBe(v2);
    expect(api.vary).toBe("Accept");
    expect(api.body).toEqual({
      kind: "APIGroupDiscoveryList",
      apiVersion: "apidiscovery.k8s.io/v2",
      metadata: {},
      items: [],
    });

    const apis = await get("/apis", { accept: clientGoAccept });
    expect(apis.status, apis.text).toBe(200);
    expect(apis.type).toBe(v2);
    expect(apis.body).toEqual({
      kind: "APIGroupDiscoveryList",
      apiVersion: "apidiscovery.k8s.io/v2",
      metadata: {},
      items: [
        {
          metadata: { name: group, creationTimestamp: null },
          versions: [
            {
              version: "v1beta1",
              resources: [
                {
                  resource: "securevalues",
                  responseKind: { group, version: "v1beta1", kind: "SecureValue" },
                  scope: "Namespaced",
                  singularResource: "securevalue",
                  verbs,
                },
              ],
              freshness: "Current",
            },
          ],
        },
      ],
    });
  });

  it("negotiates the aggregated version and falls back to the legacy form", async () => {
    // Older clients (kubectl 1.26-1.29) ask for v2beta1 first.
    const beta = await get("/apis", { accept: `${v2beta1},application/json` });
    expect(beta.type).toBe(v2beta1);
    expect(beta.body.apiVersion).toBe("apidiscovery.k8s.io/v2beta1");
    expect(beta.body.items[0].versions[0].resources[0].verbs).toEqual(verbs);
    // Parameters in another order, spaces after the semicolons: still the aggregated form.
    const reordered = await get("/api", {
      accept: "application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io",
    });
    expect(reordered.type).toBe(v2);
    // Preference order and q-values decide, as in Kubernetes' negotiation.
    expect((await get("/apis", { accept: `application/json,${v2}` })).type).toBe(json);
    expect((await get("/apis", { accept: `application/json;q=0.5,${v2}` })).type).toBe(v2);
    expect((await get("/apis", { accept: `${v2};q=0,application/json` })).type).toBe(json);
    // An aggregated version seald does not serve, another kind, protobuf only: legacy JSON.
    for (const accept of [
      "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList",
      "application/json;g=meta.k8s.io;v=v1;as=Table",
      "application/vnd.kubernetes.protobuf",
    ]) {
      const reply = await get("/apis", { accept });
      expect(reply.type, accept).toBe(json);
      expect(reply.body.kind, accept).toBe("APIGroupList");
    }
  });

  it("answers the group and its version, listing exactly the verbs the router serves", async () => {
    const g = await get("/apis/secret.grafana.app");
    expect(g.status, g.text).toBe(200);
    expect(g.body).toEqual({
      kind: "APIGroup",
      apiVersion: "v1",
      name: group,
      versions: [groupVersion],
      preferredVersion: groupVersion,
    });
    const v = await get("/apis/secret.grafana.app/v1beta1");
    expect(v.status, v.text).toBe(200);
    expect(v.type).toBe(json);
    expect(v.body).toEqual({
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: `${group}/v1beta1`,
      resources: [
        {
          name: "securevalues",
          singularName: "securevalue",
          namespaced: true,
          kind: "SecureValue",
          verbs,
        },
      ],
    });
    // What is left out is really not served: PATCH is 405, and so is watch.
    const item = "/apis/secret.grafana.app/v1beta1/namespaces/team-a/securevalues/x";
    expect((await get(item, { method: "PATCH", token: adminToken })).status).toBe(405);
    expect(
      (await get(`${item.replace(/\/x$/, "")}?watch=true`, { token: adminToken })).status,
    ).toBe(405);
  });

  it("answers /version with version.Info that kubectl version can read, Sensu's fields beside it", async () => {
    // Public, as Sensu's /version is: one body serves kubectl and sensuctl (src/rest/version.ts).
    const res = await fetch(`${seald.url}/version`);
    const reply = {
      status: res.status,
      type: res.headers.get("content-type"),
      body: (await res.json()) as Record<string, string>,
    };
    expect(reply.status).toBe(200);
    expect(reply.type).toMatch(/^application\/json/);
    const info = reply.body;
    expect(Object.keys(info).sort()).toEqual(
      [
        "buildDate",
        "compiler",
        "gitCommit",
        "gitTreeState",
        "gitVersion",
        "goVersion",
        "major",
        "minor",
        "platform",
        "etcd",
        "sensu_backend",
        "seald",
      ].sort(),
    );
    expect(info.major).toBe("1");
    expect(info.minor).toMatch(/^\d+$/);
    // A semantic version whose major and minor match, seald's own version as build metadata.
    expect(info.gitVersion).toBe(`v1.${info.minor}.0+seald.${sealdVersion}`);
    expect(Number(info.minor)).toBeGreaterThanOrEqual(30);
  });

  it("answers every unknown path under /api and /apis with a Kubernetes Status 404", async () => {
    for (const path of [
      "/api/v1",
      "/api/v1/namespaces",
      "/api/v1/namespaces/team-a/secrets",
      "/apis/apps",
      "/apis/apps/v1",
      "/apis/secret.grafana.app/v1",
      "/apis/secret.grafana.app/v0alpha1/namespaces/team-a/securevalues",
      "/apis/secret.grafana.app/v1beta1/keepers",
    ]) {
      for (const method of ["GET", "POST", "DELETE"]) {
        const reply = await get(path, { method });
        expect(reply.status, `${method} ${path}`).toBe(404);
        expect(reply.type, path).toBe(json);
        expect(reply.body, path).toEqual(notFound);
      }
    }
  });

  it("answers GET /api/v1/namespaces/:name Forbidden, so kubectl keeps an object's NotFound", async () => {
    const reply = await get("/api/v1/namespaces/team-a");
    expect(reply.status, reply.text).toBe(403);
    expect(reply.body).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        'namespaces "team-a" is forbidden: User "nobody" cannot get resource "namespaces" in API group "" in the namespace "team-a"',
      reason: "Forbidden",
      details: { name: "team-a", kind: "namespaces" },
      code: 403,
    });
    expect((await get("/api/v1/namespaces")).status).toBe(404);
    expect((await get("/api/v1/namespaces/team-a", { method: "DELETE" })).status).toBe(405);
  });

  it("answers discovery routes only to GET", async () => {
    for (const path of ["/api", "/apis"]) {
      const reply = await get(path, { method: "POST" });
      expect(reply.status, path).toBe(405);
      expect(reply.body).toMatchObject({ kind: "Status", reason: "MethodNotAllowed", code: 405 });
    }
  });

  it("leaves Sensu's /api/enterprise/secrets/v1 to the Sensu dialect", async () => {
    const res = await fetch(`${seald.url}/api/enterprise/secrets/v1/providers`, {
      headers: { authorization: `Key ${adminToken}` },
    });
    expect(res.status).toBe(200);
    const providers = (await res.json()) as Json[];
    expect(providers.map((p) => p.metadata.name)).toContain("env");
  });

  it("authenticates first: Grafana's 401 on discovery and on unknown paths", async () => {
    const unauthorized = {
      message: "Unauthorized",
      messageId: "auth.unauthorized",
      statusCode: 401,
      traceID: "",
    };
    for (const path of [
      "/api",
      "/apis",
      "/apis/secret.grafana.app",
      "/apis/secret.grafana.app/v1beta1",
      "/api/v1",
      "/api/v1/namespaces/team-a",
      "/apis/apps/v1",
    ]) {
      for (const token of [null, "seald_not-a-real-token-000000000000000000000"]) {
        const reply = await get(path, { token, accept: clientGoAccept });
        expect(reply.status, `${path} ${token}`).toBe(401);
        expect(reply.body).toEqual(unauthorized);
      }
    }
  });
});
