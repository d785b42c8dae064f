/**
 * The `seald` command end to end: a real server on the real test database, and the command run
 * as a child process (`node bin/seald.mjs ...`) exactly as a user or a script runs it.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Document, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { Seald } from "../../src/app.js";
import { decodeStandardBase64 } from "../../src/crypto/base64.js";
import { parseMasterKeys } from "../../src/crypto/keyring.js";
import { client } from "../harness/clients.js";
import {
  adminToken,
  mongoUri,
  root,
  startTestSeald,
  testMasterKeys,
  uniqueDatabase,
} from "../harness/seald.js";

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface RunOptions {
  /** The SEALD_TOKEN to set; null leaves it unset. Default: the bootstrap admin's. */
  readonly token?: string | null;
  /** Written to stdin, which is then closed (stdin is empty otherwise). */
  readonly stdin?: string;
  readonly server?: string;
  readonly env?: Record<string, string>;
}

let seald: Seald;

/** Runs `node bin/seald.mjs ...args` and collects its exit code and output. */
function cli(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    SEALD_SERVER: options.server ?? seald.url,
    ...options.env,
  };
  const token = options.token === undefined ? adminToken : options.token;
  if (token !== null) env.SEALD_TOKEN = token;
  const child = spawn(process.execPath, ["bin/seald.mjs", ...args], {
    cwd: root,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => {
    stdout += s;
  });
  child.stderr.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
  });
  child.stdin.end(options.stdin ?? "");
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const json = (r: Run) => JSON.parse(r.stdout) as Record<string, unknown>;

/** A value with a trailing space, an inner newline and non-ASCII text, all of which must survive. */
const value = "hunter2\nzweite Zeile ✓ ";

