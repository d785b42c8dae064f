/**
 * The Grafana SecureValue API end to end: a real server, the real test database, real fetch.
 * Life cycle, validation at each boundary, decryption through DecryptSecrets, update semantics,
 * errors in Kubernetes Status form, and Grafana's 401.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { client } from "../harness/clients.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";
import { secureValue } from "./securevalue.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field.
type Json = any;

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Json;
}

const prefix = "/apis/secret.grafana.app/v1beta1";
const unauthorized = {
  message: "Unauthorized",
  messageId: "auth.unauthorized",
  statusCode: 401,
  traceID: "",
};
const rfc3339Utc = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

describe("Grafana SecureValue API", () => {
  let seald: Seald;
  const tokens: Record<string, string> = { admin: adminToken };
  const bodies: string[] = [];
  const plaintexts: string[] = [];

  /** A distinctive plaintext, remembered so that every response can be searched for it. */
  const secret = (label: string) => {
    const v = `${label}-${Math.random().toString(36).slice(2)}-plaintext`;
    plaintexts.push(v);
    return v;
  };

  /** Calls the API as `who` (a principal's name, a raw Authorization header, or nobody). */
  async function call(
    method: string,
    path: string,
    options: { as?: string | null; body?: unknown; raw?: string; authorization?: string } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { accept: "application/json" };
    const who = options.as === undefined ? "ed" : options.as;
    if (options.authorization !== undefined) headers.authorization = options.authorization;
    else if (who !== null) headers.authorization = `Bearer ${tokens[who] ?? "unknown"}`;
    let payload: string | undefined = options.raw;
    if (options.body !== undefined) payload = JSON.stringify(options.body);
    if (payload !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${seald.url}${path}`, {
      method,
      headers,
      ...(payload === undefined ? {} : { body: payload }),
    });
    const text = await res.text();
    bodies.push(text);
    let body: Json;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, text, body };
  }

  const collection = (ns = "team-a") => `${prefix}/namespaces/${ns}/securevalues`;
  const item = (name: string, ns = "team-a") => `${collection(ns)}/${name}`;
  const sv = secureValue;
  const create = (name: string, spec: Record<string, unknown>, as = "ed") =>
    call("POST", collection(), { as, body: sv(name, spec) });

  const decrypt = async (who: string, name: string, namespace = "team-a") => {
    const res = await client(SecretsService, seald.url, tokens[who] ?? "").decryptSecrets({
      namespace,
      names: [name],
    });
    return res.results[name]?.result;
  };

  /** Expects a 400 Invalid Status whose causes name exactly these fields, and nothing stored. */
  async function expectInvalid(reply: Reply, fields: string[], stored?: string) {
    expect(reply.status, reply.text).toBe(400);
    expect(reply.body).toMatchObject({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      reason: "Invalid",
      details: { group: "secret.grafana.app", kind: "securevalues" },
      code: 400,
    });
    expect(reply.body.details.causes.map((c: Json) => c.field)).toEqual(fields);
    for (const cause of reply.body.details.causes) expect(cause.message).not.toBe("");
    if (stored !== undefined) expect((await call("GET", item(stored))).status).toBe(404);
  }

  function expectStatus(reply: Reply, code: number, reason: string, message?: string) {
    expect(reply.status, reply.text).toBe(code);
    expect(reply.body).toMatchObject({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      reason,
      details: { group: "secret.grafana.app", kind: "securevalues" },
      code,
    });
    if (message !== undefined) expect(reply.body.message).toBe(message);
  }

  beforeAll(async () => {
    seald = await startTestSeald({ database: uniqueDatabase("grafana") });
    const admin = client(AccessService, seald.url, adminToken);
    const principals: [string, PrincipalKind, string | undefined][] = [
      ["ed", PrincipalKind.USER, "editor"],
      ["rita", PrincipalKind.USER, "reader"],
      ["billing", PrincipalKind.SERVICE_ACCOUNT, "decrypter"],
      ["stranger", PrincipalKind.SERVICE_ACCOUNT, "decrypter"],
      ["nobody", PrincipalKind.USER, undefined],
    ];
    for (const [name, kind, role] of principals) {
      await admin.createPrincipal({ principal: { name, kind } });
      if (role) await admin.grantRole({ binding: { principal: name, role, namespace: "team-a" } });
      tokens[name] = (await admin.createToken({ principal: name })).secret;
    }
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("runs the whole life cycle, the value decrypting through DecryptSecrets at each step", async () => {
    const first = secret("first");
    const created = await create("db-password", {
      description: "the database password",
      value: first,
      decrypters: ["billing"],
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      apiVersion: "secret.grafana.app/v1beta1",
      kind: "SecureValue",
      metadata: { name: "db-password", namespace: "team-a" },
      spec: { description: "the database password", decrypters: ["billing"] },
      status: { version: 1, keeper: "system" },
    });
    expect(created.body.spec).not.toHaveProperty("value");
    expect(created.body.metadata.creationTimestamp).toMatch(rfc3339Utc);
    const uid = created.body.metadata.uid;

    const got = await call("GET", item("db-password"));
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);

    const listed = await call("GET", collection());
    expect(listed.status).toBe(200);
    expect(listed.body.kind).toBe("SecureValueList");
    expect(listed.body.items).toContainEqual(created.body);

    // Without a value the stored one is kept, and so is its version.
    const kept = await call("PUT", item("db-password"), {
      body: sv("db-password", { description: "renamed", decrypters: ["billing"] }),
    });
    expect(kept.status, kept.text).toBe(200);
    expect(kept.body.spec.description).toBe("renamed");
    expect(kept.body.status.version).toBe(1);
    expect(kept.body.metadata.uid).toBe(uid);
    expect(await decrypt("billing", "db-password")).toEqual({ case: "value", value: first });

    const second = secret("second");
    const rotated = await call("PUT", item("db-password"), {
      body: sv("db-password", { description: "renamed", value: second, decrypters: ["billing"] }),
    });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.status.version).toBe(2);
    expect(await decrypt("billing", "db-password")).toEqual({ case: "value", value: second });

    const deleted = await call("DELETE", item("db-password"));
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      details: { name: "db-password", kind: "SecureValue" },
      code: 200,
    });
    expectStatus(
      await call("GET", item("db-password")),
      404,
      "NotFound",
      'securevalues.secret.grafana.app "db-password" not found',
    );
    expect((await call("GET", item("db-password"))).body.details.name).toBe("db-password");
    expectStatus(await call("DELETE", item("db-password")), 404, "NotFound");
    // billing may decrypt but not read: a deleted name answers as one it may not decrypt.
    expect(await decrypt("billing", "db-password")).toEqual({
      case: "error",
      value: "not authorized",
    });

    const third = secret("third");
    const again = await create("db-password", { description: "again", value: third });
    expect(again.status, again.text).toBe(201);
    expect(again.body.metadata.uid).not.toBe(uid);
    expect(again.body.status.version).toBe(1);
  });

  it("lets only a service account named in the decrypters decrypt", async () => {
    const value = secret("allowlist");
    expect(
      (await create("allowlisted", { description: "d", value, decrypters: ["billing"] })).status,
    ).toBe(201);
    expect(await decrypt("billing", "allowlisted")).toEqual({ case: "value", value });
    // Same role, not in the decrypters; a user with write access; an admin: none of them.
    for (const who of ["stranger", "ed", "admin"]) {
      expect(await decrypt(who, "allowlisted"), who).toEqual({
        case: "error",
        value: "not authorized",
      });
    }
  });

  it("shows a secure value created here in the Sensu view, without its value", async () => {
    const value = secret("sensu");
    expect((await create("seen-by-sensu", { description: "d", value })).status).toBe(201);
    const sensu = await call(
      "GET",
      "/api/enterprise/secrets/v1/namespaces/team-a/secrets/seen-by-sensu",
    );
    expect(sensu.status, sensu.text).toBe(200);
    expect(sensu.body).toMatchObject({
      type: "Secret",
      metadata: { name: "seen-by-sensu", namespace: "team-a", created_by: "ed" },
      spec: { provider: "system" },
    });
  });

  it("sets createdBy, updatedBy and updatedTimestamp itself and ignores client-sent copies", async () => {
    const forged = {
      "grafana.app/createdBy": "mallory",
      "grafana.app/updatedBy": "mallory",
      "grafana.app/updatedTimestamp": "1999-01-01T00:00:00Z",
      note: "kept",
    };
    const created = await call("POST", collection(), {
      body: sv(
        "annotated",
        { description: "d", value: secret("annotated") },
        { annotations: forged, labels: { app: "web" } },
      ),
    });
    expect(created.status, created.text).toBe(201);
    const a = created.body.metadata.annotations;
    expect(a).toEqual({
      note: "kept",
      "grafana.app/createdBy": "ed",
      "grafana.app/updatedBy": "ed",
      "grafana.app/updatedTimestamp": expect.stringMatching(rfc3339Utc),
    });
    expect(a["grafana.app/updatedTimestamp"]).not.toBe("1999-01-01T00:00:00Z");
    expect(created.body.metadata.labels).toEqual({ app: "web" });

    // An admin replaces it: updatedBy changes, createdBy stays, labels and annotations are replaced.
    const updated = await call("PUT", item("annotated"), {
      as: "admin",
      body: sv("annotated", { description: "d2" }, { annotations: forged }),
    });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body.metadata.annotations).toMatchObject({
      note: "kept",
      "grafana.app/createdBy": "ed",
      "grafana.app/updatedBy": "admin",
    });
    expect(updated.body.metadata).not.toHaveProperty("labels");
    expect((await call("GET", item("annotated"))).body).toEqual(updated.body);
    // The forged copies were dropped, not merely hidden: the stored annotations do not hold them.
    const stored = await client(SecretsService, seald.url, adminToken).getSecret({
      namespace: "team-a",
      name: "annotated",
    });
    expect(stored.secret?.annotations).toEqual({ note: "kept" });
    expect(stored.secret?.createdBy).toBe("ed");
  });

  it("generates a name from metadata.generateName", async () => {
    const created = await call("POST", collection(), {
      body: {
        metadata: { generateName: "api-key-" },
        spec: { description: "d", value: secret("gen") },
      },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.metadata.name).toMatch(/^api-key-[a-z0-9]{5}$/);
    expect((await call("GET", item(created.body.metadata.name))).status).toBe(200);
    const another = await call("POST", collection(), {
      body: {
        metadata: { generateName: "api-key-" },
        spec: { description: "d", value: secret("gen") },
      },
    });
    expect(another.body.metadata.name).not.toBe(created.body.metadata.name);

    await expectInvalid(
      await call("POST", collection(), {
        body: {
          metadata: { generateName: "Not_Valid-" },
          spec: { description: "d", value: secret("gen") },
        },
      }),
      ["metadata.generateName"],
    );
    await expectInvalid(
      await call("POST", collection(), {
        body: { spec: { description: "d", value: secret("gen") } },
      }),
      ["metadata.name"],
    );
  });

  it("keeps kubectl's last-applied configuration without spec.value, so GET never returns it", async () => {
    const value = secret("applied");
    const annotation = "kubectl.kubernetes.io/last-applied-configuration";
    const body = (v: string, description: string) => ({
      apiVersion: "secret.grafana.app/v1beta1",
      kind: "SecureValue",
      metadata: { name: "applied", namespace: "team-a" },
      spec: { description, value: v, decrypters: ["billing"] },
    });
    const applied = (v: string, description: string) => ({
      ...body(v, description),
      metadata: {
        ...body(v, description).metadata,
        annotations: { [annotation]: JSON.stringify(body(v, description)), note: "kept" },
      },
    });
    const created = await call("POST", collection(), { body: applied(value, "first") });
    expect(created.status, created.text).toBe(201);
    const got = await call("GET", item("applied"));
    expect(got.text).not.toContain(value);
    const kept = JSON.parse(got.body.metadata.annotations[annotation]);
    expect(kept.spec).toEqual({ description: "first", decrypters: ["billing"] });
    expect(kept.metadata.name).toBe("applied");
    expect(got.body.metadata.annotations.note).toBe("kept");
    expect(await decrypt("billing", "applied")).toEqual({ case: "value", value });
    // A second apply (PUT) the same; an annotation that is not a JSON object is dropped whole.
    const next = secret("applied-again");
    const replaced = await call("PUT", item("applied"), { body: applied(next, "second") });
    expect(replaced.status, replaced.text).toBe(200);
    expect(replaced.text).not.toContain(next);
    const broken = {
      ...body(next, "third"),
      metadata: { name: "applied", annotations: { [annotation]: `{"spec":{"value":"${next}"` } },
    };
    const third = await call("PUT", item("applied"), { body: broken });
    expect(third.status, third.text).toBe(200);
    expect(third.body.metadata.annotations?.[annotation]).toBeUndefined();
    expect(third.text).not.toContain(next);
  });

  it("answers 409 AlreadyExists for a taken name, keeping the stored value", async () => {
    const value = secret("taken");
    expect(
      (await create("taken", { description: "d", value, decrypters: ["billing"] })).status,
    ).toBe(201);
    const again = await create("taken", {
      description: "other",
      value: secret("taken2"),
      decrypters: ["billing"],
    });
    expectStatus(
      again,
      409,
      "AlreadyExists",
      'securevalues.secret.grafana.app "taken" already exists',
    );
    expect(again.body.details.name).toBe("taken");
    expect(await decrypt("billing", "taken")).toEqual({ case: "value", value });
  });

  describe("validation, each rule at its boundary", () => {
    it("spec.description: 1 to 25 characters", async () => {
      expect(
        (await create("desc-25", { description: "d".repeat(25), value: secret("v") })).status,
      ).toBe(201);
      // Characters, not bytes: 25 two-byte characters fit.
      expect(
        (await create("desc-25-wide", { description: "é".repeat(25), value: secret("v") })).status,
      ).toBe(201);
      await expectInvalid(
        await create("desc-26", { description: "d".repeat(26), value: secret("v") }),
        ["spec.description"],
        "desc-26",
      );
      await expectInvalid(
        await create("desc-0", { description: "", value: secret("v") }),
        ["spec.description"],
        "desc-0",
      );
      await expectInvalid(
        await create("desc-none", { value: secret("v") }),
        ["spec.description"],
        "desc-none",
      );
    });

    it("spec.value: required, at most 24576 bytes", async () => {
      const marker = secret("big");
      const fill = (bytes: number) => marker + "x".repeat(bytes - marker.length);
      expect(
        (
          await create("value-24576", {
            description: "d",
            value: fill(24576),
            decrypters: ["billing"],
          })
        ).status,
      ).toBe(201);
      expect(await decrypt("billing", "value-24576")).toEqual({
        case: "value",
        value: fill(24576),
      });
      // Bytes, not characters: 8192 three-byte characters are exactly the limit.
      expect(
        (await create("value-wide", { description: "d", value: "€".repeat(8192) })).status,
      ).toBe(201);
      await expectInvalid(
        await create("value-24577", { description: "d", value: fill(24577) }),
        ["spec.value"],
        "value-24577",
      );
      await expectInvalid(
        await create("value-wide-1", { description: "d", value: `${"€".repeat(8192)}x` }),
        ["spec.value"],
        "value-wide-1",
      );
      await expectInvalid(
        await create("value-none", { description: "d" }),
        ["spec.value"],
        "value-none",
      );
      await expectInvalid(
        await create("value-empty", { description: "d", value: "" }),
        ["spec.value"],
        "value-empty",
      );
    });

    it("spec.decrypters: at most 64, unique, each a label value", async () => {
      const many = (n: number) => Array.from({ length: n }, (_, i) => `svc-${i}`);
      const ok = await create("dec-64", {
        description: "d",
        value: secret("v"),
        decrypters: many(64),
      });
      expect(ok.status, ok.text).toBe(201);
      expect(ok.body.spec.decrypters).toEqual(many(64));
      const tooMany = await create("dec-65", {
        description: "d",
        value: secret("v"),
        decrypters: many(65),
      });
      await expectInvalid(tooMany, ["spec.decrypters"], "dec-65");
      await expectInvalid(
        await create("dec-dup", { description: "d", value: secret("v"), decrypters: ["a", "a"] }),
        ["spec.decrypters[1]"],
        "dec-dup",
      );
      await expectInvalid(
        await create("dec-bad", {
          description: "d",
          value: secret("v"),
          decrypters: ["ok", "-bad"],
        }),
        ["spec.decrypters[1]"],
        "dec-bad",
      );
      const long = await create("dec-63", {
        description: "d",
        value: secret("v"),
        decrypters: ["a".repeat(63)],
      });
      expect(long.status).toBe(201);
      await expectInvalid(
        await create("dec-64c", {
          description: "d",
          value: secret("v"),
          decrypters: ["a".repeat(64)],
        }),
        ["spec.decrypters[0]"],
        "dec-64c",
      );
    });

    it("metadata.name and metadata.namespace: DNS-1123 subdomains of at most 253 characters", async () => {
      const name253 = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
      expect(name253).toHaveLength(253);
      expect((await create(name253, { description: "d", value: secret("v") })).status).toBe(201);
      await expectInvalid(await create(`${name253}e`, { description: "d", value: secret("v") }), [
        "metadata.name",
      ]);
      for (const bad of ["Upper", "under_score", "colon:name", "-dash", "dot."]) {
        await expectInvalid(await create(bad, { description: "d", value: secret("v") }), [
          "metadata.name",
        ]);
      }
      expect((await call("GET", item("Upper"))).status).toBe(404);
      // The admin may write anywhere, so the namespace rule is what refuses this.
      const badNs = await call("POST", collection("Team_A"), {
        as: "admin",
        body: sv("fine", { description: "d", value: secret("v") }),
      });
      await expectInvalid(badNs, ["metadata.namespace"]);
      expect((await call("GET", item("fine", "Team_A"), { as: "admin" })).status).toBe(404);
    });

    it("metadata.labels and metadata.annotations: Kubernetes syntax", async () => {
      const labels = {
        app: "web",
        "app.kubernetes.io/name": "db",
        empty: "",
        [`${"k".repeat(63)}`]: "v".repeat(63),
      };
      const ok = await call("POST", collection(), {
        body: sv("labelled", { description: "d", value: secret("v") }, { labels }),
      });
      expect(ok.status, ok.text).toBe(201);
      expect(ok.body.metadata.labels).toEqual(labels);
      const cases: [Record<string, unknown>, string][] = [
        [{ labels: { app: "v".repeat(64) } }, "metadata.labels[app]"],
        [{ labels: { app: "has space" } }, "metadata.labels[app]"],
        [{ labels: { "Bad_Prefix/x": "v" } }, "metadata.labels[Bad_Prefix/x]"],
        [{ labels: { [`${"k".repeat(64)}`]: "v" } }, `metadata.labels[${"k".repeat(64)}]`],
        [{ annotations: { "not a key": "v" } }, "metadata.annotations[not a key]"],
      ];
      for (const [metadata, field] of cases) {
        await expectInvalid(
          await call("POST", collection(), {
            body: sv("bad-labels", { description: "d", value: secret("v") }, metadata),
          }),
          [field],
          "bad-labels",
        );
      }
    });

    it("names every bad field in one answer", async () => {
      const reply = await call("POST", collection(), {
        body: sv(
          "many-bad",
          { description: "x".repeat(26), value: secret("v"), decrypters: ["a", "a"] },
          { labels: { app: "bad value" } },
        ),
      });
      await expectInvalid(
        reply,
        ["spec.description", "metadata.labels[app]", "spec.decrypters[1]"],
        "many-bad",
      );
      expect(reply.body.message).toMatch(
        /^SecureValue\.secret\.grafana\.app "many-bad" is invalid: \[/,
      );
    });

    it("value and ref are exclusive; a ref needs a keeper that holds it", async () => {
      await expectInvalid(
        await create("both", { description: "d", value: secret("v"), ref: "SOME_REF" }),
        ["spec.ref"],
        "both",
      );
      await expectInvalid(
        await create("both-env", {
          description: "d",
          value: secret("v"),
          ref: "SOME_REF",
          keeper: "env",
        }),
        ["spec.value"],
        "both-env",
      );
      const byRef = await create("by-ref", {
        description: "d",
        ref: "SEALD_TEST_REF",
        keeper: "env",
      });
      expect(byRef.status, byRef.text).toBe(201);
      expect(byRef.body.spec).toEqual({ description: "d", ref: "SEALD_TEST_REF" });
      expect(byRef.body.status).toEqual({ version: 1, keeper: "env" });
    });

    it("validates replacements too, changing nothing", async () => {
      const value = secret("replace");
      const created = await create("replace-me", {
        description: "d",
        value,
        decrypters: ["billing"],
      });
      const reply = await call("PUT", item("replace-me"), {
        body: sv("replace-me", { description: "d".repeat(26), decrypters: ["billing"] }),
      });
      await expectInvalid(reply, ["spec.description"]);
      expect((await call("GET", item("replace-me"))).body).toEqual(created.body);
    });
  });

  describe("replace (PUT)", () => {
    it("answers 404 for a missing name and does not create it", async () => {
      const reply = await call("PUT", item("never-created"), {
        body: sv("never-created", { description: "d", value: secret("v") }),
      });
      expectStatus(
        reply,
        404,
        "NotFound",
        'securevalues.secret.grafana.app "never-created" not found',
      );
      expect((await call("GET", item("never-created"))).status).toBe(404);
    });

    it("answers 409 Conflict for a stale resourceVersion; without one the last writer wins", async () => {
      const created = await create("cas", { description: "v1", value: secret("v") });
      const rv = created.body.metadata.resourceVersion;
      const fresh = await call("PUT", item("cas"), {
        body: sv("cas", { description: "v2" }, { resourceVersion: rv }),
      });
      expect(fresh.status, fresh.text).toBe(200);
      expect(fresh.body.metadata.resourceVersion).not.toBe(rv);

      const stale = await call("PUT", item("cas"), {
        body: sv("cas", { description: "v3" }, { resourceVersion: rv }),
      });
      expectStatus(
        stale,
        409,
        "Conflict",
        'Operation cannot be fulfilled on securevalues.secret.grafana.app "cas": the object has been modified; please apply your changes to the latest version and try again',
      );
      expect((await call("GET", item("cas"))).body.spec.description).toBe("v2");

      const blind = await call("PUT", item("cas"), { body: sv("cas", { description: "v4" }) });
      expect(blind.status).toBe(200);
      expect((await call("GET", item("cas"))).body.spec.description).toBe("v4");
    });

    it("refuses to switch between a value and a ref", async () => {
      await create("stored", { description: "d", value: secret("v") });
      await expectInvalid(
        await call("PUT", item("stored"), {
          body: sv("stored", { description: "d", ref: "SEALD_X", keeper: "env" }),
        }),
        ["spec.ref"],
      );
      await expectInvalid(
        await call("PUT", item("stored"), {
          body: sv("stored", { description: "d", ref: "SEALD_X" }),
        }),
        ["spec.ref"],
      );
      await create("referenced", { description: "d", ref: "SEALD_Y", keeper: "env" });
      await expectInvalid(
        await call("PUT", item("referenced"), {
          body: sv("referenced", { description: "d", ref: "SEALD_Y", value: secret("v") }),
        }),
        ["spec.value"],
      );
      // Dropping the ref for a value: the ref is still required, and the value not accepted.
      await expectInvalid(
        await call("PUT", item("referenced"), {
          body: sv("referenced", { description: "d", value: secret("v") }),
        }),
        ["spec.ref", "spec.value"],
      );
      expect((await call("GET", item("referenced"))).body.spec.ref).toBe("SEALD_Y");
    });

    it("honours a DeleteOptions resourceVersion precondition", async () => {
      const created = await create("guarded", { description: "d", value: secret("v") });
      const rv = created.body.metadata.resourceVersion;
      await call("PUT", item("guarded"), { body: sv("guarded", { description: "changed" }) });
      const stale = await call("DELETE", item("guarded"), {
        body: { kind: "DeleteOptions", apiVersion: "v1", preconditions: { resourceVersion: rv } },
      });
      expectStatus(stale, 409, "Conflict");
      expect((await call("GET", item("guarded"))).status).toBe(200);
      const current = (await call("GET", item("guarded"))).body.metadata.resourceVersion;
      const ok = await call("DELETE", item("guarded"), {
        body: { preconditions: { resourceVersion: current } },
      });
      expect(ok.status, ok.text).toBe(200);
      expect((await call("GET", item("guarded"))).status).toBe(404);
    });
  });

  describe("bad requests", () => {
    it("malformed JSON is 400 BadRequest and its text is not echoed", async () => {
      const value = secret("malformed");
      const reply = await call("POST", collection(), {
        raw: `{"metadata":{"name":"broken"},"spec":{"description":"d","value":"${value}"`,
      });
      expectStatus(reply, 400, "BadRequest");
      expect(reply.text).not.toContain(value);
      expect((await call("GET", item("broken"))).status).toBe(404);
    });

    it("a body whose name or namespace differs from the URL is 400 BadRequest", async () => {
      await create("pinned", { description: "d", value: secret("v") });
      expectStatus(
        await call("PUT", item("pinned"), { body: sv("other-name", { description: "d" }) }),
        400,
        "BadRequest",
      );
      expectStatus(
        await call("PUT", item("pinned"), {
          body: sv("pinned", { description: "d" }, { namespace: "team-b" }),
        }),
        400,
        "BadRequest",
      );
      expectStatus(
        await call("POST", collection(), {
          body: sv("elsewhere", { description: "d", value: secret("v") }, { namespace: "team-b" }),
        }),
        400,
        "BadRequest",
      );
      expect((await call("GET", item("elsewhere"))).status).toBe(404);
      // The same namespace, spelt out, is fine.
      const same = await call("PUT", item("pinned"), {
        body: sv("pinned", { description: "d2" }, { namespace: "team-a" }),
      });
      expect(same.status).toBe(200);
    });

    it("another apiVersion or kind, or a field of the wrong type, is 400 BadRequest", async () => {
      const value = secret("typed");
      const bodies: unknown[] = [
        { ...sv("typed", { description: "d", value }), apiVersion: "secret.grafana.app/v0alpha1" },
        { ...sv("typed", { description: "d", value }), kind: "Keeper" },
        sv("typed", { description: "d", value, decrypters: "billing" }),
        sv("typed", { description: 7, value }),
        sv("typed", { description: "d", value: 12345678 }),
        sv("typed", { description: "d", value }, { labels: { app: 1 } }),
        [sv("typed", { description: "d", value })],
      ];
      for (const body of bodies) {
        const reply = await call("POST", collection(), { body });
        expectStatus(reply, 400, "BadRequest");
        expect(reply.text).not.toContain("12345678");
      }
      expect((await call("GET", item("typed"))).status).toBe(404);
    });

    it("a body over the size limit is 413", async () => {
      const reply = await call("POST", collection(), {
        body: sv("huge", { description: "d", value: "x".repeat(300 * 1024) }),
      });
      expect(reply.status).toBe(413);
      expect(reply.body).toMatchObject({
        kind: "Status",
        reason: "RequestEntityTooLarge",
        code: 413,
      });
      expect((await call("GET", item("huge"))).status).toBe(404);
    });

    it("a wrong method on a route is 405 with Allow; an unknown path is 404", async () => {
      const patch = await call("PATCH", item("anything"), { body: {} });
      expect(patch.status).toBe(405);
      expect(patch.headers.get("allow")).toBe("GET, PUT, DELETE");
      expect(patch.body).toMatchObject({ kind: "Status", reason: "MethodNotAllowed", code: 405 });
      const del = await call("DELETE", collection());
      expect(del.status).toBe(405);
      expect(del.headers.get("allow")).toBe("GET, POST");
      for (const path of [
        `${prefix}/namespaces/team-a/keepers`,
        `${prefix}/namespaces/team-a/securevalues/a/b`,
        "/apis/secret.grafana.app/v0alpha1/namespaces/team-a/securevalues",
      ]) {
        const reply = await call("GET", path);
        expect(reply.status, path).toBe(404);
        expect(reply.body).toMatchObject({ kind: "Status", reason: "NotFound", code: 404 });
      }
    });

    it("answers watch=true with a 405 Status, never a list", async () => {
      for (const watch of ["true", "1"]) {
        const res = await call("GET", `${collection()}?watch=${watch}`);
        expectStatus(res, 405, "MethodNotAllowed");
      }
    });

    it("serves discovery for the group and its version", async () => {
      const g = await call("GET", "/apis/secret.grafana.app");
      expect(g.status).toBe(200);
      expect(g.body).toMatchObject({
        kind: "APIGroup",
        name: "secret.grafana.app",
        preferredVersion: { groupVersion: "secret.grafana.app/v1beta1", version: "v1beta1" },
      });
      const v = await call("GET", prefix);
      expect(v.status).toBe(200);
      expect(v.body.resources).toEqual([
        expect.objectContaining({ name: "securevalues", kind: "SecureValue", namespaced: true }),
      ]);
    });
  });

  describe("authentication and authorisation", () => {
    it("answers 401 in Grafana's own shape, before anything else, storing nothing", async () => {
      const attempts: [string, string][] = [
        ["POST", collection()],
        ["GET", collection()],
        ["GET", item("anything")],
        ["PUT", item("anything")],
        ["DELETE", item("anything")],
        ["PATCH", item("anything")],
        ["GET", `${prefix}/nowhere`],
      ];
      for (const [method, path] of attempts) {
        const body =
          method === "POST" || method === "PUT"
            ? sv("anything", { description: "d", value: secret("v") })
            : undefined;
        for (const authorization of [
          undefined,
          "Bearer seald_not-a-real-token-000000000000000000000",
          "Basic ZWQ6cHc=",
        ]) {
          const reply = await call(method, path, {
            ...(authorization === undefined ? { as: null } : { authorization }),
            ...(body === undefined ? {} : { body }),
          });
          expect(reply.status, `${method} ${path} ${authorization}`).toBe(401);
          expect(reply.body).toEqual(unauthorized);
        }
      }
      expect((await call("GET", item("anything"))).status).toBe(404);
    });

    it("answers 403 Forbidden in Status form, before 404, and before validation", async () => {
      await create("readable", { description: "d", value: secret("v") });
      expect((await call("GET", item("readable"), { as: "rita" })).status).toBe(200);
      expect((await call("GET", collection(), { as: "rita" })).status).toBe(200);

      const post = await call("POST", collection(), {
        as: "rita",
        body: sv("by-rita", { description: "d".repeat(40), value: secret("v") }),
      });
      expectStatus(
        post,
        403,
        "Forbidden",
        'securevalues.secret.grafana.app "by-rita" is forbidden: User "rita" cannot create resource "securevalues" in API group "secret.grafana.app" in the namespace "team-a"',
      );
      expect(post.body.details.name).toBe("by-rita");
      expectStatus(
        await call("PUT", item("readable"), {
          as: "rita",
          body: sv("readable", { description: "d" }),
        }),
        403,
        "Forbidden",
      );
      expectStatus(await call("DELETE", item("readable"), { as: "rita" }), 403, "Forbidden");
      expect((await call("GET", item("readable"))).status).toBe(200);

      // Without any grant, an existing and a missing name look the same.
      const existing = await call("GET", item("readable"), { as: "nobody" });
      const missing = await call("GET", item("no-such-name"), { as: "nobody" });
      expectStatus(existing, 403, "Forbidden");
      expectStatus(missing, 403, "Forbidden");
      expectStatus(await call("GET", collection(), { as: "nobody" }), 403, "Forbidden");
      expectStatus(await call("GET", collection("team-b")), 403, "Forbidden");
    });

    it("answers 429 TooManyRequests with Retry-After once an address keeps failing", async () => {
      const strict = await startTestSeald({
        database: uniqueDatabase("grafana_429"),
        authMaxFailures: 2,
      });
      try {
        const get = (token: string) =>
          fetch(`${strict.url}${collection()}`, { headers: { authorization: `Bearer ${token}` } });
        for (let i = 0; i < 2; i++) expect((await get(`seald_${"x".repeat(43)}`)).status).toBe(401);
        // Refused now with a good token too, so the refusal is no oracle.
        const refused = await get(adminToken);
        const body = await refused.json();
        expect(refused.status).toBe(429);
        expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
        expect(body).toMatchObject({
          kind: "Status",
          status: "Failure",
          reason: "TooManyRequests",
          code: 429,
          details: { retryAfterSeconds: expect.any(Number) },
        });
      } finally {
        await strict.close();
      }
    });
  });

  it("never returned a value in any response", () => {
    expect(bodies.length).toBeGreaterThan(100);
    for (const body of bodies) {
      for (const plaintext of plaintexts) {
        // The 24576-byte value starts with its marker, so searching for the marker finds it.
        expect(body.includes(plaintext), "a response carried a plaintext").toBe(false);
      }
      expect(body).not.toMatch(/"value"\s*:/);
    }
  });
});
