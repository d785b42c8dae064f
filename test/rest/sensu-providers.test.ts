/**
 * The Sensu dialect's providers, and Sensu secrets resolved through them by DecryptSecrets: a real
 * server with the env provider enabled for the prefix "APP_", and one without a prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { sensuPrefix } from "../../src/rest/sensu/routes.js";
import { client } from "../harness/clients.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are inspected field by field.
  json: any;
}

/** The environment the servers' env provider reads. */
const providerEnv = {
  APP_OPS__DB_PASSWORD: "s3cret",
  APP_OPS__OTHER: "other value",
  HOME: "/home/seald",
  SEALD_BOOTSTRAP_TOKEN: adminToken,
};

/** A server with its principals: "billing" and "stranger" are decrypters in "ops". */
async function startServer(envProviderPrefix: string | undefined) {
  const seald = await startTestSeald(
    { database: uniqueDatabase("sensu_providers"), envProviderPrefix },
    { providerEnv },
  );
  const access = client(AccessService, seald.url, adminToken);
  const tokens: Record<string, string> = {};
  const principals: [string, PrincipalKind, string, string][] = [
    ["billing", PrincipalKind.SERVICE_ACCOUNT, "decrypter", "ops"],
    ["stranger", PrincipalKind.SERVICE_ACCOUNT, "decrypter", "ops"],
    ["ed", PrincipalKind.USER, "editor", "*"],
  ];
  for (const [name, kind, role, namespace] of principals) {
    await access.createPrincipal({ principal: { name, kind } });
    await access.grantRole({ binding: { principal: name, role, namespace } });
    tokens[name] = (await access.createToken({ principal: name })).secret;
  }
  return { seald, tokens };
}

