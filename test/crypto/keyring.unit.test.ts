import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import sodium from "libsodium-wrappers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deriveSubkey,
  generateMasterKeyLine,
  KeyRing,
  KeyRingError,
  loadMasterKeysFile,
  loadOrCreateDevKey,
  parseMasterKeys,
} from "../../src/crypto/keyring.js";
import { loadSodium } from "../../src/crypto/sodium.js";

const SOURCE = "SEALD_MASTER_KEYS";
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

const key1 = randomBytes(32);
const key2 = randomBytes(32);
const B1 = b64(key1);
const B2 = b64(key2);

/** Fails if any 8-character run of any of the given strings appears in the text. */
function expectNoKeyMaterial(text: string, secrets: string[]): void {
  for (const secret of secrets) {
    for (let i = 0; i + 8 <= secret.length; i++) {
      expect(text, `contains "${secret.slice(i, i + 8)}"`).not.toContain(secret.slice(i, i + 8));
    }
  }
}

function parseError(text: string): KeyRingError {
  try {
    parseMasterKeys(text, SOURCE);
  } catch (err) {
    expect(err).toBeInstanceOf(KeyRingError);
    return err as KeyRingError;
  }
  throw new Error(`parseMasterKeys accepted ${JSON.stringify(text)}`);
}

