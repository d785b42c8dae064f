/**
 * Parsers for option values; each throws a UsageError naming the option, so a bad argument is
 * exit code 2 before anything is sent.
 */
import { UsageError } from "./errors.js";

/** Commander argParser for repeatable options: collects every occurrence in order. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Parses repeated `key=value` options into a map (the server validates keys and values). */
export function parsePairs(
  flag: string,
  items: readonly string[] | undefined,
): Record<string, string> {
  const map: Record<string, string> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag}: "${item}" is not key=value`);
    map[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return map;
}

/** Parses a whole number within bounds. */
export function parseInteger(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(`${flag}: "${value}" is not a whole number from ${min} to ${max}`);
  }
  return n;
}

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Parses a duration such as `90s`, `15m`, `12h`, `30d` or `2w` into milliseconds. */
export function parseDuration(flag: string, value: string): number | undefined {
  const match = /^(\d+)([smhdw])$/.exec(value);
  if (!match) return undefined;
  const ms = Number(match[1]) * (units[match[2] ?? ""] ?? 0) * 1000;
  if (ms <= 0) throw new UsageError(`${flag}: "${value}" must be longer than zero`);
  return ms;
}

/** Parses an RFC 3339 time (`2030-01-01T00:00:00Z`) or a plain date (`2030-01-01`, UTC). */
export function parseTime(flag: string, value: string): Date {
  if (
    /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?$/.test(value)
  ) {
    const date = new Date(value.length === 10 ? `${value}T00:00:00Z` : value);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new UsageError(
    `${flag}: "${value}" is not a time (RFC 3339 such as 2030-01-01T00:00:00Z, or a date)`,
  );
}

/** A time in the future: a duration from now (`30d`) or an absolute time. */
export function parseFutureTime(flag: string, value: string, now = Date.now()): Date {
  const ms = parseDuration(flag, value);
  const date = ms === undefined ? parseTime(flag, value) : new Date(now + ms);
  if (date.getTime() <= now) throw new UsageError(`${flag}: "${value}" is not in the future`);
  return date;
}

/** A time in the past: a duration ago (`1h`) or an absolute time. */
export function parsePastTime(flag: string, value: string, now = Date.now()): Date {
  const ms = parseDuration(flag, value);
  return ms === undefined ? parseTime(flag, value) : new Date(now - ms);
}
