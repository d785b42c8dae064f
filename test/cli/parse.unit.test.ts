/**
 * Pure units of the seald command: option parsers and page following.
 */

import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { codeName, UsageError } from "../../src/cli/errors.js";
import { collectPages } from "../../src/cli/paging.js";
import { parseFutureTime, parsePairs, parsePastTime, parseTime } from "../../src/cli/parse.js";

/** A fake server listing the items 1..n in pages, recording the requested page sizes. */
function pager(n: number) {
  const sizes: number[] = [];
  const fetch = async (pageSize: number, pageToken: string) => {
    sizes.push(pageSize);
    const start = pageToken === "" ? 0 : Number(pageToken);
    const size = pageSize === 0 ? 100 : pageSize;
    const items = Array.from(
      { length: Math.max(0, Math.min(size, n - start)) },
      (_, i) => start + i + 1,
    );
    const next = start + items.length;
    return { items, nextPageToken: next < n ? String(next) : "" };
  };
  return { sizes, fetch };
}

describe("collectPages", () => {
  it("asks for one page of the server's default size when nothing is said", async () => {
    const p = pager(250);
    const r = await collectPages({}, p.fetch);
    expect(r.items).toHaveLength(100);
    expect(r.nextPageToken).toBe("100");
    expect(p.sizes).toEqual([0]);
  });

  it("follows every page with --all", async () => {
    const p = pager(5);
    const r = await collectPages({ all: true, pageSize: "2" }, p.fetch);
    expect(r.items).toEqual([1, 2, 3, 4, 5]);
    expect(r.nextPageToken).toBe("");
    expect(p.sizes).toEqual([2, 2, 2]);
  });

  it("stops exactly at --limit and returns the token that continues", async () => {
    const p = pager(10);
    const r = await collectPages({ limit: "5", pageSize: "2" }, p.fetch);
    expect(r.items).toEqual([1, 2, 3, 4, 5]);
    expect(p.sizes).toEqual([2, 2, 1]);
    const rest = await collectPages({ all: true, pageToken: r.nextPageToken }, pager(10).fetch);
    expect(rest.items).toEqual([6, 7, 8, 9, 10]);
  });

  it("caps a request at 1000 and refuses --all with --limit", async () => {
    const p = pager(5000);
    await collectPages({ limit: "2500" }, p.fetch);
    expect(p.sizes).toEqual([1000, 1000, 500]);
    await expect(collectPages({ all: true, limit: "1" }, p.fetch)).rejects.toBeInstanceOf(
      UsageError,
    );
    await expect(collectPages({ pageSize: "0" }, p.fetch)).rejects.toThrow("--page-size");
  });
});

describe("option parsers", () => {
  it("parses key=value pairs, keeping '=' inside values", () => {
    expect(parsePairs("--label", ["a=1", "b=x=y", "c="])).toEqual({ a: "1", b: "x=y", c: "" });
    expect(() => parsePairs("--label", ["=v"])).toThrow('--label: "=v" is not key=value');
    expect(() => parsePairs("--label", ["novalue"])).toThrow(UsageError);
  });

  it("parses times and durations", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseFutureTime("--expires", "30d", now).toISOString()).toBe("2030-01-31T00:00:00.000Z");
    expect(parseFutureTime("--expires", "2031-02-03", now).toISOString()).toBe(
      "2031-02-03T00:00:00.000Z",
    );
    expect(() => parseFutureTime("--expires", "2020-01-01T00:00:00Z", now)).toThrow(
      "not in the future",
    );
    expect(parsePastTime("--since", "1h", now).toISOString()).toBe("2029-12-31T23:00:00.000Z");
    expect(parseTime("--until", "2030-01-01T01:00:00+01:00").toISOString()).toBe(
      "2030-01-01T00:00:00.000Z",
    );
    // A time without a zone would silently depend on the machine's; it is refused.
    expect(() => parseTime("--until", "2030-01-01T01:00:00")).toThrow(UsageError);
    expect(() => parseFutureTime("--expires", "soon")).toThrow(UsageError);
  });

  it("names codes as the Connect protocol does", () => {
    expect(codeName(Code.NotFound)).toBe("not_found");
    expect(codeName(Code.PermissionDenied)).toBe("permission_denied");
    expect(codeName(Code.Unauthenticated)).toBe("unauthenticated");
  });
});
