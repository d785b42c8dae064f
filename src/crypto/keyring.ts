import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { link, mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { inspect } from "node:util";
import { decodeStandardBase64, encodeStandardBase64 } from "./base64.js";
import { requireSodium } from "./sodium.js";

/** Length in bytes of every master key (KEK). */
export const MASTER_KEY_BYTES = 32;

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const KEY_ID_RULE = "1-32 characters of A-Z a-z 0-9 _ -";

/** Name of the development master key file inside the data directory. */
export const DEV_KEY_FILE = "master.key";

/**
 * A master key configuration problem; the message names the source and the problem and never
 * contains key material.
 */
export class KeyRingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyRingError";
  }
}

/**
 * The configured master keys (KEKs) by id, the first one active; prints and serialises as its ids
 * only.
 */
export class KeyRing {
  // ES private: invisible to util.inspect, JSON.stringify, spreading and structuredClone.
  readonly #keys: ReadonlyMap<string, Uint8Array>;
  readonly #source: string;

  /** The id of the key that wraps new data keys. */
  readonly activeId: string;

  /** All key ids, active first, in configuration order. */
  readonly ids: readonly string[];

  private constructor(keys: Map<string, Uint8Array>, source: string) {
    this.#keys = keys;
    this.#source = source;
    this.ids = Object.freeze([...keys.keys()]);
    const first = this.ids[0];
    if (first === undefined) throw new KeyRingError(`${source}: empty`);
    this.activeId = first;
  }

  /**
   * Builds a ring from (id, 32-byte key) pairs, the first active, copying the keys; `source`
   * names where they came from in error messages.
   */
  static fromEntries(
    entries: Iterable<readonly [id: string, key: Uint8Array]>,
    source = "key ring",
  ): KeyRing {
    const keys = new Map<string, Uint8Array>();
    let position = 0;
    for (const [id, key] of entries) {
      position++;
      checkKeyId(id, source, `entry ${position}`);
      if (keys.has(id)) throw new KeyRingError(`${source}: duplicate key id "${id}"`);
      if (key.byteLength !== MASTER_KEY_BYTES) {
        throw new KeyRingError(
          `${source}: key "${id}" is ${key.byteLength} bytes, want ${MASTER_KEY_BYTES}`,
        );
      }
      keys.set(id, Uint8Array.from(key));
    }
    return new KeyRing(keys, source);
  }

  /** Returns the key with this id, owned by the ring and not to be modified, or undefined. */
  get(id: string): Uint8Array | undefined {
    return this.#keys.get(id);
  }

  /** Whether the ring holds a key with this id. */
  has(id: string): boolean {
    return this.#keys.has(id);
  }

  /** Returns the key with this id or throws a KeyRingError naming the id. */
  require(id: string): Uint8Array {
    const key = this.#keys.get(id);
    if (key === undefined) throw new KeyRingError(`${this.#source}: no key with id "${id}"`);
    return key;
  }

  /** Describes the ring by its ids only. */
  toString(): string {
    return `KeyRing(active=${this.activeId}, ids=${this.ids.join(",")})`;
  }

  /** Serialises the ring as its ids only. */
  toJSON(): { activeId: string; ids: readonly string[] } {
    return { activeId: this.activeId, ids: this.ids };
  }

  /** Shows the ring as its ids only in util.inspect and console.log. */
  [inspect.custom](): string {
    return this.toString();
  }
}

function checkKeyId(id: string, source: string, where: string): void {
  // The offending text is deliberately not echoed: an entry written the wrong way round
  // ("base64:id") would put the key itself where the id should be.
  if (!KEY_ID.test(id))
    throw new KeyRingError(`${source}: ${where}: key id must be ${KEY_ID_RULE}`);
}

/**
 * Parses `id:base64,id:base64,...` (commas and/or newlines between entries, whitespace around
 * them, `#` comment lines), first key active, naming `source` in every error.
 */
export function parseMasterKeys(text: string, source: string): KeyRing {
  const entries: Array<[string, Uint8Array]> = [];
  try {
    let position = 0;
    // Editors on Windows may save the file with a byte-order mark, which would spoil the first id.
    for (const line of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
      if (line.trimStart().startsWith("#")) continue;
      for (const raw of line.split(",")) {
        const entry = raw.trim();
        if (entry === "") continue;
        position++;
        const colon = entry.indexOf(":");
        if (colon < 0) {
          throw new KeyRingError(`${source}: entry ${position} is not of the form id:base64`);
        }
        const id = entry.slice(0, colon).trim();
        checkKeyId(id, source, `entry ${position}`);
        const key = decodeStandardBase64(entry.slice(colon + 1).trim());
        if (key === undefined) {
          throw new KeyRingError(
            `${source}: key "${id}" is not valid base64 (want standard base64: A-Z a-z 0-9 + / =)`,
          );
        }
        entries.push([id, key]);
      }
    }
    if (entries.length === 0) throw new KeyRingError(`${source}: empty`);
    return KeyRing.fromEntries(entries, source);
  } finally {
    // fromEntries keeps copies; these decoded buffers would otherwise linger until collected.
    for (const [, key] of entries) key.fill(0);
  }
}

/**
 * Reads a key file that only its owner may read or write; undefined if it does not exist.
 */
