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
  principals: "principals",
  tokens: "tokens",
  roleBindings: "role_bindings",
  namespaceKeys: "namespace_keys",
  audit: "audit",
  secretTransitions: "secret_transitions",
  providers: "providers",
} as const;

/** Indexes per collection, created (idempotently) at every start. */
export const indexes: Record<string, readonly IndexDescription[]> = {
  [collections.meta]: [],
  // Head records: one per (namespace, name); keyset paging walks this same order.
  [collections.secrets]: [
    { key: { namespace: 1, name: 1 }, name: "namespace_name", unique: true },
    // Label selectors are equality/$in tests on these flat copies of the labels.
    { key: { labelPairs: 1 }, name: "label_pairs" },
    { key: { labelKeys: 1 }, name: "label_keys" },
  ],
  // Value history: one record per version of a secret, found by its uid.
  [collections.secretVersions]: [
    { key: { uid: 1, version: 1 }, name: "uid_version", unique: true },
  ],
  [collections.namespaceKeys]: [],
  // Secret providers: found and paged by name, their _id; few enough to need nothing more.
  [collections.providers]: [],
  // Claims of in-flight head changes; keyed by "<uid>/<resource version>", so no extra index.
  [collections.secretTransitions]: [],
  // Tokens are found by keyed hash, their _id; listing and revoking use these.
  [collections.tokens]: [
    // Not unique: while a token moves to a new master key, its old and new records coexist.
    { key: { id: 1 }, name: "id_lookup" },
    { key: { principal: 1 }, name: "principal" },
  ],
  [collections.roleBindings]: [
    { key: { principal: 1, namespace: 1, role: 1 }, name: "principal_namespace_role" },
    { key: { role: 1, namespace: 1 }, name: "role_namespace" },
  ],
  // Audit records: _id is the seq. Lists go newest first by seq, so each equality filter is
  // paired with _id to serve the filter and the order together; time ranges use their own index.
  [collections.audit]: [
    { key: { namespace: 1, _id: -1 }, name: "namespace_seq" },
    { key: { principal: 1, _id: -1 }, name: "principal_seq" },
    { key: { action: 1, _id: -1 }, name: "action_seq" },
    { key: { outcome: 1, _id: -1 }, name: "outcome_seq" },
    { key: { time: -1 }, name: "time" },
  ],
};
