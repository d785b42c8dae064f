/**
 * Opaque page tokens: base64url of a small JSON object naming where the next page starts. They
 * are keyset cursors (never offsets), so a page is stable while other writers run.
 */
import { invalid } from "./errors.js";

/** Default and largest page sizes for every list. */
export const defaultPageSize = 100;
export const maxPageSize = 1000;

/** Encodes a cursor. */
export function encodePageToken(cursor: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(cursor), "utf8").toString("base64url");
}

/** Decodes a cursor, checking that each listed key is present with the given type. */
export function decodePageToken<K extends string>(
  field: string,
  token: string,
  shape: Record<K, "string" | "number">,
): Record<K, string | number> {
  const bad = () => invalid([{ field, message: "is not a page token this server issued" }]);
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (typeof parsed !== "object" || parsed === null) throw bad();
  const record = parsed as Record<string, unknown>;
  for (const [key, type] of Object.entries(shape)) {
    if (typeof record[key] !== type) throw bad();
  }
  return record as Record<K, string | number>;
}

/** Resolves a requested page size: the default for 0, an error when negative or too large. */
export function pageSize(field: string, requested: number): number {
  if (requested === 0) return defaultPageSize;
  if (!Number.isInteger(requested) || requested < 0 || requested > maxPageSize) {
    throw invalid([{ field, message: `must be between 0 and ${maxPageSize}` }]);
  }
  return requested;
}
