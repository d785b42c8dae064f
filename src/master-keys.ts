/**
 * Loads the master key ring the configuration names. With neither SEALD_MASTER_KEYS nor
 * SEALD_MASTER_KEYS_FILE: the embedded development database gets a generated key in the data
 * directory (and a loud warning); an external database is refused, because data sealed under a
 * key nobody configured would be lost with the machine.
 */
import { type Config, ConfigError, settings } from "./config.js";
import {
  type KeyRing,
  KeyRingError,
  loadMasterKeysFile,
  loadOrCreateDevKey,
  parseMasterKeys,
} from "./crypto/keyring.js";
import type { Logger } from "./log.js";

/** Loads (or, for the embedded database, creates) the master key ring. */
export async function loadKeyRing(config: Config, logger: Logger): Promise<KeyRing> {
  // parseMasterKeys names its source in its errors; a file's errors name the path, so add the variable.
  if (config.masterKeys !== undefined)
    return parseMasterKeys(config.masterKeys, settings.masterKeys.env);
  if (config.masterKeysFile !== undefined) {
    try {
      return await loadMasterKeysFile(config.masterKeysFile);
    } catch (err) {
      if (err instanceof KeyRingError)
        throw new ConfigError(settings.masterKeysFile.env, err.message);
      throw err;
    }
  }
  if (config.mongodbUri !== undefined) {
    throw new ConfigError(
      settings.masterKeys.env,
      `required with an external database: set it or ${settings.masterKeysFile.env} (generate a key with: seald keys generate)`,
    );
  }
  const dev = await loadOrCreateDevKey(config.dataDir);
  logger.warn(
    { path: dev.path, keyId: dev.ring.activeId, created: dev.created },
    dev.created
      ? "GENERATED a development master key for the embedded database; back it up, and configure SEALD_MASTER_KEYS for real use"
      : "using the development master key of the embedded database; configure SEALD_MASTER_KEYS for real use",
  );
  return dev.ring;
}
