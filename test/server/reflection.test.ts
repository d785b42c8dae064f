import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Seald } from "../../src/app.js";
import { root, startTestSeald } from "../harness/seald.js";

const run = promisify(execFile);
const buf = join(root, "node_modules", ".bin", "buf");

const secretsMethods = [
  "secrets.v1.SecretsService/CreateSecret",
  "secrets.v1.SecretsService/DecryptSecrets",
  "secrets.v1.SecretsService/DeleteSecret",
  "secrets.v1.SecretsService/GetPublicKey",
  "secrets.v1.SecretsService/GetSecret",
  "secrets.v1.SecretsService/ListSecrets",
  "secrets.v1.SecretsService/UpdateSecret",
];

describe("gRPC server reflection through the real buf binary, with no proto files", () => {
  let seald: Seald;
  beforeAll(async () => {
    seald = await startTestSeald();
  });
  afterAll(async () => {
    await seald?.close();
  });

  async function listMethods(...flags: string[]): Promise<string[]> {
    const { stdout } = await run(buf, ["curl", ...flags, "--list-methods", seald.url], {
      cwd: root,
    });
    return stdout.trim().split("\n");
  }

  it("lists the SecretsService methods over gRPC with HTTP/2 prior knowledge", async () => {
    const methods = await listMethods("--http2-prior-knowledge", "--protocol", "grpc");
    expect(methods.filter((m) => m.startsWith("secrets.v1.SecretsService/"))).toEqual(
      secretsMethods,
    );
    expect(methods).toContain("grpc.health.v1.Health/Check");
  });

  it("lists them over HTTP/1.1 with the Connect protocol", async () => {
    const methods = await listMethods("--protocol", "connect");
    expect(methods.filter((m) => m.startsWith("secrets.v1.SecretsService/"))).toEqual(
      secretsMethods,
    );
  });

  it("lists them through the v1alpha reflection service that older tools ask for", async () => {
    const methods = await listMethods(
      "--http2-prior-knowledge",
      "--protocol",
      "grpc",
      "--reflect-protocol",
      "grpc-v1alpha",
    );
    expect(methods.filter((m) => m.startsWith("secrets.v1.SecretsService/"))).toEqual(
      secretsMethods,
    );
  });

  it("describes request types well enough for buf curl to encode a call from JSON", async () => {
    const { stdout } = await run(
      buf,
      [
        "curl",
        "--http2-prior-knowledge",
        "--protocol",
        "grpc",
        "-d",
        '{"service":"secrets.v1.SecretsService"}',
        `${seald.url}/grpc.health.v1.Health/Check`,
      ],
      { cwd: root },
    );
    expect(JSON.parse(stdout)).toEqual({ status: "SERVING" });
  });
});
