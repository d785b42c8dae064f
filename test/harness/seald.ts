/**
 * Test harness: real seald servers on port 0 against the real test database, each test file in
 * a database of its own, and seald as a child process for the process-level behaviour.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { inject, onTestFinished } from "vitest";
import { type Seald, type StartOptions, startSeald } from "../../src/app.js";
import { type Config, defaultEdgeLimits } from "../../src/config.js";
import { createLogger, type Logger } from "../../src/log.js";
import { masterKeyLine } from "./keys.js";

export const root = fileURLToPath(new URL("../..", import.meta.url));

/** The URI of the run's shared test database server. */
export function mongoUri(): string {
  return inject("mongoUri");
}

/** A database name no other test file uses. */
export function uniqueDatabase(prefix = "t"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

export function tempDir(prefix = "seald-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export { masterKeyLine };

/** The master key every test server uses unless a test sets its own. */
export const testMasterKeys = masterKeyLine("test", 7);

/** The bootstrap admin token of every test server. */
export const adminToken = `seald_${"T".repeat(43)}`;

/** A configuration for an in-process server on a free loopback port. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    listen: { host: "127.0.0.1", port: 0 },
    mongodbUri: mongoUri(),
    database: uniqueDatabase(),
    dataDir: tempDir(),
    masterKeys: testMasterKeys,
    masterKeysFile: undefined,
    bootstrapToken: adminToken,
    tls: undefined,
    logLevel: "silent",
    shutdownTimeoutMs: 2000,
    dbTimeoutMs: 2000,
    authMaxFailures: 10,
    authMaxAnonymous: 100,
    authFailureWindowMs: 60_000,
    maxValueBytes: 65536,
    maxVersions: 10,
    envProviderPrefix: undefined,
    publicKeyGraceMs: 86_400_000,
    edge: defaultEdgeLimits(),
    auditFile: undefined,
    ...overrides,
  };
}

/**
 * The logger of in-process test servers: debug level into a per-worker file under
 * SEALD_TEST_LOG_DIR (set by the global setup, which scans the files for leaked credentials when
 * the run ends), or silent when that is unset.
 */
export function silentLogger(): Logger {
  const dir = process.env.SEALD_TEST_LOG_DIR;
  if (!dir) return createLogger("silent");
  return createLogger(
    "debug",
    pino.destination({ dest: join(dir, `worker-${process.pid}.log`), sync: true, append: true }),
  );
}

/** Starts seald in-process and waits until its database is initialised. */
export async function startTestSeald(
  overrides: Partial<Config> = {},
  options: StartOptions = {},
): Promise<Seald> {
  const seald = await startSeald(testConfig(overrides), silentLogger(), options);
  await seald.databaseStarted;
  return seald;
}

/** A seald child process, started as `npm start` would, with its output captured. */
export interface SealdProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  /** Waits until a line matching the pattern appears on stdout, then returns that line. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Runs `tsx src/main.ts` with the given arguments and environment (SEALD_* only). */
export function spawnSeald(args: string[], env: Record<string, string>): SealdProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (s: string) => {
    out += s;
  });
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    err += s;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  // A test that fails before stopping its process must not leave it (and the embedded database
  // it may have started) running: when the test ends, SIGTERM lets seald stop its database.
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForLog(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const line = out.split("\n").find((l) => pattern.test(l));
        if (line) return line;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no log line matching ${pattern}; stdout:\n${out}\nstderr:\n${err}`);
    },
  };
}

/** A clock for StartOptions.now: real time plus an offset the test moves forward. */
export interface TestClock {
  readonly now: () => Date;
  /** Moves the clock forward, so a wait of that long passes at once for the server. */
  advance(ms: number): void;
}

/**
 * A clock that keeps running with real time (so nothing in the server stalls on a frozen clock)
 * and jumps when the test advances it: a test of an expiry or a grace period skips the wait
 * instead of sleeping past it and racing a loaded machine.
 */
export function testClock(): TestClock {
  let offset = 0;
  return {
    now: () => new Date(Date.now() + offset),
    advance(ms) {
      offset += ms;
    },
  };
}

/** Polls fn until it returns true or the bound passes. */
export async function eventually(
  fn: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(fn)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline) throw new Error("condition not met within the bound");
    await new Promise((r) => setTimeout(r, 100));
  }
}