async function readOwnerOnlyFile(path: string): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_NOFOLLOW is not used: operators legitimately symlink mounted secrets (Kubernetes does).
    handle = await open(path, constants.O_RDONLY);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw new KeyRingError(`${path}: cannot open master key file (${errnoCode(err) ?? err})`);
  }
  try {
    // fstat on the open handle, not stat on the path, so the file checked is the file read.
    const stat = await handle.stat();
    if (!stat.isFile()) throw new KeyRingError(`${path}: not a regular file`);
    // Windows has no POSIX permission bits; Node reports a fixed mode there.
    if (process.platform !== "win32" && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, "0");
      throw new KeyRingError(
        `${path}: mode ${mode} lets group or others read or write this master key file; ` +
          `run chmod 600 ${path}`,
      );
    }
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

/** Loads master keys from a file that must not be readable or writable by group or others. */
export async function loadMasterKeysFile(path: string): Promise<KeyRing> {
  const text = await readOwnerOnlyFile(path);
  if (text === undefined) throw new KeyRingError(`${path}: no such file`);
  return parseMasterKeys(text, path);
}

/** Returns a new `id:base64` master key entry holding 32 fresh random bytes. */
export function generateMasterKeyLine(id: string): string {
  checkKeyId(id, "generateMasterKeyLine", "id");
  const key = randomBytes(MASTER_KEY_BYTES);
  try {
    return `${id}:${encodeStandardBase64(key)}`;
  } finally {
    key.fill(0);
  }
}

/** Result of loadOrCreateDevKey. */
export interface DevKey {
  readonly ring: KeyRing;
  /** True when this call generated the key; the caller should say so loudly. */
  readonly created: boolean;
  /** The key file, for that message. */
  readonly path: string;
}

/**
 * Loads `<dataDir>/master.key`, or creates it (mode 0600, directory 0700) with one fresh key,
 * for the embedded development database only.
 */
export async function loadOrCreateDevKey(dataDir: string): Promise<DevKey> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, DEV_KEY_FILE);
  const existing = await readOwnerOnlyFile(path);
  if (existing !== undefined)
    return { ring: parseMasterKeys(existing, path), created: false, path };

  const id = `dev-${new Date().toISOString().slice(0, 10).replaceAll("-", "")}`;
  const text =
    "# seald development master key, generated by loadOrCreateDevKey.\n" +
    "# Everything sealed in this data directory is unreadable without it.\n" +
    "# Not for production: configure SEALD_MASTER_KEYS or SEALD_MASTER_KEYS_FILE instead.\n" +
    `${generateMasterKeyLine(id)}\n`;
  // Written completely to a private temporary file, then hard-linked into place: link() never
  // replaces an existing file, so two processes starting together cannot each keep a different
  // key (with rename the loser would seal data under a key that no longer exists), and a crash
  // never leaves a half-written master.key behind.
  const temp = join(dataDir, `.${DEV_KEY_FILE}.${process.pid}.${randomBytes(6).toString("hex")}`);
  let created = false;
  try {
    const handle = await open(temp, "wx", 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, path);
      created = true;
    } catch (err) {
      if (errnoCode(err) !== "EEXIST") throw err;
    }
  } finally {
    await rm(temp, { force: true });
  }
  if (created) await syncDirectory(dataDir);
  return { ring: await loadMasterKeysFile(path), created, path };
}

async function syncDirectory(dir: string): Promise<void> {
  // Best effort: losing the new directory entry in a power cut would lose every value sealed
  // under the key, but not every platform lets a directory be opened and fsynced.
  try {
    const handle = await open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Nothing useful to do: the file itself is already synced.
  }
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

/**
 * Fixed libsodium KDF parameters per purpose. crypto_kdf contexts are exactly 8 bytes. Never
 * change a row: anything keyed with the derived subkey (stored token hashes, for one) would stop
 * matching. Add a row for a new purpose instead.
 */
const SUBKEY_PURPOSES = {
  /** Keyed hashes of API tokens. */
  tokens: { context: "sealdtok", subkeyId: 1 },
  /** Keyed hash chain of audit records. */
  audit: { context: "sealdaud", subkeyId: 1 },
  /** MACs binding each secret head to the secret, version and grants it claims. */
  heads: { context: "sealdhed", subkeyId: 1 },
} as const satisfies Record<string, { context: string; subkeyId: number }>;

/** A named use of a derived subkey; see deriveSubkey. */
export type SubkeyPurpose = keyof typeof SUBKEY_PURPOSES;

/**
 * Derives a 32-byte subkey for one purpose from the active master key, or from master key `id`
 * (record that id beside whatever the subkey keys, so it can be recomputed after rotation).
 */
export function deriveSubkey(ring: KeyRing, purpose: SubkeyPurpose, id?: string): Uint8Array {
  // A runtime check too: purposes may come from untyped callers, and a typo must not silently
  // collide with another purpose's key.
  if (!Object.hasOwn(SUBKEY_PURPOSES, purpose)) {
    throw new Error(`deriveSubkey: unknown purpose "${purpose}"`);
  }
  const { context, subkeyId } = SUBKEY_PURPOSES[purpose];
  const sodium = requireSodium();
  return sodium.crypto_kdf_derive_from_key(
    MASTER_KEY_BYTES,
    subkeyId,
    context,
    ring.require(id ?? ring.activeId),
  );
}
