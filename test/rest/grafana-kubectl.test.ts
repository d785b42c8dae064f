/**
 * kubectl against the Grafana dialect over TLS (kubectl sends a bearer token only over TLS): it
 * discovers secret.grafana.app through seald's discovery, in the aggregated form when it asks for
 * it, and then gets, creates, lists and deletes SecureValues by resource name alone. kubectl comes
 * from the machine (.ci/run installs it when it is missing); every call gets a kubeconfig of its
 * own and a fresh discovery cache, so no answer comes from a previous run.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Seald } from "../../src/app.js";
import { adminToken, startTestSeald, uniqueDatabase } from "../harness/seald.js";

// biome-ignore lint/suspicious/noExplicitAny: kubectl's JSON output is checked field by field.
type Json = any;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe("kubectl against the Grafana dialect over TLS", () => {
  let seald: Seald;
  let dir = "";
  let kubeconfig = "";
  let caches = 0;
  let clientMinor = 0;

  /** Runs kubectl with seald's kubeconfig, a fresh cache, and nothing of the user's environment. */
  function kubectl(args: string[], input?: string, config = kubeconfig): Promise<Run> {
    const cache = join(dir, `cache-${caches++}`);
    return new Promise((resolve) => {
      const child = execFile(
        "kubectl",
        ["--kubeconfig", config, "--cache-dir", cache, ...args],
        { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir }, timeout: 60_000 },
        (err, stdout, stderr) => {
          if (err?.code === "ENOENT") {
            throw new Error(
              "kubectl is not installed: .ci/run installs Debian's kubernetes-client",
            );
          }
          const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
      if (input !== undefined) child.stdin?.end(input);
      else child.stdin?.end();
    });
  }

  /** Runs kubectl and expects it to succeed. */
  async function ok(args: string[], input?: string): Promise<string> {
    const run = await kubectl(args, input);
    expect(run.code, `kubectl ${args.join(" ")}\n${run.stderr}`).toBe(0);
    return run.stdout;
  }

  beforeAll(async () => {
    const pems = await generate([{ name: "commonName", value: "localhost" }], {
      keySize: 2048,
      extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
    });
    seald = await startTestSeald({
      database: uniqueDatabase("kubectl"),
      tls: { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) },
    });
    dir = mkdtempSync(join(tmpdir(), "seald-kubectl-"));
    mkdirSync(join(dir, ".kube"));
    kubeconfig = join(dir, "kubeconfig");
    // The certificate itself as the cluster's CA: kubectl verifies seald's TLS, skips nothing.
    const ca = Buffer.from(pems.cert).toString("base64");
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          { name: "seald", cluster: { server: seald.url, "certificate-authority-data": ca } },
        ],
        users: [{ name: "admin", user: { token: adminToken } }],
        contexts: [
          { name: "seald", context: { cluster: "seald", user: "admin", namespace: "team-a" } },
        ],
        "current-context": "seald",
      }),
    );
    const version = JSON.parse(await ok(["version", "--client", "-o", "json"]));
    clientMinor = Number.parseInt(version.clientVersion.minor, 10);
  });
  afterAll(async () => {
    await seald?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("reads the server's version", async () => {
    const version = JSON.parse(await ok(["version", "-o", "json"]));
    expect(version.serverVersion).toMatchObject({ major: "1" });
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.\d+\.0\+seald\./);
  });

  it("lists securevalues in api-resources with the verbs served", async () => {
    const run = await kubectl(["api-resources", "-o", "wide", "-v=6"]);
    expect(run.code, run.stderr).toBe(0);
    const line = run.stdout.split("\n").find((l) => l.startsWith("securevalues "));
    expect(line, run.stdout).toBeDefined();
    const columns = line?.trim().split(/\s{2,}/) ?? [];
    expect(columns.slice(0, 4)).toEqual([
      "securevalues",
      "secret.grafana.app/v1beta1",
      "true",
      "SecureValue",
    ]);
    // kubectl before 1.26 or so prints the verbs as a Go slice, "[create delete ...]".
    expect(columns[4]?.replace(/^\[(.*)\]$/, "$1").split(/[ ,]/)).toEqual([
      "create",
      "delete",
      "get",
      "list",
      "update",
    ]);
    expect(run.stdout).not.toContain("error");
    // kubectl 1.30+ asks for the aggregated form first: answered in it, /api and /apis alone
    // tell it every resource, and it never asks the group version for its APIResourceList.
    const requested = (path: string) =>
      new RegExp(`https://127\\.0\\.0\\.1:\\d+${path.replace(/\./g, "\\.")}[?" ]`).test(run.stderr);
    expect(requested("/api"), run.stderr).toBe(true);
    expect(requested("/apis")).toBe(true);
    if (clientMinor >= 30) {
      expect(requested("/apis/secret.grafana.app/v1beta1"), run.stderr).toBe(false);
    }
  });

  it("creates, gets, lists and deletes securevalues by resource name", async () => {
    const manifest = JSON.stringify({
      apiVersion: "secret.grafana.app/v1beta1",
      kind: "SecureValue",
      metadata: { name: "from-kubectl", labels: { app: "k" } },
      spec: { description: "made by kubectl", value: "kubectl-plaintext-value" },
    });
    // Client-side validation needs /openapi/v2, which is not served yet.
    expect(await ok(["create", "--validate=false", "-f", "-"], manifest)).toContain(
      "securevalue.secret.grafana.app/from-kubectl created",
    );

    const got = JSON.parse(await ok(["get", "securevalue", "from-kubectl", "-o", "json"]));
    expect(got).toMatchObject({
      kind: "SecureValue",
      metadata: { name: "from-kubectl", namespace: "team-a", labels: { app: "k" } },
      spec: { description: "made by kubectl" },
    });
    expect(JSON.stringify(got)).not.toContain("kubectl-plaintext-value");

    const list = JSON.parse(await ok(["get", "securevalues", "-n", "team-a", "-o", "json"]));
    expect(list.items.map((i: Json) => i.metadata.name)).toEqual(["from-kubectl"]);
    const table = await ok(["get", "securevalues", "-n", "team-a"]);
    expect(table).toMatch(/^NAME\s+AGE\n/);
    expect(table).toMatch(/\nfrom-kubectl\s+\d+s\n/);
    expect(await ok(["get", "securevalues", "-l", "app=k", "-o", "name"])).toBe(
      "securevalue.secret.grafana.app/from-kubectl\n",
    );

    expect(await ok(["delete", "securevalue", "from-kubectl"])).toContain(
      'securevalue.secret.grafana.app "from-kubectl" deleted',
    );
    // kubectl then asks for the namespace; its Forbidden leaves the object's NotFound to be shown.
    const gone = await kubectl(["get", "securevalue", "from-kubectl"]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain(
      'Error from server (NotFound): securevalues.secret.grafana.app "from-kubectl" not found',
    );
  });

  it("is refused without a valid token, after TLS, before discovery", async () => {
    const bad = join(dir, "bad-kubeconfig");
    const unknown = "seald_not-a-real-token-000000000000000000000";
    writeFileSync(bad, readFileSync(kubeconfig, "utf8").replace(adminToken, unknown));
    const run = await kubectl(["get", "securevalues"], undefined, bad);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/Unauthorized|must be logged in/);
  });
});
