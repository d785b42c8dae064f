/**
 * The rules Grafana's SecureValue API adds to the domain's: Kubernetes object names, the
 * 25-character description, the 24576-byte value, and Kubernetes label and annotation syntax.
 * Every other rule (decrypters, value xor ref, map sizes) is the domain's. Violations use the
 * domain's neutral field paths; the Status rendering maps them to Grafana's.
 */
import type { FieldViolation } from "../../domain/errors.js";
import type { DialectRules, SecretInput } from "../../service/secret-rules.js";

/** Grafana's limits on a SecureValue. */
export const grafanaLimits = {
  maxDescriptionCharacters: 25,
  maxValueBytes: 24576,
  maxNameLength: 253,
} as const;

const dns1123Label = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const dns1123Subdomain = new RegExp(`^${dns1123Label}(\\.${dns1123Label})*$`);
/** The name part of a Kubernetes qualified name (label and annotation keys), and label values. */
const qualifiedNamePart = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Whether a string is a DNS-1123 subdomain (Kubernetes object names and, here, namespaces). */
export function isDns1123Subdomain(s: string): boolean {
  return s.length <= grafanaLimits.maxNameLength && dns1123Subdomain.test(s);
}

/** What is wrong with a Kubernetes qualified name ("prefix/name" or "name"), or undefined. */
export function qualifiedNameProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix === "" || !isDns1123Subdomain(prefix))) {
    return "the prefix before '/' must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')";
  }
  if (name === "" || name.length > 63 || !qualifiedNamePart.test(name)) {
    return "keys are an optional DNS subdomain prefix and '/', then 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** Whether a string is a Kubernetes label value (empty, or up to 63 characters of the syntax). */
export function isLabelValue(s: string): boolean {
  return s === "" || (s.length <= 63 && qualifiedNamePart.test(s));
}

const nameMessage = `must be a DNS-1123 subdomain: at most ${grafanaLimits.maxNameLength} lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`;

/** Grafana's own rules for a SecureValue write, checked with the domain's. */
export const grafanaRules: DialectRules = (input: SecretInput): FieldViolation[] => {
  const out: FieldViolation[] = [];
  const add = (field: string, message: string) => out.push({ field, message });
  if (input.name === "") add("name", "is required (or metadata.generateName)");
  else if (!isDns1123Subdomain(input.name)) add("name", nameMessage);
  if (!isDns1123Subdomain(input.namespace)) add("namespace", nameMessage);

  const characters = [...input.description].length;
  if (characters === 0) add("description", "is required");
  else if (characters > grafanaLimits.maxDescriptionCharacters) {
    add(
      "description",
      `must be at most ${grafanaLimits.maxDescriptionCharacters} characters (has ${characters})`,
    );
  }

  if (input.value?.kind === "plaintext") {
    const bytes = input.value.value.byteLength;
    if (bytes > grafanaLimits.maxValueBytes) {
      add("value", `is ${bytes} bytes, more than the limit of ${grafanaLimits.maxValueBytes}`);
    }
  }

  for (const [key, value] of Object.entries(input.labels)) {
    const field = `labels[${JSON.stringify(key)}]`;
    const problem = qualifiedNameProblem(key);
    if (problem) add(field, problem);
    else if (!isLabelValue(value)) {
      add(
        field,
        "values are empty or 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
      );
    }
  }
  for (const key of Object.keys(input.annotations)) {
    const problem = qualifiedNameProblem(key);
    if (problem) add(`annotations[${JSON.stringify(key)}]`, problem);
  }
  return out;
};
