/**
 * The seald process: parse configuration, start, and stop gracefully on SIGTERM or SIGINT.
 */
import { startSeald } from "./app.js";
import { ConfigError, parseConfig } from "./config.js";
import { KeyRingError } from "./crypto/keyring.js";
import { createLogger } from "./log.js";
import { DataDirectoryInUseError } from "./store/embedded.js";

const parsed = parseConfig(process.argv.slice(2), process.env);
if (parsed.kind === "exit") {
  (parsed.code === 0 ? process.stdout : process.stderr).write(`${parsed.output}\n`);
  process.exit(parsed.code);
}

const logger = createLogger(parsed.config.logLevel);

try {
  const seald = await startSeald(parsed.config, logger, { providerEnv: process.env });
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, "second signal, exiting at once");
      logger.flush();
      process.exit(1);
    }
    logger.info({ signal }, "signal received");
    seald.close().then(
      () => {
        logger.flush();
        process.exit(process.exitCode ?? 0);
      },
      (err: unknown) => {
        logger.error({ err }, "error during shutdown");
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // A database seald must not use (written by a newer schema) is fatal: stop and say so.
  seald.databaseStarted.catch((err: unknown) => {
    if (err instanceof KeyRingError) process.stderr.write(`seald: ${err.message}\n`);
    process.exitCode = 1;
    stop("SIGTERM");
  });
} catch (err) {
  if (
    err instanceof ConfigError ||
    err instanceof KeyRingError ||
    err instanceof DataDirectoryInUseError
  ) {
    process.stderr.write(`seald: ${err.message}\n`);
  } else {
    logger.fatal({ err }, "cannot start");
  }
  logger.flush();
  process.exit(2);
}
