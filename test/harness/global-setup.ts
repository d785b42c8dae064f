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

declare module "vitest" {
  export interface ProvidedContext {
    mongoUri: string;
  }
}

/** Credentials every test server uses; none may ever appear in a log. */
const forbidden: [string, RegExp][] = [
  ["an access token", /seald_[A-Za-z0-9_-]{43}/],
  [
    "the test master key",
    new RegExp(Buffer.alloc(32, 7).toString("base64").replace(/[+/=]/g, "\\$&")),
  ],
  ["an Authorization header value", /(Bearer|Key) seald_/],
];

/** Fails the run when any test server's debug log holds a credential. */
function scanLogs(dir: string): void {
  for (const file of readdirSync(dir)) {
    const text = readFileSync(join(dir, file), "utf8");
    for (const [what, pattern] of forbidden) {
      const match = pattern.exec(text);
      if (match)
        throw new Error(
          `${what} leaked into the debug log ${file}: ...${text.slice(Math.max(0, match.index - 200), match.index)}`,
        );
    }
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
