/**
 * Output of the seald command: aligned tables for people, protobuf JSON for scripts.
 */
import {
  type DescMessage,
  type JsonValue,
  type MessageShape,
  toJson,
  toJsonString,
} from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Output } from "./io.js";

/** The two output formats. */
export const outputFormats = ["table", "json"] as const;
export type OutputFormat = (typeof outputFormats)[number];

/**
 * Writes a message as canonical protobuf JSON (the Connect protocol's JSON), every field present
 * so that scripts see the same shape whether a field is set or not.
 */
export function writeMessageJson<Desc extends DescMessage>(
  out: Output,
  schema: Desc,
  message: MessageShape<Desc>,
): void {
  out.write(`${toJsonString(schema, message, { alwaysEmitImplicit: true, prettySpaces: 2 })}\n`);
}

/** The canonical protobuf JSON of a message, every field present. */
export function messageJson<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): JsonValue {
  return toJson(schema, message, { alwaysEmitImplicit: true });
}

/** Writes any JSON value, indented. */
export function writeJson(out: Output, value: JsonValue): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Makes text safe for one table cell: control characters (newlines, tabs, terminal escape
 * sequences a label or description could carry) are shown as escapes instead of acting.
 */
export function cell(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point.
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** Writes rows under a header, columns separated by two spaces, no trailing blanks. */
export function writeTable(
  out: Output,
  header: readonly string[],
  rows: readonly (readonly string[])[],
): void {
  const all = [header, ...rows.map((r) => r.map(cell))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  for (const row of all) {
    const line = row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0)));
    out.write(`${line.join("  ").trimEnd()}\n`);
  }
}

/** Writes `field  value` lines for a single object. */
export function writeFields(out: Output, fields: readonly (readonly [string, string])[]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) {
    const line = `${k}:`.padEnd(width + 2) + cell(v);
    out.write(`${line.trimEnd()}\n`);
  }
}

/** An RFC 3339 time to the second, or "" when unset. */
export function formatTime(ts: Timestamp | undefined): string {
  if (ts === undefined) return "";
  return timestampDate(ts)
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z");
}

/** `k=v,k2=v2`, sorted by key. */
export function formatMap(map: Readonly<Record<string, string>>): string {
  return Object.keys(map)
    .sort()
    .map((k) => `${k}=${map[k] ?? ""}`)
    .join(",");
}
