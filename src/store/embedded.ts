/**
 * The embedded database: FerretDB v1 on SQLite, built from the Go module proxy by
 * scripts/testdb.mjs into .cache/bin. `npm start` without a MongoDB URI runs it with its files in
 * the data directory, and the test harness runs it with a temporary directory.
 *
 * It lives exactly as long as its parent: its stdin is a pipe this process never writes to, and
 * the wrapper (test/testdb/main.go, -watch-stdin) shuts down when that pipe closes, which the
 * kernel does when this process exits, kill -9 included. It never runs twice on one directory:
 * the wrapper holds a flock on <dir>/LOCK and a second one exits with status 3, naming the
 * holder; that becomes a DataDirectoryInUseError here.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** Where scripts/testdb.mjs puts the FerretDB wrapper binary. */
export const embeddedBinaryPath = fileURLToPath(
  new URL("../../.cache/bin/seald-ferretdb", import.meta.url),
);

/** Another embedded database (and so, most likely, another seald) uses the directory. */
export class DataDirectoryInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DataDirectoryInUseError";
  }
}

/** The wrapper's exit status when another process holds the directory's lock. */
const exitLocked = 3;

/** A running embedded database process. */
export interface EmbeddedDatabase {
  /** A MongoDB URI for the driver, with directConnection set. */
  readonly uri: string;
  readonly pid: number;
  /** Stops the process (SIGTERM, then SIGKILL after a bound) and waits for it to exit. */
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  /** Directory for the SQLite files; created when missing. */
  readonly dir: string;
  /** Loopback address to listen on; port 0 picks a free one. */
  readonly listen?: string;
  readonly binary?: string;
  readonly startTimeoutMs?: number;
}

/** Starts FerretDB and resolves once it accepts connections. */
export function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const binary = options.binary ?? embeddedBinaryPath;
  if (!existsSync(binary)) {
    return Promise.reject(
      new Error(`embedded database binary ${binary} is missing: run "npm run testdb build"`),
    );
  }
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const args = ["-dir", options.dir, "-listen", options.listen ?? "127.0.0.1:0", "-watch-stdin"];
  const child = spawn(binary, args, { stdio: ["pipe", "pipe", "pipe"] });
  // Never written to and never ended: its closing at this process's exit is the child's signal
  // to stop. An EPIPE after the child exits is of no interest.
  child.stdin.on("error", () => {});
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`embedded database did not start within the bound: ${stderr.trim()}`));
    }, options.startTimeoutMs ?? 30_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // "close", not "exit": by then stderr has been read to its end, and the message is whole.
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const message = stderr.trim().replace(/^testdb: /, "");
      reject(
        code === exitLocked
          ? new DataDirectoryInUseError(message)
          : new Error(`embedded database exited (${signal ?? code}): ${message}`),
      );
    });
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      const match = /^ready (mongodb:\/\/\S+)$/.exec(line);
      if (!match?.[1] || child.pid === undefined) return;
      clearTimeout(timer);
      lines.close();
      const uri = new URL(match[1]);
      uri.searchParams.set("directConnection", "true");
      resolve({ uri: uri.toString(), pid: child.pid, stop });
    });
  });
}
