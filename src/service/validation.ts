/**
 * Rules shared by every entry point. Dialect-only rules (Grafana's 25-character description,
 * Sensu's name pattern) live in their dialect's folder, not here.
 */
import type { Violations } from "../domain/errors.js";

/** Kubernetes label-value syntax: what Grafana requires of decrypter identities. */
const labelValue = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;

/**
 * Namespaces and names: 1 to 253 characters of letters, digits, "-", "_", ".", ":", starting
 * and ending with a letter or digit. Wide enough for Sensu's names and Grafana's DNS-1123
 * subdomains, and free of "$", "/", whitespace and control characters, so no name can act as a
 * query operator or a path segment.
 */
const objectName = /^[A-Za-z0-9]([A-Za-z0-9_.:-]{0,251}[A-Za-z0-9])?$/;

/** Checks a principal name: label-value syntax, so it can appear in a secret's decrypters. */
export function checkPrincipalName(v: Violations, field: string, value: string): void {
  if (value === "") v.add(field, "is required");
  else if (!labelValue.test(value)) {
    v.add(
      field,
      "must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    );
  }
}

/** Checks a namespace or object name. */
export function checkObjectName(v: Violations, field: string, value: string): void {
  if (value === "") v.add(field, "is required");
  else if (!objectName.test(value)) {
    v.add(
      field,
      "must be 1 to 253 letters, digits, '-', '_', '.' or ':', starting and ending with a letter or digit",
    );
  }
}

/** Checks a free-text field: a length bound in characters and no control characters. */
export function checkText(v: Violations, field: string, value: string, max: number): void {
  if ([...value].length > max) v.add(field, `must be at most ${max} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects.
  else if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value))
    v.add(field, "must not contain control characters");
}
