/**
 * The MongoDB connection: one client, start-up with retry and backoff, indexes and the schema
 * version recorded at start-up, and a cheap liveness probe for readiness.
 */
import { type Db, MongoClient } from "mongodb";
import type { Logger } from "../log.js";
import { collections, indexes } from "./schema.js";

/** The schema version this code writes; a database marked with a newer one is refused. */
export const schemaVersion = 1;

export interface DatabaseOptions {
  readonly uri: string;
  readonly name: string;
  readonly logger: Logger;
  /**
   * The driver's bound on each stage of an operation (SEALD_DB_TIMEOUT): server selection,
   * connection checkout, connecting, and every socket read or write. Short, to fail fast.
   */
  readonly timeoutMs?: number;
}

/** A newer seald has written this database; running older code against it would be unsafe. */
export class SchemaTooNewError extends Error {
  constructor(found: number) {
    super(`database schema version ${found} is newer than this seald's ${schemaVersion}`);
    this.name = "SchemaTooNewError";
  }
}

/** The MongoDB database seald stores everything in. */
export class Database {
  readonly client: MongoClient;
  readonly db: Db;
  private readonly logger: Logger;
  private initialized = false;

  constructor(options: DatabaseOptions) {
    const timeoutMs = options.timeoutMs ?? 2000;
    // mongodb 7.8 made timeoutMS (one bound for the whole operation) a no-op, so each stage gets
    // the bound. The socket timeout is what ends a call to a database that stalls with its
    // connections open (a paused process): the driver closes that connection and opens fresh
    // ones once the database answers again. It also ends any single command that runs longer,
    // so SEALD_DB_TIMEOUT must exceed the slowest legitimate command (large FerretDB lists).
    this.client = new MongoClient(options.uri, {
      serverSelectionTimeoutMS: timeoutMs,
      waitQueueTimeoutMS: timeoutMs,
      connectTimeoutMS: timeoutMs,
      socketTimeoutMS: timeoutMs,
      appName: "seald",
      // Command events feed the database latency histogram.
      monitorCommands: true,
    });
    this.db = this.client.db(options.name);
    this.logger = options.logger;
  }

  /** True once indexes and the schema version are in place. */
  get isInitialized(): boolean {
    return this.initialized;
  }

  /**
   * Connects, creates indexes and records the schema version, retrying with capped exponential
   * backoff while the database is unreachable, so that a database that starts after seald is
   * waited for rather than crash-looped on. Resolves false if the signal aborts first.
   */
  async start(signal: AbortSignal): Promise<boolean> {
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const createdAt = await this.initialize();
        this.initialized = true;
        this.logger.info({ attempt, createdAt, schemaVersion }, "database ready");
        return true;
      } catch (err) {
        if (err instanceof SchemaTooNewError) throw err;
        const delayMs = Math.min(200 * 2 ** (attempt - 1), 10_000);
        this.logger.warn(
          { attempt, retryInMs: delayMs, err: describe(err) },
          "database unreachable at start-up, retrying",
        );
        await sleep(delayMs, signal);
      }
    }
    return false;
  }

  /** Answers whether the database responds to a ping within the timeout. */
  async ping(timeoutMs = 1000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    // The race is the bound: the driver ignores timeoutMS since 7.8.
    const ping = this.db.command({ ping: 1 }).then(
      (r) => r.ok === 1,
      () => false,
    );
    try {
      return await Promise.race([ping, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** Initialises the schema and returns when this database was first initialised. */
  private async initialize(): Promise<Date | undefined> {
    await this.db.command({ ping: 1 });
    for (const [collection, specs] of Object.entries(indexes)) {
      // One index per command: FerretDB v1.24 panics (and drops the connection) on a
      // createIndexes batch of several indexes when some of them already exist.
      for (const spec of specs) await this.db.collection(collection).createIndexes([spec]);
    }
    const meta = this.db.collection<{ _id: string; version: number; createdAt: Date }>(
      collections.meta,
    );
    // $max only ever raises the recorded version, so an older replica cannot lower it.
    await meta.updateOne(
      { _id: "schema" },
      { $max: { version: schemaVersion }, $setOnInsert: { createdAt: new Date() } },
      { upsert: true },
    );
    const stored = await meta.findOne({ _id: "schema" });
    if (stored && stored.version > schemaVersion) throw new SchemaTooNewError(stored.version);
    return stored?.createdAt;
  }
}

function describe(err: unknown): string {
  // Driver messages name hosts and reasons, never credentials; keep just the message.
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
