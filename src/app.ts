/**
 * The composition root: config -> database -> services -> server. main.ts adds the process
 * concerns (signals, exit codes); tests call startSeald directly on port 0.
 */
import { join } from "node:path";
import { ConnectionString } from "mongodb-connection-string-url";
import { AuditLog, type AuditRecordSink } from "./auth/audit.js";
import { Authenticator } from "./auth/authenticate.js";
import { CallLimiter } from "./auth/call-limit.js";
import { FailureAudit } from "./auth/failure-audit.js";
import { Guard } from "./auth/guard.js";
import { FailureLimiter } from "./auth/rate-limit.js";
import { type Config, ConfigError, settings } from "./config.js";
import { deriveSubkey, type KeyRing, KeyRingError } from "./crypto/keyring.js";
import { loadSodium } from "./crypto/sodium.js";
import type { Logger } from "./log.js";
import { loadKeyRing } from "./master-keys.js";
import { createHandler } from "./server/http.js";
import { type Listener, listen } from "./server/listener.js";
import { Metrics } from "./server/metrics.js";
import { Readiness } from "./server/readiness.js";
import { AccessUseCases } from "./service/access.js";
import { bootstrapAdmin } from "./service/bootstrap.js";
import { EnvKeepers } from "./service/env-keeper.js";
import { KeyUseCases } from "./service/key-admin.js";
import { ProviderUseCases } from "./service/providers.js";
import { RewrapJob, type RewrapOptions } from "./service/rewrap.js";
import { defaultLimits } from "./service/secret-rules.js";
import { SecretUseCases } from "./service/secrets.js";
import { mongoAccessStore } from "./store/access-store.js";
import { auditFileSink, auditStdoutSink } from "./store/audit-file.js";
import { mongoAuditStore } from "./store/audit-store.js";
import { Database } from "./store/database.js";
import { type EmbeddedDatabase, startEmbeddedDatabase } from "./store/embedded.js";
import { mongoProviderStore } from "./store/provider-store.js";
import { mongoRewrapStore } from "./store/rewrap-store.js";
import { mongoSecretStore } from "./store/secret-store.js";
import { translatingOutages } from "./store/unavailable.js";

/** A running seald. */
export interface Seald {
  /** The bound address, for example "127.0.0.1:8080" (the real port when 0 was asked for). */
  readonly address: string;
  /** "http://host:port" or "https://host:port". */
  readonly url: string;
  readonly database: Database;
  readonly keyRing: KeyRing;
  /** Resolves once the database is initialised (or false when shut down before that). */
  readonly databaseStarted: Promise<boolean>;
  /** Graceful stop: stop accepting, finish in-flight calls within the bound, close the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Overrides the embedded database binary (tests). */
  readonly embeddedBinary?: string;
  /** The environment the env keeper reads (main passes process.env). */
  readonly providerEnv?: Readonly<Record<string, string | undefined>>;
  /** Re-wrap job pacing (tests shorten the lease and the batches). */
  readonly rewrap?: RewrapOptions;
  /**
   * The clock the rules read (tests move it): token expiry and the authentication cache, the
   * namespace public-key grace window, failure windows, the times on records and audit entries.
   * Deadlines, timeouts and the re-wrap lease stay on the real clock.
   */
  readonly now?: () => Date;
}