describe("the seald command", () => {
  const database = uniqueDatabase("cli");
  let serviceToken = "";

  beforeAll(async () => {
    seald = await startTestSeald({ database });
  });
  afterAll(async () => {
    await seald?.close();
  });

  it("lists every command and the exit codes in --help", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    for (const line of [
      "serve",
      "secret create|get|list|update|delete|decrypt",
      "token create|list|revoke",
      "account create|get|list|delete",
      "role grant|revoke|list",
      "keys status|rewrap|generate",
      "audit list|verify",
      "--server",
      "--token",
      "--output",
      "--protocol",
    ]) {
      expect(r.stdout).toContain(line);
    }
    expect(r.stdout).toMatch(/Exit codes:\n {2}0 {2}success\n {2}1 {2}a request failed/);
    expect(r.stdout).toContain("2  usage error");
    expect(r.stdout).toContain("3  authentication failed");
    expect(r.stdout).toContain("4  partial failure");

    const secretHelp = await cli(["secret", "--help"]);
    expect(secretHelp.code).toBe(0);
    for (const sub of ["create", "get", "list", "update", "delete", "decrypt"]) {
      expect(secretHelp.stdout).toMatch(new RegExp(`\\n {2}${sub}\\b`));
    }
  });

  it("answers a usage error with exit code 2 and sends nothing", async () => {
    const unknown = await cli(["secret", "frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("seald: unknown command 'frobnicate'");

    const missing = await cli(["secret", "get"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'name'");

    const noNamespace = await cli(["secret", "get", "db"]);
    expect(noNamespace.code).toBe(2);
    expect(noNamespace.stderr).toBe("seald: --namespace is required (or set SEALD_NAMESPACE)\n");

    expect((await cli(["--output", "yaml", "secret", "list"])).code).toBe(2);
    expect((await cli(["secret", "list", "--all", "--limit", "3"])).code).toBe(2);
    expect((await cli(["--server", "ftp://x", "secret", "list"])).code).toBe(2);

    // A value on the command line is refused unless forced, and not echoed back.
    const argValue = await cli(["secret", "create", "argv", "-n", "team-a", "--value", "pw-argv"]);
    expect(argValue.code).toBe(2);
    expect(argValue.stderr).toContain("--insecure-value-arg");
    expect(argValue.stderr).not.toContain("pw-argv");
    const gone = await cli(["secret", "get", "argv", "-n", "team-a"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe('seald: not_found: secret "argv" not found\n');
  });

  it("creates a service account, grants it decrypter and issues it a token", async () => {
    const created = await cli(["account", "create", "billing", "--service-account", "-o", "json"]);
    expect(created.code).toBe(0);
    expect(json(created).principal).toMatchObject({
      name: "billing",
      kind: "PRINCIPAL_KIND_SERVICE_ACCOUNT",
    });

    const granted = await cli(["role", "grant", "billing", "decrypter", "-n", "team-a"]);
    expect(granted.code).toBe(0);
    const bindings = await cli(["role", "list", "--principal", "billing", "-o", "json"]);
    expect(json(bindings).bindings).toEqual([
      expect.objectContaining({ principal: "billing", role: "decrypter", namespace: "team-a" }),
    ]);

    const accounts = await cli(["account", "list"]);
    expect(accounts.code).toBe(0);
    expect(accounts.stdout).toMatch(/^NAME +KIND +DISPLAY NAME +ROLES +CREATED\n/);
    expect(accounts.stdout).toMatch(/\nbilling +service-account +decrypter@team-a +\d{4}-/);

    // Table output: the bare token on stdout, so TOKEN=$(seald token create ...) works.
    const token = await cli(["token", "create", "billing", "--description", "cli test"]);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^seald_[A-Za-z0-9_-]{43}\n$/);
    expect(token.stderr).toContain("not shown again");
    expect(token.stderr).not.toContain(token.stdout.trim());
    serviceToken = token.stdout.trim();

    const listed = await cli(["token", "list", "--principal", "billing", "-o", "json"]);
    expect(json(listed).tokens).toEqual([
      expect.objectContaining({ principal: "billing", description: "cli test" }),
    ]);
    // Token metadata only: the value is never listed.
    expect(listed.stdout).not.toContain(serviceToken);
  });

  it("creates a secret from stdin, sealed on the client: no plaintext crosses the wire", async () => {
    // A recording proxy between the command and the server sees every request body.
    const bodies: { path: string; body: string; authorization: string | undefined }[] = [];
    const hopByHop = ["host", "connection", "keep-alive", "content-length", "transfer-encoding"];
    const proxy = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      bodies.push({
        path: req.url ?? "",
        body: body.toString("utf8"),
        authorization: req.headers.authorization,
      });
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string" && !hopByHop.includes(k)) {
          headers.set(k, v);
        }
      }
      const upstream = await fetch(`${seald.url}${req.url ?? ""}`, {
        method: req.method ?? "POST",
        headers,
        body,
      }).catch(() => undefined);
      if (upstream === undefined) {
        res.writeHead(502).end();
        return;
      }
      const out: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (!["content-encoding", "content-length", "transfer-encoding"].includes(k)) out[k] = v;
      });
      res.writeHead(upstream.status, out).end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const { port } = proxy.address() as AddressInfo;
    try {
      const r = await cli(
        [
          "secret",
          "create",
          "db",
          "-n",
          "team-a",
          "--decrypter",
          "billing",
          "--label",
          "app=web",
          "--annotation",
          "owner=team a",
          "--description",
          "the database password",
        ],
        { stdin: value, server: `http://127.0.0.1:${port}` },
      );
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^namespace: +team-a\nname: +db\n/);
      expect(r.stdout).toMatch(/\nversion: +1\n/);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
    expect(bodies.map((b) => b.path)).toEqual([
      "/secrets.v1.SecretsService/GetPublicKey",
      "/secrets.v1.SecretsService/CreateSecret",
    ]);
    for (const b of bodies) {
      expect(b.authorization).toBe(`Bearer ${adminToken}`);
      expect(b.body).not.toContain("hunter2");
    }
    const create = JSON.parse(bodies[1]?.body ?? "{}");
    expect(create.secret.value.plaintext).toBeUndefined();
    expect(create.secret.value.sealed.keyId).toMatch(/^[0-9a-f]{16}$/);
    // crypto_box_seal adds 48 bytes to the message.
    const box = decodeStandardBase64(create.secret.value.sealed.box);
    expect(box?.byteLength).toBe(Buffer.byteLength(value) + 48);
  });

  it("shows and lists secrets as JSON, never with a value", async () => {
    const got = await cli(["secret", "get", "db", "-n", "team-a", "-o", "json"]);
    expect(got.code).toBe(0);
    const secret = json(got);
    expect(secret).toMatchObject({
      namespace: "team-a",
      name: "db",
      keeper: "system",
      version: "1",
      labels: { app: "web" },
      annotations: { owner: "team a" },
      description: "the database password",
      decrypters: ["billing"],
      createdBy: "admin",
    });
    expect(got.stdout).not.toContain("hunter2");

    const listed = await cli(["secret", "list", "-n", "team-a", "-o", "json"]);
    expect(listed.code).toBe(0);
    expect(json(listed)).toMatchObject({
      secrets: [expect.objectContaining({ name: "db" })],
      nextPageToken: "",
    });
    const selected = await cli(["secret", "list", "-l", "app=other", "-o", "json"]);
    expect(json(selected).secrets).toEqual([]);
  });

  it("follows page tokens with --all and stops at --limit", async () => {
    const admin = client(SecretsService, seald.url, adminToken, "connect-json");
    for (const name of ["p1", "p2", "p3", "p4", "p5"]) {
      await admin.createSecret({
        secret: { namespace: "paged", name, value: { kind: { case: "plaintext", value: "x" } } },
      });
    }
    const names = (r: Run) => (json(r).secrets as unknown as { name: string }[]).map((s) => s.name);

    const all = await cli([
      "secret",
      "list",
      "-n",
      "paged",
      "--all",
      "--page-size",
      "2",
      "-o",
      "json",
    ]);
    expect(names(all)).toEqual(["p1", "p2", "p3", "p4", "p5"]);
    expect(json(all).nextPageToken).toBe("");

    const some = await cli([
      "secret",
      "list",
      "-n",
      "paged",
      "--limit",
      "3",
      "--page-size",
      "2",
      "-o",
      "json",
    ]);
    expect(names(some)).toEqual(["p1", "p2", "p3"]);
    const rest = await cli([
      "secret",
      "list",
      "-n",
      "paged",
      "--all",
      "--page-token",
      String(json(some).nextPageToken),
      "-o",
      "json",
    ]);
    expect(names(rest)).toEqual(["p4", "p5"]);

    // One page by default; the table says on stderr that more follow.
    const table = await cli(["secret", "list", "-n", "paged", "--page-size", "2"]);
    expect(table.stdout.trim().split("\n")).toHaveLength(3);
    expect(table.stderr).toContain("more secrets follow");
  });

  it("decrypts as the service account, printing exactly the value", async () => {
    const r = await cli(["secret", "decrypt", "db", "-n", "team-a"], { token: serviceToken });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(value);
  });

  it("fails a decrypt by the admin user with exit code 4 and 'not authorized'", async () => {
    const r = await cli(["secret", "decrypt", "db", "-n", "team-a"]);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("seald: team-a/db: not authorized\n");
  });

  it("prints several values as JSON and exits 4 when some of them fail", async () => {
    const r = await cli(["secret", "decrypt", "db", "nope", "-n", "team-a", "-o", "json"], {
      token: serviceToken,
    });
    expect(r.code).toBe(4);
    expect(json(r).results).toEqual({
      db: { value, version: "1" },
      // The decrypter may not read team-a: a missing name answers as one it may not decrypt.
      nope: { error: "not authorized", version: "0" },
    });
    expect(r.stderr).toBe("seald: team-a/nope: not authorized\n");
  });

  it("updates a secret, keeping what the options do not change", async () => {
    const r = await cli(
      [
        "secret",
        "update",
        "db",
        "-n",
        "team-a",
        "--label",
        "env=prod",
        "--value-file",
        "-",
        "-o",
        "json",
      ],
      { stdin: "rotated" },
    );
    expect(r.code).toBe(0);
    expect(json(r)).toMatchObject({
      version: "2",
      labels: { app: "web", env: "prod" },
      description: "the database password",
      decrypters: ["billing"],
    });
    const now = await cli(["secret", "decrypt", "db", "-n", "team-a"], { token: serviceToken });
    expect(now.stdout).toBe("rotated");
    const before = await cli(["secret", "decrypt", "db", "-n", "team-a", "--value-version", "1"], {
      token: serviceToken,
    });
    expect(before.stdout).toBe(value);

    // Metadata only: no value option, so stdin is not read and the value stays.
    const meta = await cli(["secret", "update", "db", "-n", "team-a", "--remove-label", "app"], {
      stdin: "ignored",
    });
    expect(meta.code).toBe(0);
    expect(meta.stdout).toMatch(/\nversion: +2\n/);
    expect(meta.stdout).toMatch(/\nlabels: +env=prod\n/);
  });

  it("accepts --value only with --insecure-value-arg", async () => {
    const r = await cli([
      "secret",
      "create",
      "forced",
      "-n",
      "team-a",
      "--decrypter",
      "billing",
      "--value",
      "from-argv",
      "--insecure-value-arg",
    ]);
    expect(r.code).toBe(0);
    const d = await cli(["secret", "decrypt", "forced", "-n", "team-a"], { token: serviceToken });
    expect(d.stdout).toBe("from-argv");
  });

  it("seals a binary file byte for byte and decrypts it to a file that is byte-identical", async () => {
    const dir = mkdtempSync(join(tmpdir(), "seald-cli-bin-"));
    const value = randomBytes(200);
    value[0] = 0xff;
    value[1] = 0xfe;
    value[100] = 0x00;
    value[199] = 0x0a; // a trailing newline is part of the value too
    const input = join(dir, "key.der");
    writeFileSync(input, value);
    const created = await cli([
      "secret",
      "create",
      "bin",
      "-n",
      "team-a",
      "--decrypter",
      "billing",
      "--value-file",
      input,
    ]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);

    for (const protocol of ["connect", "grpc"]) {
      // Through a real shell redirect, as a user writes a key to disk.
      const output = join(dir, `out-${protocol}.der`);
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(
          "sh",
          [
            "-c",
            `"$NODE" bin/seald.mjs --protocol ${protocol} secret decrypt bin -n team-a > "$OUT"`,
          ],
          {
            cwd: root,
            env: {
              PATH: process.env.PATH ?? "",
              HOME: process.env.HOME ?? "",
              NODE: process.execPath,
              OUT: output,
              SEALD_SERVER: seald.url,
              SEALD_TOKEN: serviceToken,
            },
            stdio: ["ignore", "ignore", "pipe"],
          },
        );
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => {
          stderr += d;
        });
        child.once("error", reject);
        child.once("close", (code) => resolve({ code, stderr }));
      });
      expect(r.stderr, protocol).toBe("");
      expect(r.code, protocol).toBe(0);
      expect(readFileSync(output).equals(value), protocol).toBe(true);
    }

    // Several names: text values stay text in JSON, a binary one is base64 in valueBytes.
    const several = await cli(
      ["secret", "decrypt", "forced", "bin", "-n", "team-a", "-o", "json"],
      {
        token: serviceToken,
      },
    );
    expect(several.code).toBe(0);
    expect(json(several).results).toEqual({
      forced: { value: "from-argv", version: "1" },
      bin: { valueBytes: value.toString("base64"), version: "1" },
    });
    // A table never prints raw bytes to a terminal.
    const table = await cli(["secret", "decrypt", "forced", "bin", "-n", "team-a"], {
      token: serviceToken,
    });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/\nforced +1 +from-argv *\n/);
    expect(table.stdout).toMatch(
      /\nbin +1 +\(200 bytes, not text: decrypt it alone or use -o json\)/,
    );
  });

  it("speaks gRPC too", async () => {
    const r = await cli([
      "--protocol",
      "grpc",
      "secret",
      "get",
      "db",
      "-n",
      "team-a",
      "-o",
      "json",
    ]);
    expect(r.code).toBe(0);
    expect(json(r).name).toBe("db");
  });

  it("exits 1 with the server's code and message for a missing secret", async () => {
    const r = await cli(["secret", "get", "nope", "-n", "team-a"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe('seald: not_found: secret "nope" not found\n');

    const deleted = await cli(["secret", "delete", "forced", "-n", "team-a"]);
    expect(deleted.code).toBe(0);
    const again = await cli(["secret", "delete", "forced", "-n", "team-a"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("seald: not_found:");
  });

  it("exits 3 when authentication fails or the caller lacks the right", async () => {
    const bad = await cli(["secret", "list"], { token: `seald_${"x".repeat(43)}` });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toBe("seald: unauthenticated: invalid credentials\n");

    const none = await cli(["secret", "list"], { token: null });
    expect(none.code).toBe(3);
    expect(none.stderr).toContain("seald: unauthenticated:");
    expect(none.stderr).toContain("SEALD_TOKEN");

    const denied = await cli(["account", "list"], { token: serviceToken });
    expect(denied.code).toBe(3);
    expect(denied.stderr).toMatch(/^seald: permission_denied: /);
  });

  it("warns that --token shows in ps, without printing it", async () => {
    const r = await cli(["--token", adminToken, "secret", "list", "-n", "team-a"], { token: null });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("visible to other users in ps");
    expect(r.stderr + r.stdout).not.toContain(adminToken);
  });

  it("lists and verifies the audit trail", async () => {
    const r = await cli([
      "audit",
      "list",
      "--principal",
      "billing",
      "--action",
      "secret.securevalues:decrypt",
      "--all",
      "-o",
      "json",
    ]);
    expect(r.code).toBe(0);
    const events = json(r).events as unknown as { name: string; outcome: string }[];
    expect(events.length).toBeGreaterThan(0);
    expect(events).toContainEqual(expect.objectContaining({ name: "db", outcome: "success" }));
    expect(r.stdout).not.toContain("hunter2");

    const verified = await cli(["audit", "verify"]);
    expect(verified.code).toBe(0);
    const printed = /^audit log intact: (\d+) records verified\nhead: (\d+):([0-9a-f]{64})\n$/.exec(
      verified.stdout,
    );
    expect(printed?.[2]).toBe(printed?.[1]);
    const head = `${printed?.[2]}:${printed?.[3]}`;
    // The printed head is an anchor for a later verify.
    const anchored = await cli(["audit", "verify", "--anchor", head]);
    expect(anchored.code).toBe(0);
    expect(anchored.stdout).toContain(`anchor ${printed?.[2]} holds`);
    const badAnchor = await cli(["audit", "verify", "--anchor", "7:xyz"]);
    expect(badAnchor.code).toBe(2);
    expect(badAnchor.stderr).toContain("--anchor");
  });

  it("revokes a token at once, and deletes an account", async () => {
    const listed = await cli(["token", "list", "--principal", "billing", "-o", "json"]);
    const [token] = json(listed).tokens as unknown as { id: string }[];
    const revoked = await cli(["token", "revoke", token?.id ?? ""]);
    expect(revoked.code).toBe(0);
    const after = await cli(["secret", "decrypt", "db", "-n", "team-a"], { token: serviceToken });
    expect(after.code).toBe(3);
    expect(after.stdout).toBe("");

    expect((await cli(["account", "delete", "billing"])).code).toBe(0);
    const gone = await cli(["account", "get", "billing"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^seald: not_found: /);
  });

  it("generates a master key line offline", async () => {
    // No server listens on port 9: generate must not need one.
    const r = await cli(["keys", "generate"], { server: "http://127.0.0.1:9", token: null });
    expect(r.code).toBe(0);
    const match = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/]+={0,2})\n$/.exec(r.stdout);
    expect(match).not.toBeNull();
    expect(decodeStandardBase64(match?.[2] ?? "")?.byteLength).toBe(32);
    const ring = parseMasterKeys(r.stdout, "generated");
    expect(ring.activeId).toBe(match?.[1]);

    const named = await cli(["keys", "generate", "--id", "k2"], { token: null });
    expect(named.stdout).toMatch(/^k2:[A-Za-z0-9+/]{43}=\n$/);
    // Fresh randomness every time.
    expect(named.stdout.split(":")[1]).not.toBe(r.stdout.split(":")[1]);
    expect((await cli(["keys", "generate", "--id", "no/slash"])).code).toBe(2);
  });

  it("shows key status and re-wraps to a new active key until done", async () => {
    const before = await cli(["keys", "status", "-o", "json"]);
    expect(before.code).toBe(0);
    expect(json(before).activeKeyId).toBe("test");

    // A replica with a new active key in front of the old one, on the same database.
    const generated = await cli(["keys", "generate", "--id", "next"], { token: null });
    const next = await startTestSeald({
      database,
      masterKeys: `${generated.stdout.trim()},${testMasterKeys}`,
    });
    try {
      const r = await cli(["keys", "rewrap", "--interval", "1", "-o", "json"], {
        server: next.url,
      });
      expect(r.stderr).toContain("rewrap");
      expect(r.code).toBe(0);
      expect(json(r)).toMatchObject({ state: "done", targetKeyId: "next" });

      const status = await cli(["keys", "status"], { server: next.url });
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/^active key: next\n/);
      expect(status.stdout).toMatch(/\ntest +no +yes +0 +0 +0 /);
      expect(status.stdout).toContain("rewrap: done");
    } finally {
      await next.close();
    }
  });
});

