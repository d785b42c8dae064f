/**
 * The embedded database lives and dies with its seald, and never runs twice on one data
 * directory: real seald processes on the embedded default, each test on a directory of its own.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { eventually, type SealdProcess, spawnSeald, tempDir } from "../harness/seald.js";

/** True while the process exists and is not a zombie waiting for a parent to reap it. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The state is the field after the parenthesised command name.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** A data directory removed when the test ends (after the processes on it have stopped). */
function dataDirForTest(prefix: string): string {
  const dir = tempDir(prefix);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts seald on the embedded database in dataDir and waits until it serves. */
async function startOn(dataDir: string): Promise<{ p: SealdProcess; dbPid: number; url: string }> {
  const p = spawnSeald([], { SEALD_LISTEN: "127.0.0.1:0", SEALD_DATA_DIR: dataDir });
  const using = JSON.parse(await p.waitForLog(/"msg":"using the embedded database"/, 40_000));
  const url = `http://${JSON.parse(await p.waitForLog(/"msg":"listening"/)).address as string}`;
  await p.waitForLog(/"msg":"ready to serve"/, 40_000);
  return { p, dbPid: using.pid as number, url };
}

describe("the embedded database", () => {
  it("exits when its seald is killed with SIGKILL, and the next seald starts on its files", async () => {
    const dataDir = dataDirForTest("seald-embedded-kill-");
    const first = await startOn(dataDir);
    expect(running(first.dbPid)).toBe(true);
    first.p.child.kill("SIGKILL");
    expect(await first.p.exited).toBe("SIGKILL");
    // Started at once: it waits for the orphan to finish its shutdown rather than failing on
    // the directory lock, or running beside it.
    const secondStart = startOn(dataDir);
    await eventually(() => !running(first.dbPid), 5000).catch(() => {
      throw new Error(`the embedded database (pid ${first.dbPid}) outlived its seald by 5 s`);
    });
    const second = await secondStart;
    expect(second.dbPid).not.toBe(first.dbPid);
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
    second.p.child.kill("SIGTERM");
    expect(await second.p.exited).toBe(0);
    expect(running(second.dbPid)).toBe(false);
  }, 120_000);

  it("refuses a second seald on the same data directory, naming the holder", async () => {
    const dataDir = dataDirForTest("seald-embedded-twice-");
    const first = await startOn(dataDir);
    const second = spawnSeald([], { SEALD_LISTEN: "127.0.0.1:0", SEALD_DATA_DIR: dataDir });
    const code = await second.exited;
    expect(code).not.toBe(0);
    expect(second.stderr()).toContain(
      `seald: data directory ${join(dataDir, "db")} is in use by the embedded database pid ${first.dbPid} (started by pid ${first.p.child.pid})`,
    );
    expect(second.stderr()).toMatch(/ since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    // The first is untouched.
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    first.p.child.kill("SIGTERM");
    expect(await first.p.exited).toBe(0);
  }, 120_000);
});
