/**
 * What a secret write carries and the rules it must satisfy, shared by every entry point. A rule
 * that only one dialect has (Grafana's 25-character description) comes in as DialectRules and
 * runs with these, so that one error names every bad field.
 */
import type { SecretValue } from "../crypto/secret-value.js";
import type { FieldViolation, Violations } from "../domain/errors.js";
import { type SecretRecord, systemKeeper } from "../domain/secret.js";
import { checkObjectName, checkPrincipalName, checkText } from "./validation.js";

/** The value sent with a write: plaintext, or a box sealed for the namespace's public key. */
export type ValueInput =
  | { readonly kind: "plaintext"; readonly value: SecretValue }
  | { readonly kind: "sealed"; readonly keyId: string; readonly box: string };

/**
 * What a create or update carries: the record's writable fields (a keeper of "" means "system")
 * and the value, if one is sent. Field paths in errors use these names.
 */
export type SecretInput = Pick<
  SecretRecord,
  "namespace" | "name" | "labels" | "annotations" | "description" | "decrypters" | "keeper" | "ref"
> & { readonly value: ValueInput | undefined };

/**
 * Rules that one wire dialect adds to a write (Grafana's 25-character description). They run with
 * the domain's own checks, after authorisation, so one error names every bad field; violations use
 * the same neutral field paths as the domain's.
 */
export type DialectRules = (input: SecretInput, creating: boolean) => readonly FieldViolation[];

export interface SecretLimits {
  readonly maxValueBytes: number;
  readonly maxDecryptNames: number;
  readonly maxLabels: number;
  readonly maxAnnotations: number;
  readonly maxDecrypters: number;
}

export const defaultLimits: SecretLimits = {
  maxValueBytes: 65536,
  maxDecryptNames: 100,
  maxLabels: 64,
  maxAnnotations: 64,
  maxDecrypters: 64,
};

/** Label and annotation keys: printable, no whitespace, none of the selector syntax characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects.
const mapKey = /^[^\s\u0000-\u001f\u007f=!,()]{1,317}$/u;
const keeperName = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Checks a write of a secret kept by `keeper`; on create a system-kept secret needs a value. A
 * plaintext value's size is checked here; a sealed box's once it is opened (checkValueSize).
 */
export function checkSecretWrite(
  v: Violations,
  input: SecretInput,
  keeper: string,
  creating: boolean,
  limits: SecretLimits,
  rules: DialectRules | undefined,
): void {
  for (const r of rules?.(input, creating) ?? []) v.add(r.field, r.message);
  checkObjectName(v, "namespace", input.namespace);
  checkObjectName(v, "name", input.name);
  checkLabels(v, input, limits);
  checkText(v, "description", input.description, 1024);
  if (input.decrypters.length > limits.maxDecrypters) {
    v.add("decrypters", `at most ${limits.maxDecrypters} decrypters`);
  }
  const seen = new Set<string>();
  input.decrypters.forEach((d, i) => {
    checkPrincipalName(v, `decrypters[${i}]`, d);
    if (seen.has(d)) v.add(`decrypters[${i}]`, `duplicate decrypter "${d}"`);
    seen.add(d);
  });
  if (!keeperName.test(keeper))
    v.add("keeper", "must be 1 to 64 letters, digits, '_', '.', ':' or '-'");
  if (keeper === systemKeeper) {
    if (input.ref !== "")
      v.add("ref", `must be empty for keeper "${systemKeeper}" (send a value instead)`);
    if (creating && input.value === undefined) v.add("value", "is required");
    if (input.value?.kind === "plaintext") checkValueSize(v, input.value.value.byteLength, limits);
  } else {
    if (input.ref === "") v.add("ref", `is required for keeper "${keeper}"`);
    else checkText(v, "ref", input.ref, 1024);
    if (input.value !== undefined)
      v.add("value", `must be empty for keeper "${keeper}" (its value lives there)`);
  }
}

/** The one size rule of a value, sent in plaintext or opened from a sealed box. */
export function checkValueSize(v: Violations, size: number, limits: SecretLimits): void {
  if (size === 0) v.add("value", "must not be empty");
  else if (size > limits.maxValueBytes) {
    v.add("value", `is ${size} bytes, more than the limit of ${limits.maxValueBytes}`);
  }
}

/** The one rule of labels and annotations, for secrets and providers alike. */
export function checkLabels(
  v: Violations,
  input: {
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
  },
  limits: Pick<SecretLimits, "maxLabels" | "maxAnnotations">,
): void {
  checkMap(v, "labels", input.labels, limits.maxLabels, 1024);
  checkMap(v, "annotations", input.annotations, limits.maxAnnotations, 16384);
}

function checkMap(
  v: Violations,
  field: string,
  map: Readonly<Record<string, string>>,
  maxEntries: number,
  maxValue: number,
): void {
  const entries = Object.entries(map);
  if (entries.length > maxEntries) v.add(field, `at most ${maxEntries} entries`);
  for (const [key, value] of entries) {
    if (!mapKey.test(key)) {
      v.add(
        `${field}[${JSON.stringify(key)}]`,
        "keys are 1 to 317 characters without whitespace, control characters or any of = ! , ( )",
      );
    }
    checkText(v, `${field}[${JSON.stringify(key)}]`, value, maxValue);
  }
}
