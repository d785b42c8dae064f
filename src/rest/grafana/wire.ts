/**
 * Grafana's SecureValue wire format (secret.grafana.app/v1beta1): rendering a secret as a
 * SecureValue, and reading a request body into the domain's SecretInput. `spec.value` is read
 * here and never written: no function in this file puts a value into a response.
 */
import { SecretValue } from "../../crypto/secret-value.js";
import type { SecretView } from "../../domain/secret.js";
import type { SecretInput } from "../../service/secret-rules.js";

export const group = "secret.grafana.app";
export const version = "v1beta1";
export const apiVersion = `${group}/${version}`;
export const kind = "SecureValue";
export const listKind = "SecureValueList";
/** The resource's plural name, as in paths and in Kubernetes Status details. */
export const resource = "securevalues";

/** Annotations the server sets on every SecureValue; client-sent copies are dropped. */
export const serverAnnotations = {
  createdBy: "grafana.app/createdBy",
  updatedBy: "grafana.app/updatedBy",
  updatedTimestamp: "grafana.app/updatedTimestamp",
} as const;
const serverAnnotationKeys: ReadonlySet<string> = new Set(Object.values(serverAnnotations));

/** A SecureValue as Grafana's clients read it; there is deliberately no `value` in its spec. */
export interface SecureValue {
  readonly apiVersion: typeof apiVersion;
  readonly kind: typeof kind;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly resourceVersion: string;
    readonly creationTimestamp: string;
    readonly labels?: Record<string, string>;
    readonly annotations: Record<string, string>;
  };
  readonly spec: {
    readonly description: string;
    readonly decrypters?: string[];
    readonly ref?: string;
  };
  readonly status: { readonly version: number; readonly keeper: string };
}

/** A list page of SecureValues. */
export interface SecureValueList {
  readonly apiVersion: typeof apiVersion;
  readonly kind: typeof listKind;
  readonly metadata: { readonly resourceVersion: string; readonly continue?: string };
  readonly items: SecureValue[];
}

/** RFC 3339 in UTC with whole seconds, as Kubernetes writes timestamps ("2024-01-15T10:35:00Z"). */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Renders a secret as a SecureValue. Empty optional fields are left out, as Grafana does. */
export function toSecureValue(s: SecretView): SecureValue {
  const labels = Object.keys(s.labels).length > 0 ? { labels: { ...s.labels } } : {};
  return {
    apiVersion,
    kind,
    metadata: {
      name: s.name,
      namespace: s.namespace,
      uid: s.uid,
      resourceVersion: s.resourceVersion,
      creationTimestamp: rfc3339(s.createTime),
      ...labels,
      annotations: {
        ...withoutServerAnnotations(s.annotations),
        [serverAnnotations.createdBy]: s.createdBy,
        [serverAnnotations.updatedBy]: s.updatedBy,
        [serverAnnotations.updatedTimestamp]: rfc3339(s.updateTime),
      },
    },
    spec: {
      description: s.description,
      ...(s.decrypters.length > 0 ? { decrypters: [...s.decrypters] } : {}),
      ...(s.ref !== "" ? { ref: s.ref } : {}),
    },
    status: { version: s.version, keeper: s.keeper },
  };
}

/** A request that is not a SecureValue this API can read: 400 BadRequest. */
export class BadRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadRequestError";
  }
}

/** What a create or replace body says, before the URL and the server fill in the rest. */
export interface SecureValueBody {
  readonly name: string;
  readonly generateName: string;
  /** Empty when the body leaves it out. */
  readonly namespace: string;
  /** Empty when the body leaves it out: then the last writer wins. */
  readonly resourceVersion: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly description: string;
  readonly decrypters: string[];
  /**
   * The keeper holding a referenced value. Not in the current v1beta1 schema (whose status
   * reports the keeper), but in its earlier revision; accepted so a `ref` can name where it lives.
   */
  readonly keeper: string;
  readonly ref: string;
  /** The plaintext, or undefined when the body sends none; the caller disposes it. */
  readonly value: SecretValue | undefined;
}

/**
 * Reads a SecureValue request body. Shape errors (not an object, a field of the wrong JSON type,
 * another apiVersion or kind) are BadRequestError; field rules are left to validation so that one
 * Invalid answer can name every bad field. JSON null means absent, as in Kubernetes. Messages never
 * quote `spec.value`.
 */
