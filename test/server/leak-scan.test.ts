/**
 * The teardown's log scan (test/harness/global-setup.ts) must be able to fail: a log holding a
 * remembered secret value, a token or a test master key is a failed run.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scanLogs } from "../harness/global-setup.js";
import { plaintextsPrefix } from "../harness/plaintexts.js";
import { masterKeyLine } from "../harness/seald.js";

function logDir(log: string): string {
  const dir = mkdtempSync(join(tmpdir(), "seald-scan-"));
  writeFileSync(join(dir, `${plaintextsPrefix}1.txt`), `${JSON.stringify("s3cret-value-42")}\n`);
  writeFileSync(join(dir, "worker-1.log"), `{"level":20,"msg":"request"}\n${log}\n`);
  return dir;
}

describe("the debug-log scan", () => {
  it("passes a log without secrets", () => {
    expect(() => scanLogs(logDir('{"msg":"created","name":"db-password"}'))).not.toThrow();
  });

  it("fails on a remembered value, a token or a test master key", () => {
    expect(() => scanLogs(logDir('{"body":"s3cret-value-42"}'))).toThrow(/secret value/);
    expect(() => scanLogs(logDir(`{"auth":"seald_${"x".repeat(43)}"}`))).toThrow(/token/);
    const key = masterKeyLine("old", 3).split(":")[1] ?? "";
    expect(() => scanLogs(logDir(`{"keys":"${key}"}`))).toThrow(/master key/);
  });
});
