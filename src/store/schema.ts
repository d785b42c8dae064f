/**
 * Collection names and the indexes seald creates at start-up. Each store module owns the
 * collections it queries; this table is where their indexes are declared, beside those names.
 */
import type { IndexDescription } from "mongodb";

/** Every collection seald uses. */
export const collections = {
  meta: "meta",
  secrets: "secrets",
  secretVersions: "secret_versions",
} as const;

/** Indexes per collection, created (idempotently) at every start. */
export const indexes: Record<string, readonly IndexDescription[]> = {
  [collections.meta]: [],
  // Head records: one per (namespace, name); keyset paging walks this same order.
  [collections.secrets]: [{ key: { namespace: 1, name: 1 }, name: "namespace_name", unique: true }],
  // Value history: one record per version of a secret, found by its uid.
  [collections.secretVersions]: [
    { key: { uid: 1, version: 1 }, name: "uid_version", unique: true },
  ],
};