let dir: string;
beforeAll(async () => {
  await loadSodium();
  dir = await mkdtemp(join(tmpdir(), "seald-keyring-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("parseMasterKeys", () => {
  it("reads id:base64 entries with the first one active", () => {
    const ring = parseMasterKeys(`k1:${B1},k2:${B2}`, SOURCE);
    expect(ring.activeId).toBe("k1");
    expect(ring.ids).toEqual(["k1", "k2"]);
    expect(ring.get("k1")).toEqual(new Uint8Array(key1));
    expect(ring.get("k2")).toEqual(new Uint8Array(key2));
    expect(ring.has("k2")).toBe(true);
    expect(ring.has("k3")).toBe(false);
    expect(ring.get("k3")).toBeUndefined();
  });

  it("accepts whitespace, newlines, comment lines, unpadded keys and a trailing comma", () => {
    const text = [
      "\uFEFF# seald master keys; the first is active",
      `  new_2025-01 : ${B2.replace(/=+$/, "")}  ,`,
      "",
      "   # retired next quarter",
      `\told-key:${B1}\r`,
      "",
    ].join("\n");
    const ring = parseMasterKeys(text, "/etc/seald/keys");
    expect(ring.ids).toEqual(["new_2025-01", "old-key"]);
    expect(ring.activeId).toBe("new_2025-01");
    expect(ring.get("new_2025-01")).toEqual(new Uint8Array(key2));
    expect(ring.get("old-key")).toEqual(new Uint8Array(key1));
  });

  const zeros = b64(new Uint8Array(32)); // "AAAA...AAA="
  const slashes = b64(new Uint8Array(32).fill(0xff)); // "////...//8="
  const cases: Array<[string, string, string]> = [
    ["nothing at all", "", `${SOURCE}: empty`],
    ["only blanks and comments", " \n# k1:nothing\n , \n", `${SOURCE}: empty`],
    ["a 16-byte key", `k1:${b64(randomBytes(16))}`, `${SOURCE}: key "k1" is 16 bytes, want 32`],
    [
      "a 33-byte key",
      `k1:${B1},k2:${b64(randomBytes(33))}`,
      `${SOURCE}: key "k2" is 33 bytes, want 32`,
    ],
    ["an empty key", "k1:", `${SOURCE}: key "k1" is 0 bytes, want 32`],
    ["a duplicate id", `k1:${B1},k1:${B2}`, `${SOURCE}: duplicate key id "k1"`],
    [
      "URL-safe base64",
      `k1:${B1},k2:${slashes.replaceAll("/", "_")}`,
      `${SOURCE}: key "k2" is not valid base64 (want standard base64: A-Z a-z 0-9 + / =)`,
    ],
    [
      "non-canonical trailing bits",
      `k2:${zeros.replace("A=", "B=")}`,
      `${SOURCE}: key "k2" is not valid base64 (want standard base64: A-Z a-z 0-9 + / =)`,
    ],
    [
      "too much padding",
      `k2:${B2.replace(/=*$/, "==")}`,
      `${SOURCE}: key "k2" is not valid base64 (want standard base64: A-Z a-z 0-9 + / =)`,
    ],
    [
      "whitespace inside the key",
      `k2:${B2.slice(0, 20)} ${B2.slice(20)}`,
      `${SOURCE}: key "k2" is not valid base64 (want standard base64: A-Z a-z 0-9 + / =)`,
    ],
    ["a missing colon", `k1:${B1}\nk2${B2}`, `${SOURCE}: entry 2 is not of the form id:base64`],
    [
      "id and key swapped",
      `${B1}:k1`,
      `${SOURCE}: entry 1: key id must be 1-32 characters of A-Z a-z 0-9 _ -`,
    ],
    [
      "a 33-character id",
      `${"x".repeat(33)}:${B1}`,
      `${SOURCE}: entry 1: key id must be 1-32 characters of A-Z a-z 0-9 _ -`,
    ],
    [
      "an id with a dot",
      `k1:${B1},k.2:${B2}`,
      `${SOURCE}: entry 2: key id must be 1-32 characters of A-Z a-z 0-9 _ -`,
    ],
    [
      "an empty id",
      `:${B1}`,
      `${SOURCE}: entry 1: key id must be 1-32 characters of A-Z a-z 0-9 _ -`,
    ],
  ];

  it.each(cases)("rejects %s with a specific message and no key material", (_, text, message) => {
    const err = parseError(text);
    expect(err.message).toBe(message);
    expectNoKeyMaterial(err.message, [B1, B2, slashes.replace(/=+$/, ""), zeros.slice(0, 40)]);
    expectNoKeyMaterial(inspect(err), [B1, B2]);
  });

  it("accepts exactly 32 bytes, padded or not", () => {
    expect(parseMasterKeys(`a:${zeros}`, SOURCE).get("a")).toEqual(new Uint8Array(32));
    expect(parseMasterKeys(`a:${slashes.replace(/=+$/, "")}`, SOURCE).get("a")).toEqual(
      new Uint8Array(32).fill(0xff),
    );
  });
});

describe("KeyRing", () => {
  it("shows ids only, never key bytes, however it is printed", () => {
    const ring = parseMasterKeys(`k1:${B1},k2:${B2}`, SOURCE);
    const renderings = [
      String(ring),
      `${ring}`,
      JSON.stringify(ring),
      JSON.stringify({ ring }),
      inspect(ring),
      inspect({ ring }, { depth: 10 }),
      inspect(ring, { customInspect: false, showHidden: true, depth: 10 }),
      JSON.stringify({ ...ring }),
    ];
    expect(JSON.parse(JSON.stringify(ring))).toEqual({ activeId: "k1", ids: ["k1", "k2"] });
    expect(inspect(ring)).toBe("KeyRing(active=k1, ids=k1,k2)");
    for (const rendering of renderings) {
      expectNoKeyMaterial(rendering, [B1, B2, key1.toString("hex"), key2.toString("hex")]);
      expect(rendering).not.toContain(Array.from(key1.subarray(0, 4)).join(", "));
      expect(rendering).not.toContain(Array.from(key1.subarray(0, 4)).join(","));
    }
  });

  it("keeps its own copy of the keys", () => {
    const source = new Uint8Array(key1);
    const ring = KeyRing.fromEntries([["k1", source]]);
    source.fill(0);
    expect(ring.get("k1")).toEqual(new Uint8Array(key1));
  });

  it("validates entries given directly", () => {
    expect(() => KeyRing.fromEntries([], "test")).toThrow(new KeyRingError("test: empty"));
    expect(() => KeyRing.fromEntries([["k1", new Uint8Array(31)]], "test")).toThrow(
      new KeyRingError('test: key "k1" is 31 bytes, want 32'),
    );
  });

  it("names the missing id when a key is required", () => {
    const ring = parseMasterKeys(`k1:${B1}`, SOURCE);
    expect(() => ring.require("gone")).toThrow(
      new KeyRingError(`${SOURCE}: no key with id "gone"`),
    );
  });
});

describe("loadMasterKeysFile", () => {
  async function keyFile(name: string, text: string, mode: number): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    // chmod after writing: the mode given to writeFile is filtered by the umask.
    await chmod(path, mode);
    return path;
  }

  it("loads an owner-only file with one key per line and comments", async () => {
    const path = await keyFile("good.keys", `# rotated 2025-01\nk2:${B2}\nk1:${B1}\n`, 0o600);
    const ring = await loadMasterKeysFile(path);
    expect(ring.ids).toEqual(["k2", "k1"]);
    expect(ring.get("k1")).toEqual(new Uint8Array(key1));
    expect((await loadMasterKeysFile(await keyFile("ro.keys", `k1:${B1}`, 0o400))).activeId).toBe(
      "k1",
    );
  });

  it.each([0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o700 | 0o010])(
    "refuses mode %o, naming the path and the mode",
    async (mode) => {
      const path = await keyFile(`loose-${mode.toString(8)}.keys`, `k1:${B1}`, mode);
      const shown = (mode & 0o777).toString(8).padStart(4, "0");
      const err = await loadMasterKeysFile(path).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KeyRingError);
      expect((err as Error).message).toBe(
        `${path}: mode ${shown} lets group or others read or write this master key file; ` +
          `run chmod 600 ${path}`,
      );
      expectNoKeyMaterial((err as Error).message, [B1]);
    },
  );

  it("names the file in parse errors", async () => {
    const path = await keyFile("short.keys", `k1:${b64(randomBytes(16))}\n`, 0o600);
    await expect(loadMasterKeysFile(path)).rejects.toThrow(
      new KeyRingError(`${path}: key "k1" is 16 bytes, want 32`),
    );
  });

  it("says when the file does not exist or is not a file", async () => {
    const missing = join(dir, "missing.keys");
    await expect(loadMasterKeysFile(missing)).rejects.toThrow(
      new KeyRingError(`${missing}: no such file`),
    );
    await expect(loadMasterKeysFile(dir)).rejects.toThrow(
      new KeyRingError(`${dir}: not a regular file`),
    );
  });
});

