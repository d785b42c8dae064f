import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Builds (when needed) and starts one FerretDB for the whole run, or uses
    // SEALD_TEST_MONGODB_URI; every test file then works in a database of its own.
    globalSetup: ["test/harness/global-setup.ts"],
    // Remembers the secret values REST tests send, for the teardown's log scan.
    setupFiles: ["test/harness/remember-fetch.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // CI also writes a JSON report, from which .ci/run prints a "N passed, N failed" line.
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: ".cache/vitest-report.json" },
  },
});
