/**
 * The secret as every layer speaks of it: the stored record, the view callers get (everything but
 * the sealed value), the fields a write can set, and the one keeper seald seals itself.
 */
import type { Envelope } from "./sealed.js";

/** The keeper whose values seald seals and stores itself. */
export const systemKeeper = "system";

/** A secret as stored: metadata, spec, and (for keeper "system") the sealed current value. */
export interface SecretRecord {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly description: string;
  readonly decrypters: readonly string[];
  readonly keeper: string;
  readonly ref: string;
  /** The value's version: 1 on creation, +1 on every change of value. */
  readonly version: number;
  /** Changes on every write; updates compare-and-set on it. */
  readonly resourceVersion: string;
  readonly createTime: Date;
  readonly updateTime: Date;
  readonly createdBy: string;
  readonly updatedBy: string;
  /** The sealed current value; undefined for external keepers. */
  readonly envelope: Envelope | undefined;
}

/** A secret as callers see it: everything but the sealed value. */
export type SecretView = Omit<SecretRecord, "envelope">;

/**
 * The fields of a secret a write sets. A field mask (in the spirit of AIP-134's update_mask) names
 * the ones a write replaces; the others keep what is stored.
 */
export const secretFields = [
  "labels",
  "annotations",
  "description",
  "decrypters",
  "keeper",
  "ref",
  "value",
] as const;
export type SecretField = (typeof secretFields)[number];
