/**
 * The embedded database: FerretDB v1 on SQLite, built from the Go module proxy by
 * scripts/testdb.mjs into .cache/bin. `npm start` without a MongoDB URI runs it with its files in
 * the data directory, and the test harness runs it with a temporary directory.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** Where scripts/testdb.mjs puts the FerretDB wrapper binary. */
export const embeddedBinaryPath = fileURLToPath(
  new URL("../../.cache/bin/seald-ferretdb", import.meta.url),
);

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
  const child = spawn(binary, ["-dir", options.dir, "-listen", options.listen ?? "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
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
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`embedded database exited (${signal ?? code}): ${stderr.trim()}`));
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