function sensu(seald: () => Seald) {
  return async function call(
    method: string,
    path: string,
    options: { token?: string | undefined; body?: unknown } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (options.token !== "") headers.Authorization = `Key ${options.token ?? adminToken}`;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(`${seald().url}${sensuPrefix}${path}`, {
      method,
      headers,
      ...(options.body === undefined
        ? {}
        : { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      text,
      json: text ? JSON.parse(text) : undefined,
    };
  };
}

const envProvider = { type: "Env", api_version: "secrets/v1", metadata: { name: "env" }, spec: {} };

function secretBody(
  name: string,
  id: string,
  provider: string,
  labels: Record<string, string> = {},
) {
  return {
    type: "Secret",
    api_version: "secrets/v1",
    metadata: { name, namespace: "ops", labels },
    spec: { id, provider },
  };
}

describe("Sensu providers and env-backed secrets (prefix APP_)", () => {
  let seald: Seald;
  let tokens: Record<string, string>;
  const call = sensu(() => seald);
  const rpc = (token = adminToken) => client(SecretsService, seald.url, token);

  /** What DecryptSecrets answers the principal for one name of "ops". */
  async function decrypt(who: string, name: string) {
    const res = await rpc(tokens[who]).decryptSecrets({ namespace: "ops", names: [name] });
    return res.results[name]?.result;
  }

  /** Adds the principals to a secret's decrypters through the RPC API (Sensu has no field). */
  async function allow(name: string, decrypters: string[]) {
    const got = (await rpc().getSecret({ namespace: "ops", name })).secret;
    await rpc().updateSecret({
      secret: {
        namespace: "ops",
        name,
        labels: got?.labels ?? {},
        annotations: got?.annotations ?? {},
        description: got?.description ?? "",
        decrypters,
        keeper: got?.keeper ?? "",
        ref: got?.ref ?? "",
      },
      expectedResourceVersion: got?.resourceVersion ?? "",
    });
  }

  beforeAll(async () => {
    ({ seald, tokens } = await startServer("APP_"));
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("has the Env provider env by default", async () => {
    const list = await call("GET", "/providers", { token: tokens.ed });
    expect(list.status).toBe(200);
    expect(list.text).toBe(JSON.stringify([envProvider]));
    const one = await call("GET", "/providers/env", { token: tokens.ed });
    expect(one.status).toBe(200);
    expect(one.text).toBe(JSON.stringify(envProvider));
    expect((await call("GET", "/providers/vault")).json).toEqual({ message: "not found", code: 2 });
    expect((await call("GET", "/providers", { token: "" })).json).toEqual({
      message: "bad credentials",
      code: 5,
    });
  });

  it("decrypts a Sensu secret with provider env for a service account in its decrypters", async () => {
    expect(
      (
        await call("PUT", "/namespaces/ops/secrets/db", {
          body: secretBody("db", "APP_OPS__DB_PASSWORD", "env"),
        })
      ).status,
    ).toBe(201);
    // Created through Sensu, the secret has no decrypters: nobody may decrypt it yet.
    expect(await decrypt("billing", "db")).toEqual({ case: "error", value: "not authorized" });

    await allow("db", ["billing"]);
    expect(await decrypt("billing", "db")).toEqual({ case: "value", value: "s3cret" });
    expect(await decrypt("stranger", "db")).toEqual({ case: "error", value: "not authorized" });

    // Later Sensu PUTs keep the decrypters and may move the reference.
    expect(
      (
        await call("PUT", "/namespaces/ops/secrets/db", {
          token: tokens.ed,
          body: secretBody("db", "APP_OPS__OTHER", "env", { rotated: "yes" }),
        })
      ).status,
    ).toBe(201);
    expect(await decrypt("billing", "db")).toEqual({ case: "value", value: "other value" });
    const got = (await rpc().getSecret({ namespace: "ops", name: "db" })).secret;
    expect(got?.decrypters).toEqual(["billing"]);
    expect(got?.labels).toEqual({ rotated: "yes" });

    // Users never decrypt, not even an admin.
    const asAdmin = await rpc().decryptSecrets({ namespace: "ops", names: ["db"] });
    expect(asAdmin.results.db?.result).toEqual({ case: "error", value: "not authorized" });
  });

  it("resolves only variables under the prefix and the namespace's scope, never seald's own", async () => {
    // Outside the namespace's scope (APP_OPS__): refused when written, in Sensu's words.
    for (const [name, id] of [
      ["boot", "SEALD_BOOTSTRAP_TOKEN"],
      ["home", "HOME"],
      ["theirs", "APP_TEAM_B__TOKEN"],
    ] as const) {
      const res = await call("PUT", `/namespaces/ops/secrets/${name}`, {
        body: secretBody(name, id, "env"),
      });
      expect(res.status, id).toBe(400);
      expect(res.json.message).toMatch(
        /^spec\.id: the env provider resolves only variables starting with "APP_OPS__"/,
      );
      expect((await call("GET", `/namespaces/ops/secrets/${name}`)).status).toBe(404);
    }
    // In scope but not set: stored, and fails to decrypt.
    expect(
      (
        await call("PUT", "/namespaces/ops/secrets/unset", {
          body: secretBody("unset", "APP_OPS__NOT_SET", "env"),
        })
      ).status,
    ).toBe(201);
    await allow("unset", ["billing"]);
    expect(await decrypt("billing", "unset")).toEqual({
      case: "error",
      value: "decryption failed",
    });
  });

  it("resolves through the provider a secret names, which may come later", async () => {
    expect(
      (
        await call("PUT", "/namespaces/ops/secrets/later", {
          body: secretBody("later", "APP_OPS__DB_PASSWORD", "local"),
        })
      ).status,
    ).toBe(201);
    await allow("later", ["billing"]);
    expect(await decrypt("billing", "later")).toEqual({
      case: "error",
      value: "decryption failed",
    });

    const local = { type: "Env", api_version: "secrets/v1", metadata: { name: "local" }, spec: {} };
    // Providers are administration: an editor may read them, not write them.
    const denied = await call("PUT", "/providers/local", { token: tokens.ed, body: local });
    expect(denied.status).toBe(403);
    expect(denied.json).toEqual({ message: "unauthorized to perform action", code: 4 });
    expect((await call("GET", "/providers/local")).status).toBe(404);

    expect((await call("PUT", "/providers/local", { body: local })).status).toBe(201);
    expect((await call("PUT", "/providers/local", { body: local })).status).toBe(201);
    expect(await decrypt("billing", "later")).toEqual({ case: "value", value: "s3cret" });
    expect((await call("GET", "/providers/local", { token: tokens.ed })).text).toBe(
      JSON.stringify({ ...local, metadata: { name: "local", created_by: "admin" } }),
    );

    expect((await call("DELETE", "/providers/local", { token: tokens.ed })).status).toBe(403);
    const deleted = await call("DELETE", "/providers/local");
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe("");
    expect((await call("GET", "/providers/local")).status).toBe(404);
    expect((await call("DELETE", "/providers/local")).json).toEqual({
      message: "not found",
      code: 2,
    });
    expect(await decrypt("billing", "later")).toEqual({
      case: "error",
      value: "decryption failed",
    });
  });

  it("lets the default provider be deleted and created again, as Sensu's Ansible module does", async () => {
    expect(await decrypt("billing", "db")).toEqual({ case: "value", value: "other value" });
    expect((await call("DELETE", "/providers/env")).status).toBe(204);
    expect((await call("GET", "/providers")).text).toBe("[]");
    expect((await call("GET", "/providers/env")).status).toBe(404);
    expect(await decrypt("billing", "db")).toEqual({ case: "error", value: "decryption failed" });

    // The Ansible collection's exact payload for sensu.sensu_go.secrets_provider_env.
    const res = await call("PUT", "/providers/env", { body: envProvider });
    expect(res.status).toBe(201);
    expect(res.text).toBe("");
    expect(await decrypt("billing", "db")).toEqual({ case: "value", value: "other value" });
    expect((await call("GET", "/providers/env")).json.metadata).toEqual({
      name: "env",
      created_by: "admin",
    });
  });

  it("refuses unsupported types and bad provider bodies with 400, storing nothing", async () => {
    const vault = {
      type: "VaultProvider",
      api_version: "secrets/v1",
      metadata: { name: "vault" },
      spec: { client: { address: "https://vault.example.com:8200", token: "x" } },
    };
    const res = await call("PUT", "/providers/vault", { body: vault });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({
      message: 'type: unsupported provider type "VaultProvider"; supported: Env',
      code: 1,
    });
    const cases: [string, unknown, string][] = [
      [
        "x",
        { ...envProvider, metadata: { name: "x" }, type: undefined },
        'unsupported provider type ""; supported: Env',
      ],
      [
        "x",
        { ...envProvider, metadata: { name: "y" } },
        "the name of the resource (y) does not match the name of the URI (x)",
      ],
      [
        "x",
        { ...envProvider, metadata: { name: "x", namespace: "default" } },
        "metadata.namespace must be empty: providers are cluster-wide",
      ],
      [
        "x",
        { ...envProvider, metadata: { name: "x" }, api_version: "core/v2" },
        'api_version must be "secrets/v1", not "core/v2"',
      ],
      [
        "x",
        { ...envProvider, metadata: { name: "x" }, spec: { path: "/" } },
        "spec: the Env provider takes no settings",
      ],
      [
        "x",
        { ...envProvider, metadata: { name: "x", labels: { "bad key": "b" } } },
        'metadata.labels["bad key"]: keys are 1 to 317 characters without whitespace',
      ],
      [
        "x",
        { ...envProvider, metadata: { name: "x", annotations: { a: 7 } } },
        'metadata.annotations["a"] must be a string',
      ],
      [
        "x",
        { ...envProvider, metadata: { name: "x" }, spec: { $where: "1" } },
        `spec: key "$where" must not start with '$'`,
      ],
      [
        "system",
        { ...envProvider, metadata: { name: "system" } },
        'metadata.name: "system" is reserved',
      ],
      ["a%20b", { ...envProvider, metadata: {} }, 'metadata.name: "a b" is not a valid name'],
      ["x", "{", "JSON"],
    ];
    for (const [name, body, message] of cases) {
      const bad = await call("PUT", `/providers/${name}`, { body });
      expect(bad.status, message).toBe(400);
      expect(bad.json.code).toBe(1);
      expect(bad.json.message).toContain(message);
    }
    expect(
      (await call("GET", "/providers")).json.map(
        (p: { metadata: { name: string } }) => p.metadata.name,
      ),
    ).toEqual(["env"]);
  });

  it("filters and pages providers", async () => {
    for (const name of ["alpha", "beta", "gamma"]) {
      expect(
        (await call("PUT", `/providers/${name}`, { body: { ...envProvider, metadata: { name } } }))
          .status,
      ).toBe(201);
    }
    const names = async (query: string) => {
      const res = await call("GET", `/providers?${query}`, { token: tokens.ed });
      expect(res.status, `${query}: ${res.text}`).toBe(200);
      return res.json.map((p: { metadata: { name: string } }) => p.metadata.name);
    };
    // Sensu's `types`: providers of any of the types named.
    expect(await names("types=Env")).toEqual(expect.arrayContaining(["alpha", "beta", "gamma"]));
    expect(await names("types=VaultProvider")).toEqual([]);
    expect(await names("types=VaultProvider&types=Env")).toEqual(await names("types=Env"));
    const field = (e: string) => names(`fieldSelector=${encodeURIComponent(e)}`);
    const label = (e: string) => names(`labelSelector=${encodeURIComponent(e)}`);
    expect(await names("")).toEqual(["alpha", "beta", "env", "gamma"]);
    expect(await field("provider.name == beta")).toEqual(["beta"]);
    expect(await field("provider.name != beta")).toEqual(["alpha", "env", "gamma"]);
    expect(await field("provider.name in [alpha, env]")).toEqual(["alpha", "env"]);
    expect(await field("provider.name notin [alpha, env]")).toEqual(["beta", "gamma"]);
    expect(await field("provider.name matches a && provider.name != alpha")).toEqual([
      "beta",
      "gamma",
    ]);
    expect(await field('provider.name matches ".*"')).toEqual([]);
    expect(await field("provider.type == Env")).toEqual([]);
    expect(await field("provider.type != Env")).toEqual(["alpha", "beta", "env", "gamma"]);
    expect(await label("region == eu")).toEqual([]);
    expect(await label("region != eu")).toEqual(["alpha", "beta", "env", "gamma"]);
    const bad = await call(
      "GET",
      `/providers?fieldSelector=${encodeURIComponent("provider.name =")}`,
    );
    expect(bad.json).toEqual({
      message: "could not parse the operations: expected '==' but found '=' at position 14",
      code: 1,
    });

    const seen: string[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const res: Reply = await call(
        "GET",
        `/providers?limit=3${token ? `&continue=${token}` : ""}`,
      );
      seen.push(...res.json.map((p: { metadata: { name: string } }) => p.metadata.name));
      token = res.headers.get("sensu-continue");
      pages++;
    } while (token && pages < 5);
    expect(pages).toBe(2);
    expect(seen).toEqual(["alpha", "beta", "env", "gamma"]);
  });

  it("keeps the labels and annotations sensuctl writes, renders and replaces them, selects by them", async () => {
    // What `sensuctl create -f` sends: it always adds the managed_by label.
    const written = {
      type: "Env",
      api_version: "secrets/v1",
      metadata: {
        name: "labelled",
        labels: { "sensu.io/managed_by": "sensuctl", region: "eu-west" },
        annotations: { "example.com/owner": "ops team" },
      },
      spec: {},
    };
    const put = await call("PUT", "/providers/labelled", { body: written });
    expect(put.status, put.text).toBe(201);
    const got = await call("GET", "/providers/labelled", { token: tokens.ed });
    expect(got.status).toBe(200);
    expect(got.json).toEqual({
      ...written,
      metadata: { ...written.metadata, created_by: "admin" },
    });
    // Keys in Sensu's order, labels and annotations after created_by, as on secrets.
    expect(Object.keys(got.json.metadata)).toEqual(["name", "created_by", "labels", "annotations"]);
    const listed = await call("GET", "/providers");
    const item = listed.json.find(
      (p: { metadata: { name: string } }) => p.metadata.name === "labelled",
    );
    expect(item.metadata.labels).toEqual(written.metadata.labels);
    expect(item.metadata.annotations).toEqual(written.metadata.annotations);
    // A provider written without them shows none.
    expect((await call("GET", "/providers/env")).json.metadata).not.toHaveProperty("labels");

    const names = async (query: string) => {
      const res = await call("GET", `/providers?${query}`);
      expect(res.status, `${query}: ${res.text}`).toBe(200);
      return res.json.map((p: { metadata: { name: string } }) => p.metadata.name);
    };
    const label = (e: string) => names(`labelSelector=${encodeURIComponent(e)}`);
    expect(await label('"sensu.io/managed_by" == sensuctl')).toEqual(["labelled"]);
    expect(await label('region in ["eu-west", us]')).toEqual(["labelled"]);
    expect(await label("region matches west")).toEqual(["labelled"]);
    expect(await label('region != "eu-west"')).not.toContain("labelled");
    expect(await label('region != "eu-west"')).toContain("env");
    expect(
      await names(`fieldSelector=${encodeURIComponent('provider.labels.region == "eu-west"')}`),
    ).toEqual(["labelled"]);

    // A PUT replaces them, as it replaces a secret's: the old label no longer selects it.
    const replaced = { ...written, metadata: { name: "labelled", labels: { region: "us" } } };
    expect((await call("PUT", "/providers/labelled", { body: replaced })).status).toBe(201);
    expect((await call("GET", "/providers/labelled")).json.metadata).toEqual({
      name: "labelled",
      created_by: "admin",
      labels: { region: "us" },
    });
    expect(await label('"sensu.io/managed_by" == sensuctl')).toEqual([]);
    expect((await call("DELETE", "/providers/labelled")).status).toBe(204);
  });
});

describe("Sensu env-backed secrets without a prefix", () => {
  let seald: Seald;
  let tokens: Record<string, string>;
  const call = sensu(() => seald);

  beforeAll(async () => {
    ({ seald, tokens } = await startServer(undefined));
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("resolves nothing, even for an authorised service account", async () => {
    expect(
      (
        await call("PUT", "/namespaces/ops/secrets/db", {
          body: secretBody("db", "APP_OPS__DB_PASSWORD", "env"),
        })
      ).status,
    ).toBe(201);
    const admin = client(SecretsService, seald.url, adminToken);
    const got = (await admin.getSecret({ namespace: "ops", name: "db" })).secret;
    await admin.updateSecret({
      secret: {
        namespace: "ops",
        name: "db",
        keeper: "env",
        ref: "APP_OPS__DB_PASSWORD",
        decrypters: ["billing"],
      },
      expectedResourceVersion: got?.resourceVersion ?? "",
    });
    const res = await client(SecretsService, seald.url, tokens.billing ?? "").decryptSecrets({
      namespace: "ops",
      names: ["db"],
    });
    expect(res.results.db?.result).toEqual({ case: "error", value: "decryption failed" });
  });
});
