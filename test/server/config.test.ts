import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig, settings } from "../../src/config.js";
import { spawnSeald, tempDir, testMasterKeys } from "../harness/seald.js";

function config(argv: string[], env: Record<string, string> = {}) {
  const parsed = parseConfig(argv, env);
  if (parsed.kind !== "run") throw new Error(`expected a config, got: ${parsed.output}`);
  return parsed.config;
}

function failure(argv: string[], env: Record<string, string> = {}): string {
  const parsed = parseConfig(argv, env);
  if (parsed.kind !== "exit" || parsed.code === 0)
    throw new Error("expected a configuration error");
  return parsed.output;
}

describe("configuration", () => {
  it("has the documented defaults", () => {
    const c = config([]);
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(c.database).toBe("seald");
    expect(c.dataDir).toMatch(/\/data$/);
    expect(c.mongodbUri).toBeUndefined();
    expect(c.logLevel).toBe("info");
    expect(c.tls).toBeUndefined();
    expect(c.dbTimeoutMs).toBe(2000);
  });

  it("takes an audit file path (made absolute), or - for stdout, and refuses a blank one", () => {
    expect(config([]).auditFile).toBeUndefined();
    expect(config([], { SEALD_AUDIT_FILE: "-" }).auditFile).toBe("-");
    expect(config(["--audit-file", "logs/audit.jsonl"]).auditFile).toBe(
      join(process.cwd(), "logs/audit.jsonl"),
    );
    expect(failure([], { SEALD_AUDIT_FILE: "  " })).toBe(
      "seald: SEALD_AUDIT_FILE: must not be blank",
    );
  });

  it("takes variables, and flags over variables", () => {
    const env = {
      SEALD_LISTEN: "127.0.0.2:9000",
      SEALD_DATABASE: "fromenv",
      SEALD_LOG_LEVEL: "debug",
    };
    expect(config([], env)).toMatchObject({
      listen: { host: "127.0.0.2", port: 9000 },
      database: "fromenv",
    });
    expect(config(["--listen", "[::1]:7000", "--database", "fromflag"], env)).toMatchObject({
      listen: { host: "::1", port: 7000 },
      database: "fromflag",
      logLevel: "debug",
    });
    expect(config(["--db-timeout", "0.5"], { SEALD_DB_TIMEOUT: "30" }).dbTimeoutMs).toBe(500);
    expect(config([], { SEALD_DB_TIMEOUT: "30" }).dbTimeoutMs).toBe(30_000);
  });

  it("names the variable in every error, on one line", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ SEALD_LISTEN: "8080" }, /^seald: SEALD_LISTEN: "8080" is not host:port/],
      [{ SEALD_LISTEN: "127.0.0.1:70000" }, /^seald: SEALD_LISTEN: port 70000 is out of range/],
      [
        { SEALD_MONGODB_URI: "postgres://x" },
        /^seald: SEALD_MONGODB_URI: not a valid MongoDB connection string/,
      ],
      [{ SEALD_DATABASE: "a.b" }, /^seald: SEALD_DATABASE: /],
      [{ SEALD_LOG_LEVEL: "loud" }, /^seald: SEALD_LOG_LEVEL: "loud" is not one of/],
      [
        { SEALD_TLS_CERT: "/x.pem" },
        /^seald: SEALD_TLS_KEY: must be set together with SEALD_TLS_CERT/,
      ],
      [
        { SEALD_TLS_CERT: "/no/such.pem", SEALD_TLS_KEY: "/no/such.key" },
        /^seald: SEALD_TLS_CERT: cannot read \/no\/such.pem \(ENOENT\)/,
      ],
      [{ SEALD_SHUTDOWN_TIMEOUT: "soon" }, /^seald: SEALD_SHUTDOWN_TIMEOUT: /],
      // Zero would mean "no bound" to the driver.
      [{ SEALD_DB_TIMEOUT: "0" }, /^seald: SEALD_DB_TIMEOUT: "0" is not a number of seconds/],
      [
        { SEALD_MASTER_KEYS: "a:b", SEALD_MASTER_KEYS_FILE: "/k" },
        /^seald: SEALD_MASTER_KEYS: set it or SEALD_MASTER_KEYS_FILE, not both/,
      ],
    ];
    for (const [env, message] of cases) {
      const out = failure([], env);
      expect(out).toMatch(message);
      expect(out.split("\n")).toHaveLength(1);
    }
  });

  it("never repeats a credential-bearing URI in its error", () => {
    const out = failure([], { SEALD_MONGODB_URI: "mongodb://user:hunter2@/x?badoption=" });
    expect(out).not.toContain("hunter2");
  });

  it("rejects a certificate file that is not PEM", () => {
    const dir = tempDir();
    const cert = join(dir, "cert.pem");
    writeFileSync(cert, "not a certificate");
    expect(failure([], { SEALD_TLS_CERT: cert, SEALD_TLS_KEY: cert })).toMatch(
      /^seald: SEALD_TLS_CERT: .* is not a PEM file/,
    );
  });

  it("lists every setting with its variable and default in --help", () => {
    const parsed = parseConfig(["--help"], {});
    expect(parsed).toMatchObject({ kind: "exit", code: 0 });
    // Commander wraps long lines; compare with whitespace collapsed.
    const help = parsed.kind === "exit" ? parsed.output.replace(/\s+/g, " ") : "";
    for (const s of Object.values(settings)) expect(help).toContain(s.env);
    expect(help).toContain('(default: "127.0.0.1:8080")');
    expect(help).toContain('(default: "seald")');
    expect(help).toContain('(default: "./data")');
  });

  it("rejects an unknown flag", () => {
    expect(failure(["--no-such-flag"])).toMatch(/unknown option '--no-such-flag'/);
  });
});

describe("bad configuration exits the process with a message naming the variable", () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    // 192.0.2.0/24 is TEST-NET-1: never a local address, so binding fails without any traffic.
    [
      "an address not on this machine",
      { SEALD_LISTEN: "192.0.2.1:8080" },
      /SEALD_LISTEN: cannot listen on 192\.0\.2\.1:8080 \(EADDRNOTAVAIL\)/,
    ],
    [
      "an unreadable certificate",
      { SEALD_TLS_CERT: "/no/such/cert.pem", SEALD_TLS_KEY: "/no/such/key.pem" },
      /SEALD_TLS_CERT: cannot read/,
    ],
    [
      "a malformed database URI",
      { SEALD_MONGODB_URI: "mongodb://" },
      /SEALD_MONGODB_URI: not a valid MongoDB connection string/,
    ],
  ];
  for (const [what, env, message] of cases) {
    it(what, async () => {
      const p = spawnSeald([], {
        SEALD_MONGODB_URI: "mongodb://127.0.0.1:1/",
        SEALD_MASTER_KEYS: testMasterKeys,
        SEALD_LOG_LEVEL: "silent",
        ...env,
      });
      expect(await p.exited).toBe(2);
      expect(p.stderr()).toMatch(message);
      expect(p.stderr().trim().split("\n")).toHaveLength(1);
    });
  }

  it("--help exits 0 and prints the settings", async () => {
    const p = spawnSeald(["--help"], {});
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toContain("SEALD_MONGODB_URI");
  });
});