/** Starts seald with the given configuration. */
export async function startSeald(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<Seald> {
  const shutdown = new AbortController();
  const now = options.now ?? (() => new Date());
  const clock = options.now;
  const nowMs = clock ? () => clock().getTime() : Date.now;
  await loadSodium();
  const keyRing = await loadKeyRing(config, logger);
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

  const metrics = new Metrics();
  const database = new Database({
    uri,
    name: config.database,
    logger,
    timeoutMs: config.dbTimeoutMs,
  });
  metrics.observeDatabase(database.client);
  // Every store turns "database unreachable" into a domain "unavailable" error, and no store
  // call outlives the database timeout.
  const outages = { timeoutMs: config.dbTimeoutMs };
  const accessStore = translatingOutages(mongoAccessStore(database.db), outages);
  const auditFile = await openAuditSink(config.auditFile);
  const audit = new AuditLog(translatingOutages(mongoAuditStore(database.db), outages), {
    getMacKey: (keyId = keyRing.activeId) => ({
      keyId,
      key: deriveSubkey(keyRing, "audit", keyId),
    }),
    ...(auditFile ? { sink: auditFile } : {}),
    onHeadProblem: (problem) => logger.error({ problem }, "audit head not moved"),
  });
  const guard = new Guard(audit, now);
  const authenticator = new Authenticator(accessStore, keyRing, { now: nowMs });
  const limiter = new FailureLimiter({
    maxFailures: config.authMaxFailures,
    windowMs: config.authFailureWindowMs,
    now: nowMs,
  });
  const anonymous = new FailureLimiter({
    maxFailures: config.authMaxAnonymous,
    windowMs: config.authFailureWindowMs,
    now: nowMs,
  });
  const failureAudit = new FailureAudit(guard, {
    windowMs: config.authFailureWindowMs,
    now: nowMs,
  });
  const calls = new CallLimiter({
    maxPerPrincipal: config.edge.maxCallsPerPrincipal,
    maxPerAddress: config.edge.maxCallsPerAddress,
  });
  const access = new AccessUseCases(accessStore, keyRing, guard, authenticator, now);
  const secretStore = translatingOutages(
    mongoSecretStore(database.db, { ring: keyRing, maxVersions: config.maxVersions }),
    outages,
  );
  // External keepers resolve through the providers: a keeper names a provider, whose type decides.
  const providers = new ProviderUseCases(
    translatingOutages(mongoProviderStore(database.db), outages),
    guard,
    new EnvKeepers(options.providerEnv ?? {}, config.envProviderPrefix),
    now,
  );
  const secrets = new SecretUseCases({
    store: secretStore,
    ring: keyRing,
    guard,
    keepers: providers,
    limits: { ...defaultLimits, maxValueBytes: config.maxValueBytes },
    observer: metrics.secretsObserver(logger),
    now,
  });

  const rewrap = new RewrapJob(mongoRewrapStore(database.db, secretStore), keyRing, {
    ...options.rewrap,
    onProgress: (job, remaining) => {
      metrics.rewrapProcessed.set(job.processed);
      metrics.rewrapRemaining.set(remaining);
      if (job.state === "done")
        logger.info({ rewrapped: job.rewrapped, target: job.targetKeyId }, "re-wrap job done");
    },
    onError: (err) => logger.error({ err }, "re-wrap job failed"),
  });
  const keys = new KeyUseCases({
    ring: keyRing,
    guard,
    rewrap,
    namespaceKeys: secrets.namespaceKeys,
    publicKeyGraceMs: config.publicKeyGraceMs,
    now,
  });

  let startupDone = false;
  const databaseStarted = database.start(shutdown.signal).then(async (started) => {
    if (!started) return false;
    // A database written before heads carried integrity MACs is adopted once, as it stands.
    const adopted = await secretStore.adoptHeadsWithoutMac();
    if (adopted > 0) logger.warn({ adopted }, "gave secret heads written before head MACs a MAC");
    await checkKeysInUse(keyRing, [
      ...(await secretStore.kekIdsInUse()),
      ...(await accessStore.kekIdsInUse()),
    ]);
    const boot = await bootstrapAdmin(accessStore, keyRing, config.bootstrapToken, now);
    if (boot.created) logger.info({ principal: "admin" }, "bootstrapped the first admin");
    if (boot.generatedToken) {
      // Printed once, to stderr and never to the log: this is the only copy.
      process.stderr.write(
        `seald: the bootstrap admin's token (shown once, store it now): ${boot.generatedToken}\n`,
      );
    }
    // Resume a re-wrap job whose holder died, on whichever replica notices first.
    rewrap.supervise();
    // Only now can every request be answered: before the bootstrap admin exists its token
    // would be refused, so readiness (and this log line) waits for it, not for the database.
    startupDone = true;
    logger.info({}, "ready to serve");
    return true;
  });
  databaseStarted.catch((err: unknown) => logger.fatal({ err }, "database cannot be used"));
  const readiness = new Readiness(async () => startupDone && (await database.ping()));
  readiness.start();

  let listener: Listener;
  try {
    listener = await listen({
      host: config.listen.host,
      port: config.listen.port,
      tls: config.tls,
      limits: config.edge,
      ...createHandler({
        logger,
        readiness,
        shutdown: shutdown.signal,
        access,
        secrets,
        providers,
        keys,
        audit,
        guard,
        authenticator,
        limiter,
        anonymous,
        failureAudit,
        calls,
        metrics,
      }),
    });
  } catch (err) {
    shutdown.abort();
    readiness.stop();
    await database.close().catch(() => {});
    await embedded?.stop();
    await auditFile?.close?.().catch(() => {});
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

  metrics.observeEdge(listener.counters);
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
    keyRing,
    databaseStarted,
    close() {
      closing ??= (async () => {
        logger.info({ timeoutMs: config.shutdownTimeoutMs }, "shutting down");
        shutdown.abort();
        readiness.stop();
        await listener.close(config.shutdownTimeoutMs);
        // The repeat counts of failed authentications not yet written.
        await failureAudit.close().catch(() => {});
        await rewrap.stop();
        await databaseStarted.catch(() => {});
        await database.close();
        await embedded?.stop();
        await auditFile?.close?.();
        logger.info("stopped");
      })();
      return closing;
    },
  };
}

/**
 * The record sink SEALD_AUDIT_FILE asks for, opened at start so that a path that cannot be
 * written stops seald here rather than failing every request later.
 */
async function openAuditSink(
  path: string | undefined,
): Promise<(AuditRecordSink & { close?: () => Promise<void> }) | undefined> {
  if (path === undefined) return undefined;
  if (path === "-") return auditStdoutSink();
  try {
    return await auditFileSink(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(settings.auditFile.env, `cannot open ${path} for appending (${code})`);
  }
}

/** Refuses to run when stored data names a master key the ring does not hold. */
async function checkKeysInUse(ring: KeyRing, inUse: readonly string[]): Promise<void> {
  const missing = [...new Set(inUse)].filter((id) => !ring.has(id));
  if (missing.length > 0) {
    throw new KeyRingError(
      `stored data is sealed under master key ${missing.map((id) => `"${id}"`).join(", ")}, which is not configured; add it to SEALD_MASTER_KEYS (or the keys file) and restart`,
    );
  }
}
