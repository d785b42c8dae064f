/**
 * Vitest global setup: one MongoDB-wire server for the whole run. SEALD_TEST_MONGODB_URI, when
 * set, names an existing server (a real mongod); otherwise FerretDB is built when missing and
 * started on a free loopback port with a fresh temporary directory, and stopped afterwards.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedDatabase } from "../../src/store/embedded.js";
import { plaintextsPrefix } from "./plaintexts.js";

declare module "vitest" {
  export interface ProvidedContext {
    mongoUri: string;
  }
}

/** Credentials every test server uses; none may ever appear in a log. */
const forbidden: [string, RegExp][] = [
  ["an access token", /seald_[A-Za-z0-9_-]{43}/],
  // The tests' master keys are 32 bytes of one value (masterKeyLine in seald.ts); any of them,
  // base64 as configured or hex.
  ...Array.from({ length: 255 }, (_, i): [string, RegExp] => {
    const key = Buffer.alloc(32, i + 1);
    const base64 = key.toString("base64").replace(/[+/=]/g, "\\$&");
    return [
      `a test master key (bytes of ${i + 1})`,
      new RegExp(`${base64}|${key.toString("hex")}`),
    ];
  }),
  ["an Authorization header value", /(Bearer|Key) seald_/],
];

/**
 * Fails the run when any test server's debug log holds a credential or any secret value the
 * suite sent or received (remembered by the test clients, see plaintexts.ts).
 */
export function scanLogs(dir: string): void {
  const files = readdirSync(dir);
  const plaintexts = new Set<string>();
  for (const file of files.filter((f) => f.startsWith(plaintextsPrefix))) {
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      if (line) plaintexts.add(JSON.parse(line) as string);
    }
  }
  const leak = (file: string, what: string, text: string, index: number) =>
    new Error(
      `${what} leaked into the debug log ${file}: ...${text.slice(Math.max(0, index - 200), index)}`,
    );
  let scanned = 0;
  for (const file of files.filter((f) => !f.startsWith(plaintextsPrefix))) {
    const text = readFileSync(join(dir, file), "utf8");
    scanned++;
    for (const [what, pattern] of forbidden) {
      const match = pattern.exec(text);
      if (match) throw leak(file, what, text, match.index);
    }
    for (const value of plaintexts) {
      const index = text.indexOf(value);
      if (index >= 0) throw leak(file, "a secret value the suite used", text, index);
    }
  }
  // The scan must have had something to search, or it proves nothing.
  if (process.env.SEALD_TEST_REQUIRE_LOG_SCAN && (scanned === 0 || plaintexts.size === 0)) {
    throw new Error(`log scan: ${scanned} logs and ${plaintexts.size} remembered values`);
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Test servers log at debug level here; the teardown searches the logs for credentials.
  const logDir = mkdtempSync(join(tmpdir(), "seald-test-logs-"));
  process.env.SEALD_TEST_LOG_DIR = logDir;
  const external = process.env.SEALD_TEST_MONGODB_URI;
  if (external) {
    project.provide("mongoUri", external);
    return async () => scanLogs(logDir);
  }
  const build = spawnSync(process.execPath, ["scripts/testdb.mjs", "build"], { stdio: "inherit" });
  if (build.status !== 0) throw new Error("could not build the test database");
  const dir = mkdtempSync(join(tmpdir(), "seald-testdb-"));
  const db = await startEmbeddedDatabase({ dir });
  project.provide("mongoUri", db.uri);
  return async () => {
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
    scanLogs(logDir);
  };
}