describe("generateMasterKeyLine", () => {
  it("produces a fresh 32-byte key that parses", () => {
    const a = generateMasterKeyLine("k-new");
    const b = generateMasterKeyLine("k-new");
    expect(a).toMatch(/^k-new:[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
    const ring = parseMasterKeys(`${a},other:${B1}`, SOURCE);
    expect(ring.activeId).toBe("k-new");
    expect(ring.get("k-new")?.byteLength).toBe(32);
  });

  it("rejects an invalid id", () => {
    expect(() => generateMasterKeyLine("has space")).toThrow(KeyRingError);
    expect(() => generateMasterKeyLine("")).toThrow(KeyRingError);
  });
});

describe("loadOrCreateDevKey", () => {
  it("creates master.key with mode 0600 in a new 0700 directory, then reuses it", async () => {
    const dataDir = join(dir, "dev", "data");
    const first = await loadOrCreateDevKey(dataDir);
    expect(first.created).toBe(true);
    expect(first.path).toBe(join(dataDir, "master.key"));
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(await readdir(dataDir)).toEqual(["master.key"]);
    expect(first.ring.ids).toHaveLength(1);
    expect(first.ring.activeId).toMatch(/^dev-\d{8}$/);

    const second = await loadOrCreateDevKey(dataDir);
    expect(second.created).toBe(false);
    expect(second.ring.activeId).toBe(first.ring.activeId);
    expect(second.ring.get(second.ring.activeId)).toEqual(first.ring.get(first.ring.activeId));

    const text = await readFile(first.path, "utf8");
    expect(text).toMatch(/^# seald development master key/);
    const fromFile = parseMasterKeys(text, first.path);
    expect(fromFile.get(fromFile.activeId)).toEqual(first.ring.get(first.ring.activeId));
  });

  it("gives concurrent first starts the same key", async () => {
    const dataDir = join(dir, "race");
    const results = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateDevKey(dataDir)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const key = results[0]?.ring.get(results[0].ring.activeId);
    expect(key?.byteLength).toBe(32);
    for (const r of results) expect(r.ring.get(r.ring.activeId)).toEqual(key);
    expect(await readdir(dataDir)).toEqual(["master.key"]);
  });

  it("refuses an existing development key that others may read", async () => {
    const dataDir = join(dir, "loose-dev");
    const { path } = await loadOrCreateDevKey(dataDir);
    await chmod(path, 0o644);
    await expect(loadOrCreateDevKey(dataDir)).rejects.toThrow(/mode 0644 lets group or others/);
  });
});

describe("deriveSubkey", () => {
  const ring = parseMasterKeys(`k1:${B1},k2:${B2}`, SOURCE);

  it("derives a stable 32-byte subkey per purpose from the active key", () => {
    const tokens = deriveSubkey(ring, "tokens");
    expect(tokens.byteLength).toBe(32);
    expect(deriveSubkey(ring, "tokens")).toEqual(tokens);
    expect(deriveSubkey(ring, "audit")).not.toEqual(tokens);
    expect(tokens).not.toEqual(new Uint8Array(key1));
  });

  it("uses the given key id, so a subkey can be recomputed after rotation", () => {
    const fromOld = deriveSubkey(ring, "tokens", "k2");
    expect(fromOld).not.toEqual(deriveSubkey(ring, "tokens"));
    const rotated = parseMasterKeys(`k3:${b64(randomBytes(32))},k2:${B2}`, SOURCE);
    expect(deriveSubkey(rotated, "tokens", "k2")).toEqual(fromOld);
    expect(() => deriveSubkey(ring, "tokens", "k9")).toThrow(
      new KeyRingError(`${SOURCE}: no key with id "k9"`),
    );
  });

  it("keeps its documented KDF parameters, which stored token hashes depend on", () => {
    expect(deriveSubkey(ring, "tokens")).toEqual(
      sodium.crypto_kdf_derive_from_key(32, 1, "sealdtok", new Uint8Array(key1)),
    );
    expect(deriveSubkey(ring, "audit")).toEqual(
      sodium.crypto_kdf_derive_from_key(32, 1, "sealdaud", new Uint8Array(key1)),
    );
  });

  it("rejects an unknown purpose from untyped callers", () => {
    expect(() => deriveSubkey(ring, "toString" as "tokens")).toThrow(
      'deriveSubkey: unknown purpose "toString"',
    );
  });
});
