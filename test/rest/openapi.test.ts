/**
 * The OpenAPI documents of both REST dialects, against a real server over real HTTP: served
 * without authentication; every route the routers dispatch on is documented and every documented
 * operation is routed; and the answers of a realistic scenario per dialect (successes and each
 * error the code can give) have a documented status and validate against the documented schema.
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import type { Seald } from "../../src/app.js";
import { grafanaRouteTable } from "../../src/rest/grafana/routes.js";
import { sensuRouteTable } from "../../src/rest/sensu/routes.js";
import { client } from "../harness/clients.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";
import { secureValue } from "./securevalue.js";

// ajv-formats is CommonJS: its default export arrives wrapped under NodeNext.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

// biome-ignore lint/suspicious/noExplicitAny: OpenAPI documents are walked field by field.
type Json = any;
type Dialect = "sensu" | "grafana";

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

const sensu = "/api/enterprise/secrets/v1";
const grafana = "/apis/secret.grafana.app/v1beta1";
const methods = ["get", "put", "post", "delete", "patch", "head", "options"];

/** A router template (":param") as an OpenAPI path ("{param}"). */
const openapiTemplate = (path: string) => path.replace(/:([A-Za-z]+)/g, "{$1}");

describe("OpenAPI documents", () => {
  let seald: Seald;
  let nobodyToken = "";
  const docs = {} as Record<Dialect, Json>;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();

  async function call(
    method: string,
    path: string,
    options: { auth?: string; body?: unknown; raw?: string | Uint8Array } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (options.auth !== undefined) headers.authorization = options.auth;
    const payload =
      options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    if (payload !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${seald.url}${path}`, {
      method,
      headers,
      ...(payload === undefined ? {} : { body: payload }),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }

  /** The documented response for an answer, or a failed expectation naming what is missing. */
  function documented(dialect: Dialect, method: string, template: string, status: number): Json {
    const operation = docs[dialect].paths[template]?.[method.toLowerCase()];
    expect(operation, `${method} ${template} is documented`).toBeDefined();
    let response = operation.responses[String(status)];
    expect(response, `${method} ${template} documents status ${status}`).toBeDefined();
    if (response.$ref) {
      response = docs[dialect].components.responses[response.$ref.split("/").pop()];
    }
    return response;
  }

  /**
   * Expects the answer's status to be documented for the operation and its body to match the
   * documented content: JSON that validates against the schema, or no body at all.
   */
  function conforms(
    dialect: Dialect,
    method: string,
    template: string,
    reply: Reply,
    status: number,
  ): Json {
    expect(reply.status, reply.text).toBe(status);
    const response = documented(dialect, method, template, status);
    expect(reply.headers.get("x-request-id")).toBeTruthy();
    const schema = response.content?.["application/json"]?.schema;
    if (schema === undefined) {
      expect(reply.text).toBe("");
      return undefined;
    }
    expect(reply.headers.get("content-type")).toMatch(/^application\/json(;|$)/);
    const body = JSON.parse(reply.text);
    const key = `${dialect} ${method} ${template} ${status}`;
    let validate = validators.get(key);
    if (!validate) {
      validate = ajv.compile({ $ref: `${dialect}.json#${pointer(method, template, status)}` });
      validators.set(key, validate);
    }
    expect(validate(body), `${key}: ${ajv.errorsText(validate.errors)}\n${reply.text}`).toBe(true);
    for (const [name, header] of Object.entries<Json>(response.headers ?? {})) {
      const value = reply.headers.get(name);
      if (value !== null && header.schema?.pattern) {
        expect(value).toMatch(new RegExp(header.schema.pattern));
      }
    }
    return body;
  }

  /** The JSON pointer to a documented response's JSON schema inside its document. */
  function pointer(method: string, template: string, status: number): string {
    const esc = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");
    return `/paths/${esc(template)}/${method.toLowerCase()}/responses/${status}/content/${esc("application/json")}/schema`;
  }

  beforeAll(async () => {
    seald = await startTestSeald({ database: uniqueDatabase("openapi") });
    const admin = client(AccessService, seald.url, adminToken);
    await admin.createPrincipal({ principal: { name: "nobody", kind: PrincipalKind.USER } });
    nobodyToken = (await admin.createToken({ principal: "nobody" })).secret;
    for (const dialect of ["sensu", "grafana"] as const) {
      const res = await fetch(`${seald.url}/openapi/${dialect}.json`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json");
      docs[dialect] = await res.json();
      ajv.addSchema(docs[dialect], `${dialect}.json`);
    }
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("serves both documents without authentication, as OpenAPI 3.1, and only for GET and HEAD", async () => {
    for (const dialect of ["sensu", "grafana"] as const) {
      expect(docs[dialect].openapi).toBe("3.1.0");
      expect(docs[dialect].servers).toEqual([{ url: "/" }]);
      expect(Object.keys(docs[dialect].components.securitySchemes).length).toBeGreaterThan(0);
      expect((await call("HEAD", `/openapi/${dialect}.json`)).status).toBe(200);
      const post = await call("POST", `/openapi/${dialect}.json`);
      expect(post.status).toBe(405);
      expect(post.headers.get("allow")).toBe("GET, HEAD");
    }
    expect((await call("GET", "/openapi/other.json")).status).not.toBe(200);
  });

  it("documents exactly the operations each router dispatches on", () => {
    const tables = { sensu: sensuRouteTable, grafana: grafanaRouteTable };
    for (const dialect of ["sensu", "grafana"] as const) {
      const routed = tables[dialect].map((r) => `${r.method} ${openapiTemplate(r.path)}`).sort();
      const documentedOps = Object.entries<Json>(docs[dialect].paths)
        .flatMap(([path, item]) =>
          methods.filter((m) => item[m] !== undefined).map((m) => `${m.toUpperCase()} ${path}`),
        )
        .sort();
      expect(routed.length).toBeGreaterThan(3);
      expect(documentedOps).toEqual(routed);
    }
  });

  /** Fills a template's parameters with names that exist nowhere. */
  const probePath = (template: string) => template.replace(/\{[A-Za-z]+\}/g, "openapi-probe");

  it("routes every documented Sensu operation (the router's own 404 comes before authentication)", async () => {
    for (const path of [`${sensu}/nowhere`, "/api/core/v2/namespaces"]) {
      const noRoute = await call("GET", path);
      expect(noRoute.status).toBe(404);
      expect(JSON.parse(noRoute.text)).toEqual({ message: "not found", code: 2 });
    }
    for (const [template, item] of Object.entries<Json>(docs.sensu.paths)) {
      for (const method of methods.filter((m) => item[m] !== undefined)) {
        // A routed request without credentials is 401, or 200 for an operation documented as
        // public (`security: []`); an unrouted one would be the 404 above.
        const expected = item[method].security?.length === 0 ? 200 : 401;
        const reply = await call(method.toUpperCase(), probePath(template));
        expect(reply.status, `${method} ${template}`).toBe(expected);
        conforms("sensu", method, template, reply, expected);
      }
    }
    expect(docs.sensu.paths["/health"].get.security).toEqual([]);
    expect(docs.sensu.paths["/version"].get.security).toEqual([]);
  });

  it("routes every documented Grafana operation (not the 'could not find' or 405 answer)", async () => {
    const auth = `Bearer ${adminToken}`;
    const noRoute = await call("GET", `${grafana}/nowhere`, { auth });
    expect(noRoute.status).toBe(404);
    const noRouteMessage = JSON.parse(noRoute.text).message;
    for (const [template, item] of Object.entries<Json>(docs.grafana.paths)) {
      for (const method of methods.filter((m) => item[m] !== undefined)) {
        const reply = await call(method.toUpperCase(), probePath(template), { auth });
        expect(reply.status, `${method} ${template}`).not.toBe(405);
        if (reply.status === 404) expect(JSON.parse(reply.text).message).not.toBe(noRouteMessage);
        conforms("grafana", method, template, reply, reply.status);
      }
    }
  });

  it("rejects a response that breaks the schema (the validation can fail)", () => {
    const validate = ajv.compile({
      $ref: `sensu.json#${pointer("get", `${sensu}/namespaces/{namespace}/secrets/{name}`, 200)}`,
    });
    const good = {
      type: "Secret",
      api_version: "secrets/v1",
      metadata: { name: "a", namespace: "b", created_by: "admin" },
      spec: { id: "X", provider: "env" },
    };
    expect(validate(good)).toBe(true);
    expect(validate({ ...good, spec: { ...good.spec, value: "plaintext" } })).toBe(false);
    expect(validate({ ...good, metadata: { name: "a" } })).toBe(false);
    const sv = ajv.compile({
      $ref: `grafana.json#${pointer("get", `${grafana}/namespaces/{namespace}/securevalues/{name}`, 200)}`,
    });
    expect(sv({ apiVersion: "secret.grafana.app/v1beta1", kind: "SecureValue" })).toBe(false);
  });

  it("answers a Sensu scenario with documented statuses and bodies", async () => {
    const key = `Key ${adminToken}`;
    const list = `${sensu}/namespaces/{namespace}/secrets`;
    const all = `${sensu}/secrets`;
    const one = `${sensu}/namespaces/{namespace}/secrets/{name}`;
    const providers = `${sensu}/providers`;
    const provider = `${sensu}/providers/{name}`;
    const at = (name: string) => `${sensu}/namespaces/ops/secrets/${name}`;
    const body = (name: string, id: string, labels?: Record<string, string>) => ({
      type: "Secret",
      api_version: "secrets/v1",
      metadata: { name, namespace: "ops", ...(labels ? { labels } : {}) },
      spec: { id, provider: "env" },
    });

    expect(
      conforms(
        "sensu",
        "GET",
        list,
        await call("GET", `${sensu}/namespaces/ops/secrets`, { auth: key }),
        200,
      ),
    ).toEqual([]);
    for (const name of ["alpha", "beta"]) {
      const created = await call("PUT", at(name), {
        auth: key,
        body: body(name, "TOKEN", { team: "a" }),
      });
      conforms("sensu", "PUT", one, created, 201);
    }
    const got = conforms("sensu", "GET", one, await call("GET", at("alpha"), { auth: key }), 200);
    expect(got.metadata).toMatchObject({ name: "alpha", namespace: "ops", labels: { team: "a" } });
    const page = await call("GET", `${sensu}/namespaces/ops/secrets?limit=1`, { auth: key });
    expect(conforms("sensu", "GET", list, page, 200)).toHaveLength(1);
    expect(page.headers.get("sensu-continue")).toBeTruthy();
    conforms(
      "sensu",
      "GET",
      all,
      await call("GET", `${sensu}/secrets?fieldSelector=secret.name==beta`, { auth: key }),
      200,
    );
    conforms(
      "sensu",
      "PUT",
      one,
      await call("PUT", at("alpha"), { auth: key, body: body("alpha", "OTHER") }),
      201,
    );

    // Errors, each in Sensu's {"message","code"} body.
    conforms(
      "sensu",
      "GET",
      list,
      await call("GET", `${sensu}/namespaces/ops/secrets?labelSelector=%3D%3D`, { auth: key }),
      400,
    );
    conforms(
      "sensu",
      "GET",
      list,
      await call("GET", `${sensu}/namespaces/ops/secrets?continue=bogus!`, { auth: key }),
      400,
    );
    conforms(
      "sensu",
      "PUT",
      one,
      await call("PUT", at("alpha"), { auth: key, raw: "{not json" }),
      400,
    );
    conforms(
      "sensu",
      "PUT",
      one,
      await call("PUT", at("alpha"), { auth: key, body: body("other", "X") }),
      400,
    );
    conforms(
      "sensu",
      "PUT",
      one,
      await call("PUT", at("alpha"), { auth: key, raw: `"${"x".repeat(300 * 1024)}"` }),
      413,
    );
    conforms("sensu", "GET", one, await call("GET", at("alpha")), 401);
    conforms(
      "sensu",
      "GET",
      one,
      await call("GET", at("alpha"), { auth: "Key seald_unknown" }),
      401,
    );
    conforms(
      "sensu",
      "GET",
      one,
      await call("GET", at("alpha"), { auth: `Bearer ${nobodyToken}` }),
      403,
    );
    conforms(
      "sensu",
      "DELETE",
      one,
      await call("DELETE", at("alpha"), { auth: `Bearer ${nobodyToken}` }),
      403,
    );
    conforms("sensu", "GET", one, await call("GET", at("missing"), { auth: key }), 404);
    conforms("sensu", "DELETE", one, await call("DELETE", at("alpha"), { auth: key }), 204);
    conforms("sensu", "DELETE", one, await call("DELETE", at("alpha"), { auth: key }), 404);

    // Providers.
    const listed = conforms(
      "sensu",
      "GET",
      providers,
      await call("GET", providers, { auth: key }),
      200,
    );
    expect(listed.map((p: Json) => p.metadata.name)).toContain("env");
    conforms("sensu", "GET", provider, await call("GET", `${providers}/env`, { auth: key }), 200);
    const envBody = {
      type: "Env",
      api_version: "secrets/v1",
      metadata: { name: "env2" },
      spec: {},
    };
    conforms(
      "sensu",
      "PUT",
      provider,
      await call("PUT", `${providers}/env2`, { auth: key, body: envBody }),
      201,
    );
    const labelled = {
      ...envBody,
      metadata: {
        name: "env2",
        labels: { "sensu.io/managed_by": "sensuctl" },
        annotations: { note: "x" },
      },
    };
    conforms(
      "sensu",
      "PUT",
      provider,
      await call("PUT", `${providers}/env2`, { auth: key, body: labelled }),
      201,
    );
    expect(
      conforms("sensu", "GET", provider, await call("GET", `${providers}/env2`, { auth: key }), 200)
        .metadata.labels,
    ).toEqual({ "sensu.io/managed_by": "sensuctl" });
    conforms(
      "sensu",
      "GET",
      providers,
      await call(
        "GET",
        `${providers}?labelSelector=${encodeURIComponent('"sensu.io/managed_by" == sensuctl')}`,
        {
          auth: key,
        },
      ),
      200,
    );
    conforms(
      "sensu",
      "PUT",
      provider,
      await call("PUT", `${providers}/env2`, {
        auth: key,
        body: { ...envBody, metadata: { name: "env2", labels: { "a b": "x" } } },
      }),
      400,
    );
    conforms("sensu", "GET", "/health", await call("GET", "/health"), 200);
    conforms("sensu", "GET", "/version", await call("GET", "/version", { auth: key }), 200);
    const vault = { ...envBody, type: "VaultProvider" };
    conforms(
      "sensu",
      "PUT",
      provider,
      await call("PUT", `${providers}/env2`, { auth: key, body: vault }),
      400,
    );
    conforms(
      "sensu",
      "DELETE",
      provider,
      await call("DELETE", `${providers}/env2`, { auth: key }),
      204,
    );
    conforms("sensu", "GET", provider, await call("GET", `${providers}/env2`, { auth: key }), 404);
  });

  // Found by schemathesis: created_by of any JSON type was silently ignored; Sensu decodes it into
  // a string, so another type is a malformed body.
  it("refuses a Sensu body whose metadata.created_by is not a string, naming the field", async () => {
    const key = `Key ${adminToken}`;
    const bodies: [string, string, unknown][] = [
      [
        `${sensu}/namespaces/{namespace}/secrets/{name}`,
        `${sensu}/namespaces/ops/secrets/owned`,
        { metadata: { created_by: {} }, spec: { id: "X", provider: "env" } },
      ],
      [
        `${sensu}/providers/{name}`,
        `${sensu}/providers/env3`,
        { type: "Env", metadata: { name: "env3", created_by: 7 }, spec: {} },
      ],
    ];
    for (const [template, path, body] of bodies) {
      const reply = await call("PUT", path, { auth: key, body });
      const error = conforms("sensu", "PUT", template, reply, 400);
      expect(error).toEqual({ message: "metadata.created_by must be a string", code: 1 });
      conforms("sensu", "GET", template, await call("GET", path, { auth: key }), 404);
    }
  });

  it("documents the 400 for a JSON string that is not text, in both dialects", async () => {
    // The bytes 0xFF 0xFE inside a string (at "@@"), and an escaped lone surrogate.
    const withBytes = (json: string) => {
      const at = json.indexOf("@@");
      return Buffer.concat([
        Buffer.from(json.slice(0, at)),
        Buffer.from([0xff, 0xfe]),
        Buffer.from(json.slice(at + 2)),
      ]);
    };
    const sensuBody = '{"metadata":{"labels":{"app":"@@"}},"spec":{"id":"X","provider":"env"}}';
    const grafanaBody = '{"metadata":{"name":"not-text"},"spec":{"description":"d","value":"@@"}}';
    for (const raw of [withBytes(sensuBody), Buffer.from(sensuBody.replace("@@", "\\ud800"))]) {
      const template = `${sensu}/namespaces/{namespace}/secrets/{name}`;
      const path = `${sensu}/namespaces/ops/secrets/not-text`;
      const reply = await call("PUT", path, { auth: `Key ${adminToken}`, raw });
      const error = conforms("sensu", "PUT", template, reply, 400);
      expect(error.message).toMatch(/^metadata\.labels\.app (is not valid UTF-8|holds a lone)/);
      conforms(
        "sensu",
        "GET",
        template,
        await call("GET", path, { auth: `Key ${adminToken}` }),
        404,
      );
    }
    for (const raw of [withBytes(grafanaBody), Buffer.from(grafanaBody.replace("@@", "\\ud800"))]) {
      const template = `${grafana}/namespaces/{namespace}/securevalues`;
      const reply = await call("POST", `${grafana}/namespaces/ops/securevalues`, {
        auth: `Bearer ${adminToken}`,
        raw,
      });
      const status = conforms("grafana", "POST", template, reply, 400);
      expect(status.details.causes).toEqual([
        expect.objectContaining({ field: "spec.value", reason: "FieldValueInvalid" }),
      ]);
    }
  });

  it("answers a Grafana scenario with documented statuses and bodies", async () => {
    const auth = `Bearer ${adminToken}`;
    const collection = `${grafana}/namespaces/{namespace}/securevalues`;
    const item = `${collection}/{name}`;
    const at = (name = "") => `${grafana}/namespaces/team/securevalues${name ? `/${name}` : ""}`;
    const sv = secureValue;

    conforms(
      "grafana",
      "GET",
      "/apis/secret.grafana.app",
      await call("GET", "/apis/secret.grafana.app", { auth }),
      200,
    );
    conforms("grafana", "GET", grafana, await call("GET", grafana, { auth }), 200);
    // Discovery's aggregated form is a second documented media type of /api's and /apis's 200.
    for (const path of ["/api", "/apis"]) {
      for (const version of ["v2", "v2beta1"]) {
        const media = `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList`;
        const res = await fetch(`${seald.url}${path}`, {
          headers: { authorization: auth, accept: `${media},application/json` },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toBe(media);
        const documentedMedia = documented("grafana", "GET", path, 200).content[media];
        expect(documentedMedia, `${path} documents ${media}`).toBeDefined();
        const esc = (t: string) => t.replace(/~/g, "~0").replace(/\//g, "~1");
        const validate = ajv.compile({
          $ref: `grafana.json#/paths/${esc(path)}/get/responses/200/content/${esc(media)}/schema`,
        });
        const body = await res.json();
        expect(validate(body), ajv.errorsText(validate.errors)).toBe(true);
      }
    }
    const created = conforms(
      "grafana",
      "POST",
      collection,
      await call("POST", at(), {
        auth,
        body: sv(
          "api-key",
          {
            description: "External API Key",
            value: "s3cret-value",
            decrypters: ["synthetic-monitoring"],
          },
          { labels: { app: "sm" } },
        ),
      }),
      201,
    );
    expect(created.spec).not.toHaveProperty("value");
    conforms(
      "grafana",
      "POST",
      collection,
      await call("POST", at(), {
        auth,
        body: {
          metadata: { generateName: "gen-" },
          spec: { description: "generated", value: "v" },
        },
      }),
      201,
    );
    conforms("grafana", "GET", item, await call("GET", at("api-key"), { auth }), 200);
    const page = conforms(
      "grafana",
      "GET",
      collection,
      await call("GET", `${at()}?limit=1`, { auth }),
      200,
    );
    expect(page.metadata.continue).toBeTruthy();
    conforms(
      "grafana",
      "GET",
      collection,
      await call(
        "GET",
        `${at()}?labelSelector=app%3Dsm&fieldSelector=spec.decrypter%3Dsynthetic-monitoring`,
        { auth },
      ),
      200,
    );
    const updated = conforms(
      "grafana",
      "PUT",
      item,
      await call("PUT", at("api-key"), {
        auth,
        body: sv("api-key", { description: "renamed" }),
      }),
      200,
    );

    // Errors: Kubernetes Status objects, and Grafana's own 401.
    conforms(
      "grafana",
      "POST",
      collection,
      await call("POST", at(), { auth, body: sv("api-key", { description: "again", value: "v" }) }),
      409,
    );
    conforms(
      "grafana",
      "PUT",
      item,
      await call("PUT", at("api-key"), {
        auth,
        body: sv(
          "api-key",
          { description: "stale" },
          { resourceVersion: `${updated.metadata.resourceVersion}0` },
        ),
      }),
      409,
    );
    const invalid = conforms(
      "grafana",
      "POST",
      collection,
      await call("POST", at(), {
        auth,
        body: sv("Bad_Name", { description: "x".repeat(26), value: "v", decrypters: ["a", "a"] }),
      }),
      400,
    );
    expect(invalid.reason).toBe("Invalid");
    expect(invalid.details.causes.length).toBeGreaterThan(1);
    conforms(
      "grafana",
      "POST",
      collection,
      await call("POST", at(), { auth, raw: "{not json" }),
      400,
    );
    conforms("grafana", "GET", collection, await call("GET", `${at()}?limit=-1`, { auth }), 400);
    conforms(
      "grafana",
      "GET",
      collection,
      await call("GET", `${at()}?labelSelector=a%20in%20(`, { auth }),
      400,
    );
    conforms(
      "grafana",
      "POST",
      collection,
      await call("POST", at(), { auth, raw: `"${"x".repeat(300 * 1024)}"` }),
      413,
    );
    conforms("grafana", "GET", item, await call("GET", at("api-key")), 401);
    conforms(
      "grafana",
      "GET",
      grafana,
      await call("GET", grafana, { auth: "Bearer seald_unknown" }),
      401,
    );
    conforms(
      "grafana",
      "GET",
      item,
      await call("GET", at("api-key"), { auth: `Bearer ${nobodyToken}` }),
      403,
    );
    conforms(
      "grafana",
      "POST",
      collection,
      await call("POST", at(), { auth: `Bearer ${nobodyToken}`, body: sv("x", {}) }),
      403,
    );
    conforms("grafana", "GET", item, await call("GET", at("missing"), { auth }), 404);
    conforms(
      "grafana",
      "PUT",
      item,
      await call("PUT", at("missing"), { auth, body: sv("missing", { description: "d" }) }),
      404,
    );
    conforms(
      "grafana",
      "DELETE",
      item,
      await call("DELETE", at("api-key"), {
        auth,
        body: { preconditions: { resourceVersion: "not-current" } },
      }),
      409,
    );
    const deleted = conforms(
      "grafana",
      "DELETE",
      item,
      await call("DELETE", at("api-key"), { auth }),
      200,
    );
    expect(deleted.status).toBe("Success");
    conforms("grafana", "DELETE", item, await call("DELETE", at("api-key"), { auth }), 404);
  });
});
