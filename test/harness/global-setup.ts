/**
 * Vitest global setup: one MongoDB-wire server for the whole run. SEALD_TEST_MONGODB_URI, when
 * set, names an existing server (a real mongod); otherwise FerretDB is built when missing and
 * started on a free loopback port with a fresh temporary directory, and stopped afterwards.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedDatabase } from "../../src/store/embedded.js";

declare module "vitest" {
  export interface ProvidedContext {
    mongoUri: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.SEALD_TEST_MONGODB_URI;
  if (external) {
    project.provide("mongoUri", external);
    return async () => {};
  }
  const build = spawnSync(process.execPath, ["scripts/testdb.mjs", "build"], { stdio: "inherit" });
  if (build.status !== 0) throw new Error("could not build the test database");
  const dir = mkdtempSync(join(tmpdir(), "seald-testdb-"));
  const db = await startEmbeddedDatabase({ dir });
  project.provide("mongoUri", db.uri);
  return async () => {
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
