/**
 * The Sensu dialect end to end: a real server on port 0, the real test database, and `fetch` over
 * HTTP, as sensuctl, Sensu's Ansible collection and curl would call it.
 */
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { sensuPrefix } from "../../src/rest/sensu/routes.js";
import { collections } from "../../src/store/schema.js";
import { client } from "../harness/clients.js";
import { adminToken, mongoUri, startTestSeald, uniqueDatabase } from "../harness/seald.js";

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are inspected field by field.
  json: any;
}

describe("Sensu secrets API", () => {
  const database = uniqueDatabase("sensu");
  let seald: Seald;
  let mongo: MongoClient;
  const tokens: Record<string, string> = {};

  /** One HTTP request; `auth` is the whole Authorization header (none when undefined). */
  async function call(
    method: string,
    path: string,
    options: { auth?: string; body?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.auth !== undefined) headers.Authorization = options.auth;
    const res = await fetch(`${seald.url}${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: options.body }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  const api = (path: string) => `${sensuPrefix}${path}`;
  const as = (who: string) => `Key ${who === "admin" ? adminToken : tokens[who]}`;
  const secret = (ns: string, name: string) => api(`/namespaces/${ns}/secrets/${name}`);

  /** A PUT with Sensu's wrapped body. */
  function put(
    ns: string,
    name: string,
    spec: { id: string; provider: string },
    metadata: Record<string, unknown> = {},
    who = "admin",
  ): Promise<Reply> {
    return call("PUT", secret(ns, name), {
      auth: as(who),
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        type: "Secret",
        api_version: "secrets/v1",
        metadata: { name, namespace: ns, ...metadata },
        spec,
      }),
    });
  }

  async function storedIn(namespace: string): Promise<number> {
    return mongo.db(database).collection(collections.secrets).countDocuments({ namespace });
  }

  const rpc = (token = adminToken) => client(SecretsService, seald.url, token);
  const access = () => client(AccessService, seald.url, adminToken);

  beforeAll(async () => {
    // Plenty of failures allowed: the auth tests send bad tokens on purpose.
    seald = await startTestSeald({ database, authMaxFailures: 1000 });
    mongo = await MongoClient.connect(mongoUri());
    const principals: [string, PrincipalKind, string, string][] = [
      ["ed", PrincipalKind.USER, "editor", "*"],
      ["reader", PrincipalKind.USER, "reader", "sel"],
      ["outsider", PrincipalKind.USER, "editor", "elsewhere"],
      ["billing", PrincipalKind.SERVICE_ACCOUNT, "decrypter", "mixed"],
    ];
    for (const [name, kind, role, namespace] of principals) {
      await access().createPrincipal({ principal: { name, kind } });
      await access().grantRole({ binding: { principal: name, role, namespace } });
      tokens[name] = (await access().createToken({ principal: name })).secret;
    }
  });
  afterAll(async () => {
    await mongo?.close();
    await seald?.close();
  });

  describe("the seed document, verbatim", () => {
    const path = "/api/enterprise/secrets/v1/namespaces/default/secrets/sensu-ansible-token";
    const key = () => `Key ${adminToken}`;
    const resource = `{
  "type": "Secret",
  "api_version": "secrets/v1",
  "metadata": {
    "name": "sensu-ansible-token",
    "namespace": "default",
    "created_by": "admin"
  },
  "spec": {
    "id": "secret/ansible#token",
    "provider": "ansible_vault"
  }
}`;
    // created_by is the authenticated principal: the bootstrap admin is named "admin", as in
    // the document. Compared as JSON text, so the key order is checked too.
    const same = (actual: unknown, expected: string) =>
      expect(JSON.stringify(actual)).toBe(JSON.stringify(JSON.parse(expected)));

    it("creates or updates a secret: 201 with an empty body", async () => {
      // The example shows "200 OK" but its specification (and Sensu) says 201 Created.
      const res = await call("PUT", path, {
        auth: key(),
        headers: { "Content-Type": "application/json" },
        body: `{
  "type": "Secret",
  "api_version": "secrets/v1",
  "metadata": {
    "name": "sensu-ansible-token",
    "namespace": "default"
  },
  "spec": {
    "id": "secret/ansible#token",
    "provider": "ansible_vault"
  }
}`,
      });
      expect(res.status).toBe(201);
      expect(res.text).toBe("");
    });

    it("gets all secrets of the namespace", async () => {
      const res = await call("GET", "/api/enterprise/secrets/v1/namespaces/default/secrets", {
        auth: key(),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json");
      same(res.json, `[${resource}]`);
    });

    it("gets the secret", async () => {
      const res = await call("GET", path, { auth: key() });
      expect(res.status).toBe(200);
      same(res.json, resource);
    });

    it("deletes the secret: 204 No Content, then 404", async () => {
      const res = await call("DELETE", path, { auth: key() });
      expect(res.status).toBe(204);
      expect(res.text).toBe("");
      const gone = await call("GET", path, { auth: key() });
      expect(gone.status).toBe(404);
      expect(gone.json).toEqual({ message: "not found", code: 2 });
      const list = await call("GET", "/api/enterprise/secrets/v1/namespaces/default/secrets", {
        auth: key(),
      });
      expect(list.text).toBe("[]");
    });
  });

  describe("secrets", () => {
    it("PUT creates and updates (201 both times), GET reflects it, DELETE is 204 then 404", async () => {
      const first = await put("life", "db", { id: "APP_DB", provider: "env" });
      expect(first.status).toBe(201);
      const second = await put(
        "life",
        "db",
        { id: "secret/db#password", provider: "vault" },
        { labels: { region: "us-west-1" }, annotations: { owner: "ops" }, created_by: "mallory" },
        "ed",
      );
      expect(second.status).toBe(201);
      expect(second.text).toBe("");

      const got = await call("GET", secret("life", "db"), { auth: as("ed") });
      expect(got.status).toBe(200);
      // created_by is the creator, whatever a body says; the update changed spec and metadata.
      expect(JSON.stringify(got.json)).toBe(
        JSON.stringify({
          type: "Secret",
          api_version: "secrets/v1",
          metadata: {
            name: "db",
            namespace: "life",
            created_by: "admin",
            labels: { region: "us-west-1" },
            annotations: { owner: "ops" },
          },
          spec: { id: "secret/db#password", provider: "vault" },
        }),
      );

      // A PUT without labels removes them: Sensu bodies replace metadata.
      expect((await put("life", "db", { id: "x", provider: "vault" })).status).toBe(201);
      expect((await call("GET", secret("life", "db"), { auth: as("ed") })).json.metadata).toEqual({
        name: "db",
        namespace: "life",
        created_by: "admin",
      });

      const deleted = await call("DELETE", secret("life", "db"), { auth: as("ed") });
      expect(deleted.status).toBe(204);
      expect(deleted.text).toBe("");
      for (const method of ["GET", "DELETE"]) {
        const res = await call(method, secret("life", "db"), { auth: as("ed") });
        expect(res.status).toBe(404);
        expect(res.text).toBe('{"message":"not found","code":2}');
      }
      expect(await storedIn("life")).toBe(0);
    });

    it("lists across namespaces, only those the caller may read", async () => {
      expect((await put("sel", "only-here", { id: "X", provider: "env" })).status).toBe(201);
      expect((await put("elsewhere", "other", { id: "Y", provider: "env" })).status).toBe(201);
      const all = await call("GET", api("/secrets"), { auth: as("admin") });
      expect(all.status).toBe(200);
      const everywhere = all.json.map(
        (s: { metadata: { namespace: string; name: string } }) =>
          `${s.metadata.namespace}/${s.metadata.name}`,
      );
      expect(everywhere).toEqual(expect.arrayContaining(["sel/only-here", "elsewhere/other"]));
      const readers = await call("GET", api("/secrets?types=Secret"), { auth: as("reader") });
      expect(readers.status).toBe(200);
      expect(
        readers.json.map((s: { metadata: { namespace: string } }) => s.metadata.namespace),
      ).not.toContain("elsewhere");
      expect(readers.json.length).toBeGreaterThan(0);
      await call("DELETE", secret("sel", "only-here"), { auth: as("admin") });
      await call("DELETE", secret("elsewhere", "other"), { auth: as("admin") });
    });

    it("answers 405 with Allow for a route that exists with other methods, 404 elsewhere", async () => {
      const cases: [string, string, string][] = [
        ["POST", secret("x", "y"), "GET, PUT, DELETE"],
        ["PATCH", secret("x", "y"), "GET, PUT, DELETE"],
        ["PUT", api("/namespaces/x/secrets"), "GET"],
        ["DELETE", api("/secrets"), "GET"],
        ["POST", api("/providers"), "GET"],
        ["POST", api("/providers/env"), "GET, PUT, DELETE"],
      ];
      for (const [method, path, allow] of cases) {
        // No credentials needed to learn which methods a route takes.
        const res = await call(method, path);
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get("allow")).toBe(allow);
        expect(res.json.code).toBe(1);
      }
      for (const path of [api(""), api("/namespaces"), api("/namespaces/x"), api("/a/b/c/d/e")]) {
        const res = await call("GET", path, { auth: as("admin") });
        expect(res.status, path).toBe(404);
        expect(res.json).toEqual({ message: "not found", code: 2 });
      }
    });
  });

  describe("Sensu's API root, /health and /version", () => {
    it("answers every unknown path under /api/ with Sensu's JSON 404, before authentication", async () => {
      const paths = [
        "/api/",
        "/api/core/v2/namespaces",
        "/api/core/v2/namespaces/default/checks",
        "/api/enterprise/secrets/v2/providers",
        "/api/enterprise/secrets/v1x",
        "/api/%zz",
      ];
      for (const path of paths) {
        for (const auth of [undefined, as("admin")]) {
          const res = await call("GET", path, auth === undefined ? {} : { auth });
          expect(res.status, path).toBe(404);
          expect(res.headers.get("content-type"), path).toBe("application/json");
          expect(res.json, path).toEqual({ message: "not found", code: 2 });
        }
      }
      expect((await call("DELETE", "/api/core/v2/namespaces/default")).json).toEqual({
        message: "not found",
        code: 2,
      });
    });

    it("leaves /api itself and /apis/ to the others (Kubernetes discovery, Grafana)", async () => {
      for (const path of ["/api", "/apis/secret.grafana.app/v1beta1/nowhere", "/apis/other"]) {
        const res = await call("GET", path, { auth: `Bearer ${adminToken}` });
        expect(res.json, path).not.toEqual({ message: "not found", code: 2 });
      }
    });

    it("serves GET /health in Sensu's shape without credentials: the database is the one member", async () => {
      const res = await call("GET", "/health");
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.json).toEqual({
        Alarms: null,
        ClusterHealth: [
          { MemberID: 0, MemberIDHex: "0", Name: "database", Err: "", Healthy: true },
        ],
        Header: { cluster_id: 0, member_id: 0, raft_term: 0 },
      });
      // Sensu's timeout parameter is accepted and changes nothing; a bad credential is ignored.
      const again = await call("GET", "/health?timeout=1", { auth: "Key seald_unknown" });
      expect(again.status).toBe(200);
      expect(again.json.ClusterHealth[0].Healthy).toBe(true);
    });

    it("serves GET /version in Sensu's shape without credentials", async () => {
      const res = await call("GET", "/version");
      expect(res.status).toBe(200);
      // Sensu's fields; Kubernetes' version.Info is beside them for kubectl (see grafana-discovery).
      expect(res.json).toMatchObject({
        etcd: null,
        sensu_backend: expect.stringMatching(/^6\.\d+\.\d+$/),
        seald: expect.stringMatching(/^\d+\.\d+\.\d+/),
      });
    });

    it("answers other methods on /health and /version with 405 and Allow", async () => {
      for (const path of ["/health", "/version"]) {
        for (const method of ["POST", "PUT", "DELETE"]) {
          const res = await call(method, path);
          expect(res.status, `${method} ${path}`).toBe(405);
          expect(res.headers.get("allow")).toBe("GET");
          expect(res.json).toEqual({ message: `method ${method} not allowed`, code: 1 });
        }
      }
      // The probes of seald's own stay what they were.
      expect((await call("GET", "/healthz")).text).toBe("ok\n");
      expect((await call("GET", "/readyz")).text).toBe("ok\n");
    });
  });

  describe("authentication and authorisation", () => {
    const target = () => secret("sel", "missing");

    it("401 bad credentials without a header or with another scheme", async () => {
      for (const auth of [undefined, `Basic ${Buffer.from("admin:x").toString("base64")}`, "Key"]) {
        for (const method of ["GET", "PUT", "DELETE"]) {
          const res = await call(method, target(), auth === undefined ? {} : { auth });
          expect(res.status).toBe(401);
          expect(res.text).toBe('{"message":"bad credentials","code":5}');
        }
      }
      const list = await call("GET", api("/secrets"));
      expect(list.json).toEqual({ message: "bad credentials", code: 5 });
    });

    it("401 invalid credentials for an unknown or revoked token", async () => {
      const unknown = `seald_${"u".repeat(43)}`;
      for (const auth of [`Key ${unknown}`, `Bearer ${unknown}`, "Key nonsense"]) {
        const res = await call("GET", api("/namespaces/sel/secrets"), { auth });
        expect(res.status).toBe(401);
        expect(res.text).toBe('{"message":"invalid credentials","code":5}');
      }
      const issued = await access().createToken({ principal: "ed" });
      expect(
        (await call("GET", api("/namespaces/sel/secrets"), { auth: `Key ${issued.secret}` }))
          .status,
      ).toBe(200);
      await access().revokeToken({ id: issued.token?.id ?? "" });
      const revoked = await call("GET", api("/namespaces/sel/secrets"), {
        auth: `Key ${issued.secret}`,
      });
      expect(revoked.status).toBe(401);
      expect(revoked.json).toEqual({ message: "invalid credentials", code: 5 });
    });

    it("takes Key and Bearer alike", async () => {
      for (const scheme of ["Key", "Bearer", "key", "BEARER"]) {
        const res = await call("GET", api("/namespaces/sel/secrets"), {
          auth: `${scheme} ${tokens.ed}`,
        });
        expect(res.status, scheme).toBe(200);
      }
    });

    it("decides 401 before 403 before 404, and 403 in Sensu's words", async () => {
      const bad = `Key seald_${"b".repeat(43)}`;
      for (const method of ["GET", "DELETE", "PUT"]) {
        const body = JSON.stringify({ spec: { id: "X", provider: "env" } });
        const send = (auth: string) =>
          call(method, target(), { auth, ...(method === "PUT" ? { body } : {}) });
        expect((await send(bad)).status).toBe(401);
        const denied = await send(as("outsider"));
        expect(denied.status).toBe(403);
        expect(denied.text).toBe('{"message":"unauthorized to perform action","code":4}');
      }
      expect((await call("GET", target(), { auth: as("ed") })).status).toBe(404);
      expect((await call("DELETE", target(), { auth: as("ed") })).status).toBe(404);
      // A reader may read but not write.
      const readerPut = await put("sel", "by-reader", { id: "X", provider: "env" }, {}, "reader");
      expect(readerPut.status).toBe(403);
      expect(await storedIn("sel")).toBe(0);
      expect(
        (await call("GET", api("/namespaces/elsewhere/secrets"), { auth: as("reader") })).status,
      ).toBe(403);
    });
  });

  describe("response filtering", () => {
    const ns = "filter";
    const names = async (query: string, who = "admin"): Promise<string[]> => {
      const res = await call("GET", `${api(`/namespaces/${ns}/secrets`)}?${query}`, {
        auth: as(who),
      });
      expect(res.status, `${query}: ${res.text}`).toBe(200);
      return res.json.map((s: { metadata: { name: string } }) => s.metadata.name);
    };
    const q = (param: string, expr: string) => `${param}=${encodeURIComponent(expr)}`;
    const field = (expr: string) => names(q("fieldSelector", expr));
    const label = (expr: string) => names(q("labelSelector", expr));

    beforeAll(async () => {
      const fixtures: [string, string, string, Record<string, string>][] = [
        ["a", "env", "APP_ONE", { region: "us-west-1", tier: "db" }],
        ["b", "vault", "secret/b#x", { region: "eu-central", tier: "web" }],
        ["c", "ansible-vault", "c", {}],
        ["d", "env", "APP_D", { k: "x=y" }],
      ];
      for (const [name, provider, id, labels] of fixtures) {
        expect((await put(ns, name, { id, provider }, { labels })).status).toBe(201);
      }
    });

    it("filters on fields with each operator", async () => {
      expect(await names("")).toEqual(["a", "b", "c", "d"]);
      expect(await field("secret.provider == env")).toEqual(["a", "d"]);
      expect(await field("secret.provider != env")).toEqual(["b", "c"]);
      expect(await field("secret.provider in [env, vault]")).toEqual(["a", "b", "d"]);
      expect(await field("secret.provider notin [env,vault]")).toEqual(["c"]);
      expect(await field("secret.id matches APP_")).toEqual(["a", "d"]);
      expect(await field("secret.name == b")).toEqual(["b"]);
      expect(await field(`secret.namespace == ${ns}`)).toEqual(["a", "b", "c", "d"]);
      expect(await field("secret.namespace == other")).toEqual([]);
      // Keywords in any case, as Sensu's lexer takes them.
      expect(await field("secret.provider IN [vault]")).toEqual(["b"]);
      // Sensu's "value in field" form.
      expect(await field("vault in secret.provider")).toEqual(["b"]);
      expect(await field("vault notin secret.provider")).toEqual(["a", "c", "d"]);
      // Labels through the fieldSelector, as Sensu exposes them.
      expect(await field('secret.labels.region == "us-west-1"')).toEqual(["a"]);
    });

    it("filters on labels with each operator", async () => {
      expect(await label('region == "us-west-1"')).toEqual(["a"]);
      // A missing label passes != and notin and fails ==, in and matches (Sensu's semantics).
      expect(await label('region != "us-west-1"')).toEqual(["b", "c", "d"]);
      expect(await label("tier in [db, web]")).toEqual(["a", "b"]);
      expect(await label("tier notin [db]")).toEqual(["b", "c", "d"]);
      expect(await label("region matches west")).toEqual(["a"]);
      expect(await label('region matches "us-"')).toEqual(["a"]);
      expect(await label("region matches e")).toEqual(["a", "b"]);
      expect(await label("tier in []")).toEqual([]);
      expect(await label("tier notin []")).toEqual(["a", "b", "c", "d"]);
    });

    it("takes quoted values in either quote", async () => {
      expect(await field('secret.provider == "ansible-vault"')).toEqual(["c"]);
      expect(await field("secret.provider == 'ansible-vault'")).toEqual(["c"]);
      expect(await field('secret.id == "secret/b#x"')).toEqual(["b"]);
      expect(await field("secret.provider in ['ansible-vault', \"vault\"]")).toEqual(["b", "c"]);
      expect(await label("'region' == 'eu-central'")).toEqual(["b"]);
    });

    it("ANDs terms joined by && and repeated parameters", async () => {
      expect(await field("secret.provider in [env,vault] && secret.name != a")).toEqual(["b", "d"]);
      expect(
        await names(
          `${q("fieldSelector", "secret.provider in [env,vault]")}&${q("fieldSelector", "secret.name != a")}`,
        ),
      ).toEqual(["b", "d"]);
      expect(
        await names(
          `${q("labelSelector", "tier == web")}&${q("labelSelector", "region matches eu")}&${q("fieldSelector", "secret.provider == vault")}`,
        ),
      ).toEqual(["b"]);
      expect(
        await names(
          `${q("labelSelector", "tier == web")}&${q("fieldSelector", "secret.name == a")}`,
        ),
      ).toEqual([]);
    });

    it("treats an unknown field as missing: nothing for ==, in, matches; everything for !=, notin", async () => {
      expect(await field("secret.color == red")).toEqual([]);
      expect(await field("secret.color in [red]")).toEqual([]);
      expect(await field("secret.color matches r")).toEqual([]);
      expect(await field("secret.color != red")).toEqual(["a", "b", "c", "d"]);
      expect(await field("secret.color notin [red]")).toEqual(["a", "b", "c", "d"]);
      expect(await field("check.name == a")).toEqual([]);
      expect(await label("color == red")).toEqual([]);
    });

    it("cannot be turned into a query or a pattern", async () => {
      // Label pairs are stored as "k=v": a key holding "=" must not reach into a value.
      expect(await label('k == "x=y"')).toEqual(["d"]);
      expect(await label('"k=x" == y')).toEqual([]);
      expect(await label('"k=x" in [y]')).toEqual([]);
      expect(await label('"k=x" matches y')).toEqual([]);
      expect(await label('"k=x" != y')).toEqual(["a", "b", "c", "d"]);
      // Values are strings compared as such, never operators or regular expressions.
      expect(await field(`secret.name == '{"$ne":null}'`)).toEqual([]);
      expect(await field('secret.name != "$where"')).toEqual(["a", "b", "c", "d"]);
      expect(await field('secret.name matches ".*"')).toEqual([]);
      expect(await field('secret.id matches "b#"')).toEqual(["b"]);
      expect(await field('secret.id matches "^s"')).toEqual([]);
      expect(await label('region matches "."')).toEqual([]);
      // Several selectors never widen a result: an "or" cannot be smuggled in.
      expect(await field('secret.name == "a || true"')).toEqual([]);
    });

    it("answers a selector that does not parse with 400 naming the position", async () => {
      const cases: [string, string, string][] = [
        ["fieldSelector", "secret.name = a", "expected '==' but found '= ' at position 12"],
        [
          "fieldSelector",
          "secret.name == ",
          "expected a value (a name or a quoted string) but found the end of the selector at position 15",
        ],
        [
          "fieldSelector",
          "secret.name in [a, b",
          "expected ',' or ']' but found the end of the selector at position 20",
        ],
        [
          "fieldSelector",
          "&& secret.name == a",
          "expected a key (a name or a quoted string) but found '&&' at position 0",
        ],
        [
          "fieldSelector",
          "secret.name == a b == c",
          "expected '&&' or the end of the selector but found 'b' at position 17",
        ],
        [
          "fieldSelector",
          "secret.name == a &&",
          "expected a key (a name or a quoted string) but found the end of the selector at position 19",
        ],
        ["fieldSelector", "secret.name ~ a", "unexpected character '~' at position 12"],
        [
          "fieldSelector",
          "secret.provider == ansible-vault",
          "unexpected character '-' at position 26",
        ],
        ["fieldSelector", 'secret.name == "open', "unterminated string at position 15"],
        ["fieldSelector", "secret.name in (a,b)", "unexpected character '(' at position 15"],
        [
          "fieldSelector",
          "secret.name",
          "expected an operator (==, !=, in, notin or matches) but found the end of the selector at position 11",
        ],
        ["labelSelector", "region & tier", "expected '&&' but found '& ' at position 7"],
        ["labelSelector", "region == $x", "unexpected character '$' at position 10"],
      ];
      for (const [param, expr, message] of cases) {
        const res = await call("GET", `${api(`/namespaces/${ns}/secrets`)}?${q(param, expr)}`, {
          auth: as("admin"),
        });
        expect(res.status, expr).toBe(400);
        expect(res.json, expr).toEqual({
          message: `could not parse the operations: ${message}`,
          code: 1,
        });
      }
      // The good parameter does not excuse the bad one.
      const mixed = await call(
        "GET",
        `${api(`/namespaces/${ns}/secrets`)}?${q("fieldSelector", "secret.name == a")}&${q("fieldSelector", "==")}`,
        { auth: as("admin") },
      );
      expect(mixed.status).toBe(400);
    });

    it("filters the cross-namespace list too", async () => {
      const res = await call(
        "GET",
        `${api("/secrets")}?${q("fieldSelector", `secret.namespace == ${ns} && secret.provider == vault`)}`,
        { auth: as("admin") },
      );
      expect(res.json.map((s: { metadata: { name: string } }) => s.metadata.name)).toEqual(["b"]);
    });
  });

  describe("pagination", () => {
    const ns = "paging";
    const all: string[] = [];

    beforeAll(async () => {
      for (let i = 0; i < 250; i++) all.push(`s-${String(i).padStart(3, "0")}`);
      // Created through the RPC API: quicker, and it is the same resource.
      const admin = rpc();
      for (let i = 0; i < all.length; i += 25) {
        await Promise.all(
          all.slice(i, i + 25).map((name) =>
            admin.createSecret({
              secret: { namespace: ns, name, keeper: "env", ref: `APP_${name}` },
            }),
          ),
        );
      }
    }, 120_000);

    it("pages 250 secrets by 100: three pages, each secret once, no header on the last", async () => {
      const seen: string[] = [];
      const sizes: number[] = [];
      let token: string | null = null;
      let pages = 0;
      do {
        const query: string = `limit=100${token ? `&continue=${encodeURIComponent(token)}` : ""}`;
        const res = await call("GET", `${api(`/namespaces/${ns}/secrets`)}?${query}`, {
          auth: as("ed"),
        });
        expect(res.status).toBe(200);
        sizes.push(res.json.length);
        seen.push(...res.json.map((s: { metadata: { name: string } }) => s.metadata.name));
        token = res.headers.get("sensu-continue");
        if (token) expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
        pages++;
      } while (token && pages < 10);
      expect(sizes).toEqual([100, 100, 50]);
      expect(seen).toEqual(all);
      expect(new Set(seen).size).toBe(250);
    });

    it("shares its cursor with the RPC API's page token", async () => {
      const first = await call("GET", `${api(`/namespaces/${ns}/secrets`)}?limit=100`, {
        auth: as("ed"),
      });
      const token = first.headers.get("sensu-continue") ?? "";
      const viaRpc = await rpc().listSecrets({ namespace: ns, pageSize: 100, pageToken: token });
      expect(viaRpc.secrets[0]?.name).toBe("s-100");
      const rpcFirst = await rpc().listSecrets({ namespace: ns, pageSize: 100 });
      const viaSensu = await call(
        "GET",
        `${api(`/namespaces/${ns}/secrets`)}?limit=1&continue=${rpcFirst.nextPageToken}`,
        { auth: as("ed") },
      );
      expect(viaSensu.json.map((s: { metadata: { name: string } }) => s.metadata.name)).toEqual([
        "s-100",
      ]);
    });

    it("reads a non-numeric or missing limit as no limit", async () => {
      for (const query of ["", "limit=abc", "limit=", "limit=0", "limit=-5"]) {
        const res = await call("GET", `${api(`/namespaces/${ns}/secrets`)}?${query}`, {
          auth: as("ed"),
        });
        expect(res.json.length, query).toBe(250);
        expect(res.headers.get("sensu-continue"), query).toBeNull();
      }
      // A limit over the domain's page size is served whole.
      const big = await call("GET", `${api(`/namespaces/${ns}/secrets`)}?limit=5000`, {
        auth: as("ed"),
      });
      expect(big.json.length).toBe(250);
      expect(big.headers.get("sensu-continue")).toBeNull();
    });

    it("pages after filtering, and refuses a token it did not issue", async () => {
      const res = await call(
        "GET",
        `${api(`/namespaces/${ns}/secrets`)}?limit=2&fieldSelector=${encodeURIComponent(`secret.name matches "s-24"`)}`,
        { auth: as("ed") },
      );
      expect(res.json.map((s: { metadata: { name: string } }) => s.metadata.name)).toEqual([
        "s-240",
        "s-241",
      ]);
      expect(res.headers.get("sensu-continue")).not.toBeNull();
      for (const token of ["not-a-token", "eyJ4IjoxfQ", "%24gt"]) {
        const bad = await call("GET", `${api(`/namespaces/${ns}/secrets`)}?continue=${token}`, {
          auth: as("ed"),
        });
        expect(bad.status, token).toBe(400);
        expect(bad.json.code).toBe(1);
      }
    });
  });

  describe("the RPC API's secrets", () => {
    const ns = "mixed";

    it("appear in the Sensu list; a sealed one shows provider system and an empty id", async () => {
      await rpc().createSecret({
        secret: {
          namespace: ns,
          name: "sealed",
          labels: { team: "payments" },
          description: "the card key",
          decrypters: ["billing"],
          value: { kind: { case: "plaintext", value: "hunter2" } },
        },
      });
      await rpc().createSecret({
        secret: { namespace: ns, name: "referenced", keeper: "env", ref: "APP_REF" },
      });
      const res = await call("GET", api(`/namespaces/${ns}/secrets`), { auth: as("ed") });
      expect(res.status).toBe(200);
      expect(res.json).toEqual(
        [
          {
            type: "Secret",
            api_version: "secrets/v1",
            metadata: {
              name: "referenced",
              namespace: ns,
              created_by: "admin",
            },
            spec: { id: "APP_REF", provider: "env" },
          },
          {
            type: "Secret",
            api_version: "secrets/v1",
            metadata: {
              name: "sealed",
              namespace: ns,
              created_by: "admin",
              labels: { team: "payments" },
            },
            spec: { id: "", provider: "system" },
          },
        ].sort((x, y) => x.metadata.name.localeCompare(y.metadata.name)),
      );
      expect(res.text).not.toContain("hunter2");
      expect(
        (
          await call(
            "GET",
            `${api(`/namespaces/${ns}/secrets`)}?fieldSelector=${encodeURIComponent("secret.provider == system")}`,
            { auth: as("ed") },
          )
        ).json.length,
      ).toBe(1);
    });

    it("a PUT with provider system updates labels and keeps value, description and decrypters", async () => {
      const before = (await rpc().getSecret({ namespace: ns, name: "sealed" })).secret;
      const res = await put(
        ns,
        "sealed",
        { id: "", provider: "system" },
        { labels: { team: "risk" } },
        "ed",
      );
      expect(res.status).toBe(201);
      const after = (await rpc().getSecret({ namespace: ns, name: "sealed" })).secret;
      expect(after?.labels).toEqual({ team: "risk" });
      expect(after?.description).toBe("the card key");
      expect(after?.decrypters).toEqual(["billing"]);
      expect(after?.version).toBe(before?.version);
      expect(after?.updatedBy).toBe("ed");
      const opened = await rpc(tokens.billing).decryptSecrets({ namespace: ns, names: ["sealed"] });
      expect(opened.results.sealed?.result).toEqual({ case: "value", value: "hunter2" });
      // The GET rendering round-trips: what was read can be PUT back unchanged.
      const got = await call("GET", secret(ns, "sealed"), { auth: as("ed") });
      const back = await call("PUT", secret(ns, "sealed"), { auth: as("ed"), body: got.text });
      expect(back.status).toBe(201);
    });

    it("never lets a Sensu PUT replace a sealed value", async () => {
      const before = (await rpc().getSecret({ namespace: ns, name: "sealed" })).secret;
      for (const provider of ["env", "vault"]) {
        const res = await put(ns, "sealed", { id: "APP_X", provider }, {}, "ed");
        expect(res.status).toBe(400);
        expect(res.json.code).toBe(1);
        expect(res.json.message).toContain(
          "cannot switch between a stored value and an external reference",
        );
      }
      const withId = await put(ns, "sealed", { id: "something", provider: "system" }, {}, "ed");
      expect(withId.status).toBe(400);
      expect(withId.json.message).toContain('spec.id must be empty for provider "system"');
      const after = (await rpc().getSecret({ namespace: ns, name: "sealed" })).secret;
      expect(after?.resourceVersion).toBe(before?.resourceVersion);
      const opened = await rpc(tokens.billing).decryptSecrets({ namespace: ns, names: ["sealed"] });
      expect(opened.results.sealed?.result).toEqual({ case: "value", value: "hunter2" });
    });

    it("refuses to create a system secret, which needs a value", async () => {
      const res = await put(ns, "new-sealed", { id: "", provider: "system" }, {}, "ed");
      expect(res.status).toBe(400);
      expect(res.json.message).toContain("create it through the RPC API or the Grafana routes");
      expect((await call("GET", secret(ns, "new-sealed"), { auth: as("ed") })).status).toBe(404);
      // Nor can a reference be turned into a sealed value.
      const flip = await put(ns, "referenced", { id: "", provider: "system" }, {}, "ed");
      expect(flip.status).toBe(400);
      expect((await rpc().getSecret({ namespace: ns, name: "referenced" })).secret?.keeper).toBe(
        "env",
      );
    });

    it("keeps description and decrypters set through the RPC API when Sensu updates", async () => {
      const got = (await rpc().getSecret({ namespace: ns, name: "referenced" })).secret;
      await rpc().updateSecret({
        secret: {
          namespace: ns,
          name: "referenced",
          keeper: "env",
          ref: "APP_REF",
          description: "set over RPC",
          decrypters: ["billing"],
        },
        expectedResourceVersion: got?.resourceVersion ?? "",
      });
      expect(
        (await put(ns, "referenced", { id: "APP_OTHER", provider: "env" }, {}, "ed")).status,
      ).toBe(201);
      const after = (await rpc().getSecret({ namespace: ns, name: "referenced" })).secret;
      expect(after?.ref).toBe("APP_OTHER");
      expect(after?.description).toBe("set over RPC");
      expect(after?.decrypters).toEqual(["billing"]);
    });

    it("DELETE deletes a sealed secret with its history, as in Sensu, given the delete permission", async () => {
      await rpc().createSecret({
        secret: {
          namespace: ns,
          name: "doomed",
          decrypters: ["billing"],
          value: { kind: { case: "plaintext", value: "first" } },
        },
      });
      const got = (await rpc().getSecret({ namespace: ns, name: "doomed" })).secret;
      await rpc().updateSecret({
        secret: {
          namespace: ns,
          name: "doomed",
          decrypters: ["billing"],
          value: { kind: { case: "plaintext", value: "second" } },
        },
        expectedResourceVersion: got?.resourceVersion ?? "",
      });
      const uid = got?.uid ?? "";
      const versions = () =>
        mongo
          .db(database)
          .collection(collections.secretVersions)
          .countDocuments({ _id: { $regex: `^${uid}/` } } as never);
      expect(await versions()).toBeGreaterThan(0);
      // Neither a decrypter of the namespace nor an editor of another may delete it.
      for (const who of ["billing", "outsider"]) {
        const refused = await call("DELETE", secret(ns, "doomed"), { auth: as(who) });
        expect(refused.status, who).toBe(403);
      }
      const opened = await rpc(tokens.billing).decryptSecrets({ namespace: ns, names: ["doomed"] });
      expect(opened.results.doomed?.result).toEqual({ case: "value", value: "second" });
      // An editor of the namespace may: the value and every kept older value are gone.
      expect((await call("DELETE", secret(ns, "doomed"), { auth: as("ed") })).status).toBe(204);
      expect((await call("GET", secret(ns, "doomed"), { auth: as("ed") })).status).toBe(404);
      const after = await rpc(tokens.billing).decryptSecrets({
        namespace: ns,
        names: ["doomed"],
        version: 1n,
      });
      expect(after.results.doomed?.result.case).toBe("error");
      expect(await versions()).toBe(0);
    });
  });

  describe("bad input", () => {
    const ns = "bad";
    const body = (b: unknown) => JSON.stringify(b);
    const good = {
      type: "Secret",
      api_version: "secrets/v1",
      metadata: { name: "x", namespace: ns },
      spec: { id: "APP_X", provider: "env" },
    };
    const send = (
      path: string,
      raw: string,
      headers: Record<string, string> = { "Content-Type": "application/json" },
    ) => call("PUT", path, { auth: as("ed"), body: raw, headers });

    it("refuses each validation failure with 400 in Sensu's format, storing nothing", async () => {
      const cases: [string, string, string | RegExp][] = [
        ["x", body({ ...good, type: "CheckConfig" }), 'type must be "Secret", not "CheckConfig"'],
        [
          "x",
          body({ ...good, api_version: "core/v2" }),
          'api_version must be "secrets/v1", not "core/v2"',
        ],
        [
          "x",
          body({ ...good, metadata: { name: "y", namespace: ns } }),
          "the name of the resource (y) does not match the name of the URI (x)",
        ],
        [
          "x",
          body({ ...good, metadata: { name: "x", namespace: "other" } }),
          `the namespace of the resource (other) does not match the namespace of the URI (${ns})`,
        ],
        ["x", body({ ...good, spec: undefined }), "spec is required and must be an object"],
        ["x", body({ ...good, spec: { id: "", provider: "env" } }), "spec.id is required"],
        ["x", body({ ...good, spec: { provider: "env" } }), "spec.id is required"],
        ["x", body({ ...good, spec: { id: "APP_X", provider: "" } }), "spec.provider is required"],
        [
          "x",
          body({ ...good, spec: { id: { $ne: "" }, provider: "env" } }),
          /must not start with '\$'/,
        ],
        ["x", body({ ...good, spec: { id: 5, provider: "env" } }), "spec.id must be a string"],
        [
          "x",
          body({ ...good, metadata: { name: "x", labels: ["a"] } }),
          "metadata.labels must be an object of strings",
        ],
        [
          "x",
          body({ ...good, metadata: { name: "x", labels: { a: 1 } } }),
          'metadata.labels["a"] must be a string',
        ],
        ["x", body({ ...good, $where: "1" }), `the body: key "$where" must not start with '$'`],
        [
          "x",
          body({ ...good, metadata: { name: "x", labels: { $gt: "" } } }),
          `metadata.labels: key "$gt" must not start with '$'`,
        ],
        ["x", body([good]), "the request body must be a JSON object"],
        ["x", "null", "the request body must be a JSON object"],
        ["x", '"Secret"', "the request body must be a JSON object"],
        // Sensu's name rule, then the domain's (which also wants a letter or digit at each end).
        ["a%20b", body({ ...good, metadata: {} }), 'metadata.name: "a b" is not a valid name'],
        ["a*b", body({ ...good, metadata: {} }), 'metadata.name: "a*b" is not a valid name'],
        ["a%2Fb", body({ ...good, metadata: {} }), 'metadata.name: "a/b" is not a valid name'],
        ["-x-", body({ ...good, metadata: {} }), /^metadata\.name: must be 1 to 253 letters/],
        [
          "x",
          body({ ...good, spec: { id: "APP_X", provider: "bad provider" } }),
          /^spec\.provider: must be 1 to 64/,
        ],
        [
          "x",
          body({ ...good, metadata: { name: "x", labels: { "a=b": "c" } } }),
          /^metadata\.labels\["a=b"\]: keys are/,
        ],
        [
          "x",
          body({ ...good, spec: { id: "a\u0001b", provider: "env" } }),
          /^spec\.id: must not contain control characters/,
        ],
      ];
      for (const [name, raw, message] of cases) {
        const res = await send(secret(ns, name), raw);
        expect(res.status, raw).toBe(400);
        expect(res.json?.code, raw).toBe(1);
        if (typeof message === "string") expect(res.json.message, raw).toContain(message);
        else expect(res.json.message, raw).toMatch(message);
      }
      const namespaced = await send(
        api("/namespaces/bad%20ns/secrets/x"),
        body({ ...good, metadata: {} }),
      );
      expect(namespaced.status).toBe(400);
      expect(namespaced.json.message).toContain(
        'metadata.namespace: "bad ns" is not a valid namespace',
      );
      expect(await storedIn(ns)).toBe(0);
    });

    it("takes name and namespace from the URL when the body leaves them out", async () => {
      const res = await send(
        secret(ns, "from-url"),
        body({ spec: { id: "APP_X", provider: "env" } }),
      );
      expect(res.status).toBe(201);
      const got = await call("GET", secret(ns, "from-url"), { auth: as("ed") });
      expect(got.json.metadata).toEqual({ name: "from-url", namespace: ns, created_by: "ed" });
      await call("DELETE", secret(ns, "from-url"), { auth: as("ed") });
    });

    it("refuses malformed, non-JSON, over-deep and oversized bodies, storing nothing", async () => {
      const malformed = await send(secret(ns, "x"), '{"type": "Secret",');
      expect(malformed.status).toBe(400);
      expect(malformed.json.code).toBe(1);
      expect(malformed.json.message).toMatch(/JSON/);

      const text = await send(secret(ns, "x"), "id=APP_X&provider=env", {
        "Content-Type": "application/x-www-form-urlencoded",
      });
      expect(text.status).toBe(400);
      expect(text.json.code).toBe(1);

      const empty = await send(secret(ns, "x"), "");
      expect(empty.status).toBe(400);

      let deep: unknown = "v";
      for (let i = 0; i < 100; i++) deep = { n: deep };
      const nested = await send(
        secret(ns, "x"),
        body({ ...good, spec: { ...good.spec, extra: deep } }),
      );
      expect(nested.status).toBe(400);
      expect(nested.json).toEqual({ message: "JSON nested deeper than 32 levels", code: 1 });

      const huge = await send(
        secret(ns, "x"),
        body({ ...good, metadata: { name: "x", annotations: { big: "a".repeat(300 * 1024) } } }),
      );
      expect(huge.status).toBe(413);
      expect(huge.json).toEqual({ message: "request body is larger than 262144 bytes", code: 1 });

      expect(await storedIn(ns)).toBe(0);
      const list = await call("GET", api(`/namespaces/${ns}/secrets`), { auth: as("ed") });
      expect(list.text).toBe("[]");
    });

    it("refuses domain limits with the field named in Sensu's terms", async () => {
      const labels: Record<string, string> = {};
      for (let i = 0; i < 65; i++) labels[`l${i}`] = "v";
      const res = await send(secret(ns, "x"), body({ ...good, metadata: { name: "x", labels } }));
      expect(res.status).toBe(400);
      expect(res.json.message).toBe("metadata.labels: at most 64 entries");
      expect(await storedIn(ns)).toBe(0);
    });
  });
});
