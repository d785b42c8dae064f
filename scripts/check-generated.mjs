#!/usr/bin/env node
// Fails when gen/ is not exactly what `buf generate` makes from proto/ now.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const out = mkdtempSync(join(tmpdir(), "seald-gen-"));
try {
  const gen = spawnSync("buf", ["generate", "--output", out], { stdio: "inherit" });
  if (gen.status !== 0) process.exit(gen.status ?? 1);
  const diff = spawnSync("diff", ["-r", join(out, "gen"), "gen"], { encoding: "utf8" });
  if (diff.status !== 0) {
    console.error(
      `gen/ is stale; run "npm run generate" and commit:\n${diff.stdout}${diff.stderr}`,
    );
    process.exit(1);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