describe("seald serve", () => {
  it("runs the server as npm start does, and passes its flags through", async () => {
    const help = await cli(["serve", "--help"], { server: "http://127.0.0.1:9" });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--mongodb-uri");

    const bad = await cli(["serve", "--listen", "nowhere"], { server: "http://127.0.0.1:9" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("SEALD_LISTEN");

    const child = spawn(process.execPath, ["bin/seald.mjs", "serve", "--listen", "127.0.0.1:0"], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        SEALD_MONGODB_URI: mongoUri(),
        SEALD_DATABASE: uniqueDatabase("cliserve"),
        SEALD_MASTER_KEYS: testMasterKeys,
        SEALD_BOOTSTRAP_TOKEN: adminToken,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    let out = "";
    child.stdout.setEncoding("utf8");
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line:\n${out}`)), 30_000);
      child.stdout.on("data", (s: string) => {
        out += s;
        const line = out.split("\n").find((l) => l.includes('"msg":"database ready"'));
        const listening = out.split("\n").find((l) => l.includes('"msg":"listening"'));
        if (line && listening) {
          clearTimeout(timer);
          resolve(JSON.parse(listening).address as string);
        }
      });
    });
    try {
      const r = await cli(["secret", "list", "-o", "json"], { server: `http://${address}` });
      expect(r.code).toBe(0);
      expect(json(r)).toEqual({ secrets: [], nextPageToken: "" });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});

describe("seald audit verify against a cut log", () => {
  it("exits 1 naming records cut from the end, and an anchor catches an old head put back", async () => {
    const database = uniqueDatabase("clicut");
    const own = await startTestSeald({ database });
    const mongo = await MongoClient.connect(mongoUri());
    try {
      const secrets = client(SecretsService, own.url, adminToken);
      for (const name of ["a", "b", "c"]) {
        await secrets.createSecret({
          secret: { namespace: "cut", name, value: { kind: { case: "plaintext", value: "v" } } },
        });
      }
      const meta = mongo.db(database).collection<{ _id: string } & Document>("meta");
      const records = mongo.db(database).collection<{ _id: number } & Document>("audit");
      const oldHead = (await meta.findOne({ _id: "audit_head" })) as { _id: string };
      const n = (oldHead as unknown as { seq: number }).seq;
      for (const name of ["d", "e"]) {
        await secrets.createSecret({
          secret: { namespace: "cut", name, value: { kind: { case: "plaintext", value: "v" } } },
        });
      }
      // The head an operator keeps outside the database.
      const intact = await cli(["audit", "verify"], { server: own.url });
      expect(intact.code).toBe(0);
      const anchor = /head: (\d+:[0-9a-f]{64})/.exec(intact.stdout)?.[1] as string;
      expect(anchor.startsWith(`${n + 2}:`)).toBe(true);

      await records.deleteMany({ _id: { $gt: n + 1 } });
      const cut = await cli(["audit", "verify"], { server: own.url });
      expect(cut.code).toBe(1);
      expect(cut.stdout).toBe("");
      expect(cut.stderr).toBe(
        `seald: audit log verification failed at record ${n + 2}: the head names record ${n + 2} but the log ends at record ${n + 1}: records were removed from the end\n`,
      );

      // With a head copied earlier put back and the rest cut, the database alone looks intact;
      // the anchor kept outside it does not hold.
      await records.deleteMany({ _id: { $gt: n } });
      await meta.replaceOne({ _id: "audit_head" }, oldHead);
      expect((await cli(["audit", "verify"], { server: own.url })).code).toBe(0);
      const anchored = await cli(["audit", "verify", "--anchor", anchor], { server: own.url });
      expect(anchored.code).toBe(1);
      expect(anchored.stderr).toBe(
        `seald: audit log verification failed at record ${n + 1}: the log ends at record ${n} but the anchor names record ${n + 2}: records were removed from the end\n`,
      );

      // After investigating, an admin accepts the log as it is: the reseal is itself audited.
      await records.deleteMany({ _id: { $gt: n - 1 } });
      expect((await cli(["audit", "verify"], { server: own.url })).code).toBe(1);
      const resealed = await cli(["audit", "verify", "--reseal-head"], { server: own.url });
      expect(resealed.code).toBe(0);
      expect(resealed.stderr).toBe(
        `head resealed; it was: the head names record ${n} but the log ends at record ${n - 1}: records were removed from the end\n`,
      );
      expect((await cli(["audit", "verify"], { server: own.url })).code).toBe(0);
      const listed = await cli(["audit", "list", "--action", "audit:head.reseal", "-o", "json"], {
        server: own.url,
      });
      expect(json(listed).events).toEqual([
        expect.objectContaining({
          seq: String(n),
          principal: "admin",
          outcome: "success",
          reason: expect.stringContaining("records were removed from the end"),
        }),
      ]);
    } finally {
      await mongo.close();
      await own.close();
    }
  });
});
