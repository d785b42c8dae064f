/**
 * Paging, the same way for every list: page tokens are opaque strings to every caller, made and
 * read by one typed codec per kind of list (base64url of a small JSON object naming where the next
 * page starts). They are keyset cursors (never offsets), so a page is stable while other writers
 * run. Only the use case that lists knows what a token holds.
 */
import { invalid } from "./errors.js";

/** Default and largest page sizes for every list. */
export const defaultPageSize = 100;
export const maxPageSize = 1000;

/** Turns a list's cursor into a page token and back. */
export interface PageTokenCodec<C> {
  encode(cursor: C): string;
  /** The cursor of a token; invalid_argument naming `field` when this codec did not issue it. */
  decode(field: string, token: string): C;
}

type Shape = Readonly<Record<string, "string" | "number">>;
type Fields<S extends Shape> = { [K in keyof S]: S[K] extends "string" ? string : number };

/**
 * A codec whose tokens hold the fields of `shape` with their types; `to` and `from` convert
 * between those fields and the cursor the list works with.
 */
export function pageTokenCodec<C, S extends Shape>(
  shape: S,
  to: (fields: Fields<S>) => C,
  from: (cursor: C) => Fields<S>,
): PageTokenCodec<C> {
  return {
    encode: (cursor) => Buffer.from(JSON.stringify(from(cursor)), "utf8").toString("base64url"),
    decode(field, token) {
      const bad = () => invalid([{ field, message: "is not a page token this server issued" }]);
      if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
      } catch {
        throw bad();
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw bad();
      const record = parsed as Record<string, unknown>;
      for (const [key, type] of Object.entries(shape)) {
        if (typeof record[key] !== type) throw bad();
      }
      return to(record as Fields<S>);
    },
  };
}

/** Resolves a requested page size: the default for 0, an error when negative or too large. */
export function pageSize(field: string, requested: number): number {
  if (requested === 0) return defaultPageSize;
  if (!Number.isInteger(requested) || requested < 0 || requested > maxPageSize) {
    throw invalid([{ field, message: `must be between 0 and ${maxPageSize}` }]);
  }
  return requested;
}

/** One page of a list: its items and the token of the next page ("" after the last). */
export interface Page<T> {
  readonly items: T[];
  readonly nextPageToken: string;
}

/**
 * Up to `limit` items (every item when undefined), read page after page from `pageToken`, for the
 * dialects whose lists are not capped at one page (Sensu's `limit`, Kubernetes' `limit=0`). The
 * next page token says where the items stopped ("" when the list is exhausted).
 */
export async function collectUpTo<T>(
  limit: number | undefined,
  pageToken: string,
  page: (pageToken: string, pageSize: number) => Promise<Page<T>>,
): Promise<Page<T>> {
  const items: T[] = [];
  let token = pageToken;
  for (;;) {
    const size = Math.min(maxPageSize, limit === undefined ? maxPageSize : limit - items.length);
    const got = await page(token, size);
    items.push(...got.items);
    token = got.nextPageToken;
    if (token === "" || (limit !== undefined && items.length >= limit)) {
      return { items, nextPageToken: token };
    }
  }
}