export function parseSecureValue(body: unknown): SecureValueBody {
  const root = object(body, "the request body");
  if (root === undefined) throw new BadRequestError("the request body must be a JSON object");
  const av = optionalString(root.apiVersion, "apiVersion");
  if (av !== undefined && av !== apiVersion) {
    throw new BadRequestError(
      `apiVersion ${JSON.stringify(av)} is not served here; use ${JSON.stringify(apiVersion)}`,
    );
  }
  const k = optionalString(root.kind, "kind");
  if (k !== undefined && k !== kind) {
    throw new BadRequestError(
      `kind ${JSON.stringify(k)} does not match; use ${JSON.stringify(kind)}`,
    );
  }
  const metadata = object(root.metadata, "metadata") ?? {};
  const spec = object(root.spec, "spec") ?? {};
  const read = {
    name: optionalString(metadata.name, "metadata.name") ?? "",
    generateName: optionalString(metadata.generateName, "metadata.generateName") ?? "",
    namespace: optionalString(metadata.namespace, "metadata.namespace") ?? "",
    resourceVersion: optionalString(metadata.resourceVersion, "metadata.resourceVersion") ?? "",
    labels: stringMap(metadata.labels, "metadata.labels"),
    annotations: withoutClientCopiesOfTheValue(
      withoutServerAnnotations(stringMap(metadata.annotations, "metadata.annotations")),
    ),
    description: optionalString(spec.description, "spec.description") ?? "",
    decrypters: stringList(spec.decrypters, "spec.decrypters"),
    keeper: optionalString(spec.keeper, "spec.keeper") ?? "",
    ref: optionalString(spec.ref, "spec.ref") ?? "",
  };
  // Last, so that no shape error can leave a wrapped plaintext behind undisposed.
  const value = optionalString(spec.value, "spec.value");
  return { ...read, value: value === undefined ? undefined : SecretValue.fromString(value) };
}

/** The SecretInput for a body, addressed by the URL's namespace and the resolved name. */
export function toSecretInput(body: SecureValueBody, namespace: string, name: string): SecretInput {
  return {
    namespace,
    name,
    labels: body.labels,
    annotations: body.annotations,
    description: body.description,
    decrypters: body.decrypters,
    keeper: body.keeper,
    ref: body.ref,
    value: body.value === undefined ? undefined : { kind: "plaintext", value: body.value },
  };
}

/** The annotation in which `kubectl apply` (client-side) keeps its copy of the whole object. */
export const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * A client's own copy of the body, kept in an annotation, would hold spec.value in plain text
 * and come back on every GET. kubectl's last-applied configuration is kept with spec.value taken
 * out (kubectl's three-way merge still works: a value in the next apply is simply sent again);
 * one that is not a JSON object is dropped whole. managedFields are never stored at all.
 */
function withoutClientCopiesOfTheValue(m: Record<string, string>): Record<string, string> {
  const applied = m[lastAppliedAnnotation];
  if (applied === undefined) return m;
  const { [lastAppliedAnnotation]: _copy, ...rest } = m;
  let parsed: unknown;
  try {
    parsed = JSON.parse(applied);
  } catch {
    return rest;
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(parsed)) return rest;
  const root = parsed;
  if (!isObject(root.spec) || !("value" in root.spec)) return m;
  const { value: _value, ...keptSpec } = root.spec;
  return { ...rest, [lastAppliedAnnotation]: JSON.stringify({ ...root, spec: keptSpec }) };
}

function withoutServerAnnotations(m: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).filter(([key]) => !serverAnnotationKeys.has(key)));
}

function object(v: unknown, what: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new BadRequestError(`${what} must be a JSON object`);
  }
  return v as Record<string, unknown>;
}

function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  // The message names the field and never quotes it: the field may be spec.value.
  if (typeof v !== "string") throw new BadRequestError(`${field} must be a string`);
  return v;
}

function stringMap(v: unknown, field: string): Record<string, string> {
  const m = object(v, field);
  if (m === undefined) return {};
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(m)) {
    if (typeof value !== "string") throw new BadRequestError(`${field} values must be strings`);
    out[key] = value;
  }
  return out;
}

function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new BadRequestError(`${field} must be an array of strings`);
  }
  return v as string[];
}
