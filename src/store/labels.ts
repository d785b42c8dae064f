/**
 * How labels are stored and queried, the same for every collection that has them: as {k, v}
 * pairs (keys such as "app.kubernetes.io/name" or "$x" may not be field names) plus the flat
 * copies `labelKeys` and `labelPairs` ("k=v"; keys cannot contain "="), which make every
 * selector plain equality, $in or an anchored, escaped $regex that the database evaluates.
 */
import type { Filter } from "mongodb";
import type { LabelRequirement } from "../domain/selector.js";

export interface Pair {
  k: string;
  v: string;
}

/** The stored fields of a label map. */
export interface LabelFields {
  labels: Pair[];
  labelKeys: string[];
  labelPairs: string[];
}

/** A map as pairs, in key order (stable documents). */
export const pairs = (m: Readonly<Record<string, string>>): Pair[] =>
  Object.entries(m)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => ({ k, v }));

/** Pairs back as a map; none for a record written before it had labels. */
export const map = (p: Pair[] | undefined): Record<string, string> =>
  Object.fromEntries((p ?? []).map(({ k, v }) => [k, v]));

/** The stored label fields of a map. */
export function labelFields(m: Readonly<Record<string, string>>): LabelFields {
  return {
    labels: pairs(m),
    labelKeys: Object.keys(m).sort(),
    labelPairs: Object.entries(m).map(([k, v]) => `${k}=${v}`),
  };
}

/** A string matched literally by $regex. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The filter of one label requirement, Kubernetes' semantics ("!=" and "notin" also match a
 * missing label; "matches" is Sensu's substring test on the value and needs the label).
 */
export function labelFilter(r: LabelRequirement): Filter<LabelFields> {
  const encoded = r.values.map((v) => `${r.key}=${v}`);
  switch (r.op) {
    case "=":
      return { labelPairs: encoded[0] ?? "" };
    case "!=":
      return { labelPairs: { $ne: encoded[0] ?? "" } };
    case "in":
      return { labelPairs: { $in: encoded } };
    case "notin":
      return { labelPairs: { $nin: encoded } };
    case "exists":
      return { labelKeys: r.key };
    case "!exists":
      return { labelKeys: { $ne: r.key } };
    case "matches":
      // "k=" pins the key (keys cannot contain "="); the value is escaped, never a pattern.
      return {
        labelPairs: { $regex: `^${escapeRegex(r.key)}=[\\s\\S]*${escapeRegex(r.values[0] ?? "")}` },
      };
  }
}
