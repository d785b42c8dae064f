/**
 * Every secret value the suite sends or gets back is remembered in the run's log folder, so that
 * the global teardown can search every test server's debug log for each one (issue #7: run the
 * suite with debug logging, then look for every plaintext, token and master key it used).
 * Values are collected where they cross the wire in the test clients: the Connect clients
 * (plaintext oneofs sent, decrypted values received) and fetch (JSON `value` fields sent, as the
 * REST dialects take them).
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";

/** Shorter values would match unrelated log text by chance; every test value is longer. */
export const minRememberedLength = 8;

/** The file prefix, in SEALD_TEST_LOG_DIR, of the remembered values (one JSON string a line). */
export const plaintextsPrefix = "plaintexts-";

/** Remembers a value the suite used, when the run has a log folder. */
export function rememberPlaintext(value: string): void {
  const dir = process.env.SEALD_TEST_LOG_DIR;
  if (!dir || value.length < minRememberedLength) return;
  appendFileSync(join(dir, `${plaintextsPrefix}${process.pid}.txt`), `${JSON.stringify(value)}\n`);
}

/**
 * Remembers the secret values in a message or JSON body: the `value` of a oneof whose case is
 * "plaintext" or "value" (protobuf-es messages), and any string field named `value` (JSON).
 */
export function rememberValuesIn(message: unknown, seen = new Set<unknown>()): void {
  if (message === null || typeof message !== "object" || seen.has(message)) return;
  seen.add(message);
  if (message instanceof Uint8Array) return;
  const record = message as Record<string, unknown>;
  // A value in the bytes form would reach a JSON log as base64, if it reached one at all.
  if (record.value instanceof Uint8Array && isBytesCase(record.case)) {
    rememberPlaintext(Buffer.from(record.value).toString("base64"));
  }
  if (typeof record.value === "string" && (record.case === undefined || isValueCase(record.case))) {
    rememberPlaintext(record.value);
  }
  for (const child of Array.isArray(message) ? message : Object.values(record)) {
    rememberValuesIn(child, seen);
  }
}

function isBytesCase(c: unknown): boolean {
  return c === "plaintextBytes" || c === "valueBytes";
}

function isValueCase(c: unknown): boolean {
  return c === "plaintext" || c === "value";
}
