/**
 * The composition root: config -> database -> services -> server. main.ts adds the process
 * concerns (signals, exit codes); tests call startSeald directly on port 0.
 */
import { join } from "node:path";
import { ConnectionString } from "mongodb-connection-string-url";
import { type Config, ConfigError, settings } from "./config.js";
import type { Logger } from "./log.js";
import { createHandler } from "./server/http.js";
import { type Listener, listen } from "./server/listener.js";
import { Readiness } from "./server/readiness.js";
import { Database } from "./store/database.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "./store/embedded.js";

/** A running seald. */
export interface Seald {
  /** The bound address, for example "127.0.0.1:8080" (the real port when 0 was asked for). */
  readonly address: string;
  /** "http://host:port" or "https://host:port". */
  readonly url: string;
  readonly database: Database;
  /** Resolves once the database is initialised (or false when shut down before that). */
  readonly databaseStarted: Promise<boolean>;
  /** Graceful stop: stop accepting, finish in-flight calls within the bound, close the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Overrides the embedded database binary (tests). */
  readonly embeddedBinary?: string;
}

/** Starts seald with the given configuration. */
export async function startSeald(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<Seald> {
  const shutdown = new AbortController();
  let embedded: EmbeddedDatabase | undefined;
  let uri = config.mongodbUri;
  if (uri === undefined) {
    const dir = join(config.dataDir, "db");
    embedded = await startEmbeddedDatabase({
      dir,
      ...(options.embeddedBinary ? { binary: options.embeddedBinary } : {}),
    });
    uri = embedded.uri;
    logger.info(
      { database: "embedded FerretDB (SQLite)", dataDir: dir, pid: embedded.pid },
      "using the embedded database",
    );
  } else {
    // Log where the data lives without the credentials the URI may carry.
    logger.info(
      { database: "MongoDB", hosts: new ConnectionString(uri).hosts, name: config.database },
      "using an external database",
    );
  }

  const database = new Database({ uri, name: config.database, logger });
  const databaseStarted = database.start(shutdown.signal);
  databaseStarted.catch((err: unknown) => logger.fatal({ err }, "database cannot be used"));
  const readiness = new Readiness(async () => database.isInitialized && (await database.ping()));
  readiness.start();

  let listener: Listener;
  try {
    listener = await listen({
      host: config.listen.host,
      port: config.listen.port,
      tls: config.tls,
      handler: createHandler({ logger, readiness, shutdown: shutdown.signal }),
    });
  } catch (err) {
    shutdown.abort();
    readiness.stop();
    await database.close().catch(() => {});
    await embedded?.stop();
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    if (code === "ERR_OSSL_X509_KEY_VALUES_MISMATCH" || String(code).startsWith("ERR_OSSL")) {
      throw new ConfigError(
        settings.tlsKey.env,
        `does not match ${settings.tlsCert.env} or is not a usable key (${code})`,
      );
    }
    throw new ConfigError(
      settings.listen.env,
      `cannot listen on ${config.listen.host}:${config.listen.port} (${code})`,
    );
  }

  const host =
    listener.address.family === "IPv6" ? `[${listener.address.address}]` : listener.address.address;
  const address = `${host}:${listener.address.port}`;
  const url = `${config.tls ? "https" : "http"}://${address}`;
  logger.info({ address, tls: config.tls !== undefined }, "listening");

  let closing: Promise<void> | undefined;
  return {
    address,
    url,
    database,
    databaseStarted,
    close() {
      closing ??= (async () => {
        logger.info({ timeoutMs: config.shutdownTimeoutMs }, "shutting down");
        shutdown.abort();
        readiness.stop();
        await listener.close(config.shutdownTimeoutMs);
        await databaseStarted.catch(() => {});
        await database.close();
        await embedded?.stop();
        logger.info("stopped");
      })();
      return closing;
    },
  };
}
