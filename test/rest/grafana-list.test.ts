/**
 * Listing SecureValues: Kubernetes label and field selectors, and limit/continue paging, over
 * 250 values created through the API, against the real test database.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import type { Seald } from "../../src/app.js";
import { client } from "../harness/clients.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field.
type Json = any;

const count = 250;
const ns = "lists";
const base = `/apis/secret.grafana.app/v1beta1/namespaces/${ns}/securevalues`;

interface Spec {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly decrypters: string[];
}

/** The values to create: three tiers, every fifth "special", alternating decrypters. */
const specs: Spec[] = Array.from({ length: count }, (_, i) => ({
  name: `sv-${String(i).padStart(3, "0")}`,
  labels: {
    tier: ["a", "b", "c"][i % 3] ?? "a",
    ...(i % 5 === 0 ? { special: "" } : {}),
    ...(i % 7 === 0 ? { "app.kubernetes.io/name": "web" } : {}),
  },
  decrypters: i % 2 === 0 ? ["synthetic-monitoring"] : ["provisioning.grafana.app", "other"],
}));
const names = (pred: (s: Spec) => boolean) => specs.filter(pred).map((s) => s.name);
const all = names(() => true);

describe("listing Grafana SecureValues", () => {
  let seald: Seald;
  let token = "";
  const bodies: string[] = [];
  const plaintexts: string[] = [];

  async function get(path: string): Promise<{ status: number; body: Json; text: string }> {
    const res = await fetch(`${seald.url}${path}`, {
      headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, body: JSON.parse(text), text };
  }

  const list = (query: Record<string, string>) => get(`${base}?${new URLSearchParams(query)}`);
  const listNames = async (query: Record<string, string>) => {
    const reply = await list(query);
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body.kind).toBe("SecureValueList");
    return reply.body.items.map((i: Json) => i.metadata.name);
  };

  /** Follows continue tokens to the end, returning each page's names. */
  async function pages(query: Record<string, string>): Promise<string[][]> {
    const out: string[][] = [];
    let token: string | undefined;
    do {
      const reply = await list({ ...query, ...(token ? { continue: token } : {}) });
      expect(reply.status, reply.text).toBe(200);
      out.push(reply.body.items.map((i: Json) => i.metadata.name));
      token = reply.body.metadata.continue;
      expect(out.length).toBeLessThan(100);
    } while (token);
    return out;
  }

  beforeAll(async () => {
    seald = await startTestSeald({ database: uniqueDatabase("grafana_list") });
    const admin = client(AccessService, seald.url, adminToken);
    await admin.createPrincipal({ principal: { name: "lister", kind: PrincipalKind.USER } });
    for (const namespace of [ns, `${ns}-other`]) {
      await admin.grantRole({ binding: { principal: "lister", role: "editor", namespace } });
    }
    token = (await admin.createToken({ principal: "lister" })).secret;

    const post = async (namespace: string, s: Spec) => {
      const value = `list-${s.name}-${Math.random().toString(36).slice(2)}-plaintext`;
      plaintexts.push(value);
      const res = await fetch(
        `${seald.url}/apis/secret.grafana.app/v1beta1/namespaces/${namespace}/securevalues`,
        {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({
            metadata: { name: s.name, labels: s.labels },
            spec: { description: `value ${s.name}`, value, decrypters: s.decrypters },
          }),
        },
      );
      const text = await res.text();
      bodies.push(text);
      if (res.status !== 201) throw new Error(`create ${s.name}: ${res.status} ${text}`);
    };
    for (let i = 0; i < specs.length; i += 10) {
      await Promise.all(specs.slice(i, i + 10).map((s) => post(ns, s)));
    }
    // Values in a neighbouring namespace must never show up.
    for (const s of specs.slice(0, 5)) await post(`${ns}-other`, s);
  }, 120_000);
  afterAll(async () => {
    await seald?.close();
  });

  it("lists every value in the namespace, in name order, without a limit", async () => {
    const reply = await list({});
    expect(reply.status).toBe(200);
    expect(reply.body.metadata.continue).toBeUndefined();
    expect(reply.body.metadata.resourceVersion).toEqual(expect.any(String));
    expect(reply.body.items.map((i: Json) => i.metadata.name)).toEqual(all);
    expect(reply.body.items.every((i: Json) => i.metadata.namespace === ns)).toBe(true);
    expect(await listNames({ limit: "0" })).toEqual(all);
  });

  it("pages with limit and continue, each value exactly once", async () => {
    const got = await pages({ limit: "100" });
    expect(got.map((p) => p.length)).toEqual([100, 100, 50]);
    expect(got.flat()).toEqual(all);
    const odd = await pages({ limit: "7" });
    expect(odd.flat()).toEqual(all);
    expect(odd.at(-1)).toHaveLength(count % 7);
    // Exactly the remaining items: the last page carries no continue.
    expect(await pages({ limit: "250" })).toEqual([all]);
  });

  it("selects by label in Kubernetes syntax", async () => {
    const tier = (t: string) => (s: Spec) => s.labels.tier === t;
    const special = (s: Spec) => "special" in s.labels;
    const cases: [string, string[]][] = [
      ["tier=a", names(tier("a"))],
      ["tier==b", names(tier("b"))],
      ["tier!=a", names((s) => !tier("a")(s))],
      ["tier in (a,c)", names((s) => tier("a")(s) || tier("c")(s))],
      ["tier notin (a,c)", names(tier("b"))],
      ["special", names(special)],
      ["!special", names((s) => !special(s))],
      ["tier=a,special", names((s) => tier("a")(s) && special(s))],
      ["app.kubernetes.io/name=web", names((s) => s.labels["app.kubernetes.io/name"] === "web")],
      [
        "app.kubernetes.io/name!=web,tier in (b)",
        names((s) => tier("b")(s) && !s.labels["app.kubernetes.io/name"]),
      ],
      ["tier=z", []],
    ];
    for (const [labelSelector, expected] of cases) {
      expect(expected.length === 0 || expected.length < count, labelSelector).toBe(true);
      expect(await listNames({ labelSelector }), labelSelector).toEqual(expected);
    }
  });

  it("selects by field: metadata.name, metadata.namespace, spec.decrypter(s)", async () => {
    const sm = names((s) => s.decrypters.includes("synthetic-monitoring"));
    const cases: [string, string[]][] = [
      ["metadata.name=sv-007", ["sv-007"]],
      ["metadata.name==sv-007", ["sv-007"]],
      ["metadata.name!=sv-007", all.filter((n) => n !== "sv-007")],
      [`metadata.namespace=${ns}`, all],
      [`metadata.namespace=${ns}-other`, []],
      ["spec.decrypter=synthetic-monitoring", sm],
      ["spec.decrypters=synthetic-monitoring", sm],
      ["spec.decrypter=other", names((s) => s.decrypters.includes("other"))],
      ["spec.decrypter!=synthetic-monitoring", all.filter((n) => !sm.includes(n))],
      ["spec.decrypter=synthetic-monitoring,metadata.name=sv-001", []],
      ["spec.decrypter=synthetic-monitoring,metadata.name=sv-002", ["sv-002"]],
    ];
    for (const [fieldSelector, expected] of cases) {
      expect(await listNames({ fieldSelector }), fieldSelector).toEqual(expected);
    }
    expect(
      await listNames({
        fieldSelector: "spec.decrypter=synthetic-monitoring",
        labelSelector: "tier=a",
      }),
    ).toEqual(names((s) => s.decrypters.includes("synthetic-monitoring") && s.labels.tier === "a"));
  });

  it("pages through a selection with full pages, so the database does the selecting", async () => {
    const special = names((s) => "special" in s.labels);
    expect(special).toHaveLength(50);
    // Were the selector applied to each page after fetching it, pages would come back short.
    const got = await pages({ labelSelector: "special", limit: "20" });
    expect(got.map((p) => p.length)).toEqual([20, 20, 10]);
    expect(got.flat()).toEqual(special);
    const sm = await pages({ fieldSelector: "spec.decrypter=synthetic-monitoring", limit: "60" });
    expect(sm.map((p) => p.length)).toEqual([60, 60, 5]);
  });

  it("answers 400 BadRequest for bad selectors, limits and continue tokens", async () => {
    const other = await get(
      `/apis/secret.grafana.app/v1beta1/namespaces/${ns}-other/securevalues?limit=2`,
    );
    expect(other.body.items.map((i: Json) => i.metadata.name)).toEqual(["sv-000", "sv-001"]);
    const foreignToken = other.body.metadata.continue;
    expect(foreignToken).toEqual(expect.any(String));
    const bad: Record<string, string>[] = [
      { labelSelector: "tier in (a" },
      { labelSelector: "=a" },
      { fieldSelector: "spec.description=x" },
      { fieldSelector: "metadata.name" },
      { limit: "-1" },
      { limit: "ten" },
      { continue: "not-a-token!" },
      { continue: foreignToken },
    ];
    for (const query of bad) {
      const reply = await list(query);
      expect(reply.status, JSON.stringify(query)).toBe(400);
      expect(reply.body).toMatchObject({
        kind: "Status",
        status: "Failure",
        reason: "BadRequest",
        code: 400,
      });
    }
  });

  it("never returned a value in any response", () => {
    expect(bodies.length).toBeGreaterThan(count);
    const everything = bodies.join("\n");
    for (const plaintext of plaintexts) expect(everything.includes(plaintext)).toBe(false);
    expect(everything).not.toMatch(/"value"\s*:/);
  });
});
