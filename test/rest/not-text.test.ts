/**
 * Invalid UTF-8 is refused, not rewritten (issue #18, item 2): raw HTTP bodies with the bytes
 * 0xFF 0xFE inside a JSON string, or a lone surrogate escape ("\ud800"), on the Connect protocol's
 * JSON, the Sensu PUT and the Grafana POST are a 400 naming the field in each dialect's error
 * format, and nothing is stored (read back). The binary protocols' `string` fields too. Also: the
 * Grafana route refuses a value it cannot carry.
 */
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessService, PrincipalKind } from "../../gen/secrets/v1/access_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { grafanaPrefix } from "../../src/rest/grafana/routes.js";
import { sensuPrefix } from "../../src/rest/sensu/routes.js";
import { client } from "../harness/clients.js";
import { grpcFrame, rawGrpc } from "../harness/raw-grpc.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";

const utf8 = (s: string) => Buffer.from(s, "utf8");
/** A JSON text with the bytes 0xFF 0xFE where `@@` is. */
const badBytes = (json: string) => {
  const [before, after] = json.split("@@") as [string, string];
  return Buffer.concat([utf8(before), Buffer.from([0xff, 0xfe]), utf8(after)]);
};
/** A JSON text with the escape \ud800 (six ASCII characters) where `@@` is. */
const loneSurrogate = (json: string) => utf8(json.replace("@@", "\\ud800"));
const bodies = [
  ["0xFF 0xFE", badBytes],
  ["\\ud800", loneSurrogate],
] as const;
/** What the refusal says, after the field's path. */
const notText = /(is not valid UTF-8|holds a lone surrogate escape)/;

