/**
 * The OpenAPI 3.1 documents of the REST dialects, served without authentication at
 * /openapi/<dialect>.json. They are read once, when first asked for, from the JSON files kept
 * beside each dialect's routes; a document that fails to parse is a build defect, so it throws.
 */
import { readFileSync } from "node:fs";

/** The dialects that have a document, by the name in its path. */
export const openapiDialects = ["sensu", "grafana"] as const;
export type OpenapiDialect = (typeof openapiDialects)[number];

/** The path a dialect's document is served at. */
export const openapiPath = (dialect: OpenapiDialect) => `/openapi/${dialect}.json`;

const cache = new Map<OpenapiDialect, string>();

/** The document's JSON text, checked to parse. */
export function openapiDocument(dialect: OpenapiDialect): string {
  let text = cache.get(dialect);
  if (text === undefined) {
    text = readFileSync(new URL(`./${dialect}/openapi.json`, import.meta.url), "utf8");
    JSON.parse(text);
    cache.set(dialect, text);
  }
  return text;
}

/** The dialect whose document lives at this path, if any. */
export function openapiDialectOf(path: string): OpenapiDialect | undefined {
  return openapiDialects.find((d) => openapiPath(d) === path);
}
