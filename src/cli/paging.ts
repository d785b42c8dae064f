/**
 * Following page tokens for list commands: one page by default, up to --limit items, or every
 * page with --all.
 */
import { Option } from "commander";
import { UsageError } from "./errors.js";
import { parseInteger } from "./parse.js";

/** The paging options every list command shares. */
export interface PagingOptions {
  readonly limit?: string;
  readonly all?: boolean;
  readonly pageSize?: string;
  readonly pageToken?: string;
}

/** The options, to add to a list command. */
export function pagingOptions(noun: string): Option[] {
  return [
    new Option("--limit <count>", `at most this many ${noun}, following pages as needed`),
    new Option(
      "--all",
      `every matching ${noun.replace(/s$/, "")}, following page tokens to the end`,
    ),
    new Option("--page-size <count>", `${noun} per request (1-1000; default: the server's, 100)`),
    new Option("--page-token <token>", "continue from a previous listing's nextPageToken"),
  ];
}

/** One page as the server returns it. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextPageToken: string;
}

/**
 * Fetches pages as the options ask and returns the items with the token that would continue
 * after them (empty when the listing is complete).
 */
export async function collectPages<T>(
  o: PagingOptions,
  fetch: (pageSize: number, pageToken: string) => Promise<Page<T>>,
): Promise<{ items: T[]; nextPageToken: string }> {
  if (o.all === true && o.limit !== undefined) {
    throw new UsageError("--all and --limit: give one, not both");
  }
  const limit = o.limit === undefined ? undefined : parseInteger("--limit", o.limit, 1, 1e9);
  const pageSize =
    o.pageSize === undefined ? undefined : parseInteger("--page-size", o.pageSize, 1, 1000);
  // Without --all or --limit: one page, as large as --page-size or the server's default.
  const wanted = o.all === true ? Number.POSITIVE_INFINITY : limit;
  const items: T[] = [];
  let pageToken = o.pageToken ?? "";
  for (;;) {
    const room = wanted === undefined ? Number.POSITIVE_INFINITY : wanted - items.length;
    // Zero asks for the server's default page size.
    const size = Math.min(pageSize ?? room, room);
    const page = await fetch(Number.isFinite(size) ? Math.min(size, 1000) : 0, pageToken);
    items.push(...page.items);
    pageToken = page.nextPageToken;
    if (pageToken === "" || wanted === undefined || items.length >= wanted) break;
  }
  return { items, nextPageToken: pageToken };
}