describe("JSON strings that are not text", () => {
  let seald: Seald;
  let billingToken = "";
  const rpc = () => client(SecretsService, seald.url, adminToken);

  beforeAll(async () => {
    seald = await startTestSeald({ database: uniqueDatabase("nottext") });
    const admin = client(AccessService, seald.url, adminToken);
    await admin.createPrincipal({
      principal: { name: "billing", kind: PrincipalKind.SERVICE_ACCOUNT },
    });
    await admin.grantRole({
      binding: { principal: "billing", role: "decrypter", namespace: "team-a" },
    });
    billingToken = (await admin.createToken({ principal: "billing" })).secret;
  });
  afterAll(async () => {
    await seald?.close();
  });

  const post = (path: string, contentType: string, body: Buffer) =>
    fetch(`${seald.url}${path}`, {
      method: "POST",
      headers: { "content-type": contentType, authorization: `Bearer ${adminToken}` },
      body,
    });
  const exists = async (name: string) =>
    (await rpc().listSecrets({ namespace: "team-a" })).secrets.some((s) => s.name === name);

  for (const [label, make] of bodies) {
    it(`refuses ${label} in Connect JSON with invalid_argument naming the field, storing nothing`, async () => {
      const name = `connect-${label === "\\ud800" ? "sur" : "bytes"}`;
      const cases: [string, string][] = [
        [
          `{"secret":{"namespace":"team-a","name":"${name}","value":{"plaintext":"hunter2-@@"}}}`,
          "secret.value.plaintext",
        ],
        [
          `{"secret":{"namespace":"team-a","name":"${name}","labels":{"app":"@@"},"value":{"plaintext":"x"}}}`,
          "secret.labels.app",
        ],
      ];
      for (const [json, field] of cases) {
        const res = await post(
          "/secrets.v1.SecretsService/CreateSecret",
          "application/json",
          make(json),
        );
        const text = await res.text();
        expect(res.status, text).toBe(400);
        const error = JSON.parse(text) as { code: string; message: string };
        expect(error.code).toBe("invalid_argument");
        expect(error.message).toContain(field);
        expect(error.message).toMatch(notText);
        expect(error.message).not.toContain("hunter2");
      }
      expect(await exists(name)).toBe(false);
    });

    it(`refuses ${label} in a Sensu PUT with Sensu's 400 naming the field, storing nothing`, async () => {
      const name = `sensu-${label === "\\ud800" ? "sur" : "bytes"}`;
      const path = `${sensuPrefix}/namespaces/team-a/secrets/${name}`;
      const cases: [string, string][] = [
        [
          `{"type":"Secret","api_version":"secrets/v1","metadata":{"name":"${name}","labels":{"app":"@@"}},"spec":{"id":"X","provider":"env"}}`,
          "metadata.labels.app",
        ],
        [
          `{"type":"Secret","api_version":"secrets/v1","metadata":{"name":"${name}"},"spec":{"id":"SEALD_X_@@","provider":"env"}}`,
          "spec.id",
        ],
      ];
      for (const [json, field] of cases) {
        const res = await fetch(`${seald.url}${path}`, {
          method: "PUT",
          headers: { "content-type": "application/json", authorization: `Key ${adminToken}` },
          body: make(json),
        });
        const body = (await res.json()) as { message: string; code: number };
        expect(res.status, body.message).toBe(400);
        expect(body).toEqual({ message: expect.stringContaining(field), code: 1 });
        expect(body.message).toMatch(notText);
        expect(Object.keys(body)).toEqual(["message", "code"]);
      }
      const read = await fetch(`${seald.url}${path}`, {
        headers: { authorization: `Key ${adminToken}` },
      });
      expect(read.status).toBe(404);
      expect(await read.json()).toEqual({ message: "not found", code: 2 });
    });

    it(`refuses ${label} in a Grafana POST with an Invalid Status naming the field, storing nothing`, async () => {
      const name = `grafana-${label === "\\ud800" ? "sur" : "bytes"}`;
      const cases: [string, string][] = [
        [
          `{"metadata":{"name":"${name}"},"spec":{"description":"d","value":"hunter2-@@"}}`,
          "spec.value",
        ],
        [
          `{"metadata":{"name":"${name}"},"spec":{"description":"d@@","value":"v"}}`,
          "spec.description",
        ],
      ];
      for (const [json, field] of cases) {
        const res = await post(
          `${grafanaPrefix}/v1beta1/namespaces/team-a/securevalues`,
          "application/json",
          make(json),
        );
        const text = await res.text();
        expect(res.status, text).toBe(400);
        expect(text).not.toContain("hunter2");
        expect(JSON.parse(text)).toMatchObject({
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          reason: "Invalid",
          code: 400,
          details: {
            causes: [
              { reason: "FieldValueInvalid", field, message: expect.stringMatching(notText) },
            ],
          },
        });
      }
      const read = await fetch(
        `${seald.url}${grafanaPrefix}/v1beta1/namespaces/team-a/securevalues/${name}`,
        { headers: { authorization: `Bearer ${adminToken}` } },
      );
      expect(read.status).toBe(404);
      expect(((await read.json()) as { message: string }).message).toBe(
        `securevalues.secret.grafana.app "${name}" not found`,
      );
    });
  }

  it("accepts escaped surrogate pairs and a U+FFFD that was really sent, storing them exactly", async () => {
    const name = "grafana-astral";
    const res = await post(
      `${grafanaPrefix}/v1beta1/namespaces/team-a/securevalues`,
      "application/json",
      utf8(
        `{"metadata":{"name":"${name}"},"spec":{"description":"d","decrypters":["billing"],"value":"ok \\ud83d\\ude00 \uFFFD grüße"}}`,
      ),
    );
    expect(res.status, await res.clone().text()).toBe(201);
    const got = await client(SecretsService, seald.url, billingToken).decryptSecrets({
      namespace: "team-a",
      names: [name],
    });
    expect(got.results[name]?.result).toEqual({ case: "value", value: "ok 😀 \uFFFD grüße" });
  });

  it("refuses on the Grafana route a value it cannot carry (spec.value is text)", async () => {
    for (const value of [[104, 105, 0xff], { bytes: "aGk=" }]) {
      const res = await post(
        `${grafanaPrefix}/v1beta1/namespaces/team-a/securevalues`,
        "application/json",
        utf8(
          JSON.stringify({
            metadata: { name: "grafana-binary" },
            spec: { description: "d", value },
          }),
        ),
      );
      const status = (await res.json()) as { reason: string; message: string; code: number };
      expect(res.status).toBe(400);
      expect(status).toMatchObject({ reason: "BadRequest", code: 400 });
      expect(status.message).toMatch(/^spec\.value must be a string: this API carries text values/);
      expect(status.message).toContain("plaintext_bytes");
    }
    expect(await exists("grafana-binary")).toBe(false);
  });

  it("refuses invalid UTF-8 in a binary protobuf string over gRPC, gRPC-Web and Connect, storing nothing", async () => {
    // CreateSecretRequest{secret: Secret{namespace: "team-a", name: "bin-str",
    // value: SecretValue{plaintext: 0xFF 0xFE "x"}}}, encoded by hand: no encoder writes it.
    const field = (tag: number, bytes: Buffer) =>
      Buffer.concat([Buffer.from([tag, bytes.length]), bytes]);
    const secret = Buffer.concat([
      field(0x0a, utf8("team-a")),
      field(0x12, utf8("bin-str")),
      field(0x52, field(0x0a, Buffer.from([0xff, 0xfe, 0x78]))),
    ]);
    const message = field(0x0a, secret);
    const path = "/secrets.v1.SecretsService/CreateSecret";

    const grpc = await rawGrpc(seald.url, path, grpcFrame(message), {
      authorization: `Bearer ${adminToken}`,
    });
    expect(String(grpc.trailers["grpc-status"] ?? grpc.headers["grpc-status"])).toBe("3");

    // Compressed, so that connect's gRPC handler (not the lean path) reads it.
    const compressed = await rawGrpc(seald.url, path, grpcFrame(gzipSync(message), undefined, 1), {
      authorization: `Bearer ${adminToken}`,
      "grpc-encoding": "gzip",
    });
    expect(String(compressed.trailers["grpc-status"])).toBe("3");
    expect(decodeURIComponent(String(compressed.trailers["grpc-message"]))).toMatch(
      /^parse binary: /,
    );

    const connect = await post(path, "application/proto", message);
    expect(connect.status).toBe(400);
    expect(((await connect.json()) as { code: string }).code).toBe("invalid_argument");

    // gRPC-Web carries the status in a trailer frame at the end of the body.
    const web = await post(path, "application/grpc-web+proto", grpcFrame(message));
    expect(web.status).toBe(200);
    const frameBytes = Buffer.from(await web.arrayBuffer());
    expect(frameBytes[0]).toBe(0x80);
    const trailer = frameBytes.subarray(5).toString("utf8");
    expect(trailer).toMatch(/^grpc-status: 3\r$/m);
    expect(trailer).toMatch(/^grpc-message: parse%20binary/m);

    expect(await exists("bin-str")).toBe(false);
  });
});
