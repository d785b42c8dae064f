/**
 * Sensu's wire format for secrets and providers: the wrapped resource (`type`, `api_version`,
 * `metadata`, `spec`, in that order), and the decoding of PUT bodies with the rules that only
 * Sensu has (its name pattern, the URL/body agreement, `type` and `api_version`). Every other rule
 * is the domain's.
 */
import { DomainError } from "../../domain/errors.js";
import { type SecretView, systemKeeper } from "../../domain/secret.js";
import type { ProviderRecord } from "../../service/providers.js";

export const apiVersion = "secrets/v1";

/** Sensu's shared name rule (resources and namespaces). */
const sensuName = /^[A-Za-z0-9_.:-]+$/;

/** A Secret in Sensu's wrapped format. */
export interface WireSecret {
  type: "Secret";
  api_version: string;
  metadata: {
    name: string;
    namespace: string;
    created_by: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: { id: string; provider: string };
}

/** A secrets provider in Sensu's wrapped format. */
export interface WireProvider {
  type: string;
  api_version: string;
  metadata: {
    name: string;
    created_by?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: Record<string, never>;
}

/**
 * Renders a secret. Keys are built in Sensu's order; labels and annotations appear only when
 * non-empty. A secret sealed by seald (keeper "system") shows `provider: "system"` and an empty
 * `id`: it has no external reference, and selectors see exactly these values.
 */
export function renderSecret(s: SecretView): WireSecret {
  const metadata: WireSecret["metadata"] = {
    name: s.name,
    namespace: s.namespace,
    created_by: s.createdBy,
  };
  if (Object.keys(s.labels).length > 0) metadata.labels = { ...s.labels };
  if (Object.keys(s.annotations).length > 0) metadata.annotations = { ...s.annotations };
  return {
    type: "Secret",
    api_version: apiVersion,
    metadata,
    spec: { id: s.ref, provider: s.keeper },
  };
}

/**
 * Renders a provider; the default one, which nobody created, has no created_by. Labels and
 * annotations appear only when non-empty, as on secrets.
 */
export function renderProvider(p: ProviderRecord): WireProvider {
  const metadata: WireProvider["metadata"] = { name: p.name };
  if (p.createdBy) metadata.created_by = p.createdBy;
  if (Object.keys(p.labels).length > 0) metadata.labels = { ...p.labels };
  if (Object.keys(p.annotations).length > 0) metadata.annotations = { ...p.annotations };
  return { type: p.type, api_version: apiVersion, metadata, spec: {} };
}

/** What a secret PUT says, after Sensu's own checks. */
export interface SecretBody {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly id: string;
  readonly provider: string;
}

/** What a provider PUT says, after Sensu's own checks. */
export interface ProviderBody {
  readonly name: string;
  readonly type: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

const bad = (message: string) => new DomainError("invalid_argument", message);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Refuses object keys that start with "$" anywhere in a body. No Sensu resource has such a key
 * (Sensu's selector words cannot even spell one), and they are how query-operator injection is
 * usually attempted; refusing them at the edge keeps them away from every layer below.
 */
function checkKeys(body: unknown): void {
  const stack: [unknown, string][] = [[body, ""]];
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, string];
    if (typeof value !== "object" || value === null) continue;
    for (const [key, child] of Object.entries(value)) {
      if (!Array.isArray(value) && key.startsWith("$")) {
        throw bad(`${path || "the body"}: key "${key}" must not start with '$'`);
      }
      stack.push([child, path ? `${path}.${key}` : key]);
    }
  }
}

function optionalString(obj: Json, key: string, path: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw bad(`${path} must be a string`);
  return v;
}

function stringMap(obj: Json, key: string, path: string): Record<string, string> {
  const v = obj[key];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw bad(`${path} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== "string") throw bad(`${path}[${JSON.stringify(k)}] must be a string`);
    out[k] = value;
  }
  return out;
}

function checkName(kind: "name" | "namespace", value: string): void {
  if (!sensuName.test(value)) {
    throw bad(
      `metadata.${kind}: ${JSON.stringify(value)} is not a valid ${kind}: use only letters, digits, '_', '.', ':' and '-'`,
    );
  }
}

/** The body's envelope: an object, no "$" keys, the expected type, Sensu's api_version. */
function envelope(body: unknown, expectedType: string | undefined): Json {
  if (!isObject(body)) throw bad("the request body must be a JSON object");
  checkKeys(body);
  const type = optionalString(body, "type", "type");
  if (expectedType !== undefined && type !== undefined && type !== expectedType) {
    throw bad(`type must be "${expectedType}", not ${JSON.stringify(type)}`);
  }
  const version = optionalString(body, "api_version", "api_version");
  if (version !== undefined && version !== apiVersion) {
    throw bad(`api_version must be "${apiVersion}", not ${JSON.stringify(version)}`);
  }
  return body;
}

/** The metadata object, with the name (and namespace) agreeing with the URL. */
function metadataOf(body: Json, url: { name: string; namespace?: string }): Json {
  const metadata = body.metadata ?? {};
  if (!isObject(metadata)) throw bad("metadata must be an object");
  // Left out of the body, they come from the URL (Sensu's clients always send both).
  const name = optionalString(metadata, "name", "metadata.name") || url.name;
  if (name !== url.name) {
    throw bad(
      `the name of the resource (${name}) does not match the name of the URI (${url.name})`,
    );
  }
  const namespace = optionalString(metadata, "namespace", "metadata.namespace") || "";
  if (url.namespace === undefined) {
    if (namespace !== "") throw bad("metadata.namespace must be empty: providers are cluster-wide");
  } else if (namespace !== "" && namespace !== url.namespace) {
    throw bad(
      `the namespace of the resource (${namespace}) does not match the namespace of the URI (${url.namespace})`,
    );
  }
  // created_by is the server's to set, whatever the body says; but like Sensu, which decodes it
  // into a string field, a body whose created_by is not a string is malformed.
  optionalString(metadata, "created_by", "metadata.created_by");
  return metadata;
}

/**
 * Decodes a secret PUT. `type` and `api_version` may be left out (the URL names the resource);
 * sent, they must be Sensu's. `spec.id` and `spec.provider` are required, except that provider
 * "system" (a value seald sealed) takes an empty id, as GET renders it.
 */
export function decodeSecret(body: unknown, url: { namespace: string; name: string }): SecretBody {
  const b = envelope(body, "Secret");
  const metadata = metadataOf(b, url);
  checkName("namespace", url.namespace);
  checkName("name", url.name);
  const labels = stringMap(metadata, "labels", "metadata.labels");
  const annotations = stringMap(metadata, "annotations", "metadata.annotations");
  if (!isObject(b.spec)) throw bad("spec is required and must be an object");
  const id = optionalString(b.spec, "id", "spec.id") ?? "";
  const provider = optionalString(b.spec, "provider", "spec.provider") ?? "";
  if (provider === "") throw bad("spec.provider is required");
  if (provider === systemKeeper) {
    if (id !== "") {
      throw bad(
        `spec.id must be empty for provider "${systemKeeper}": its value is sealed by seald, not referenced`,
      );
    }
  } else if (id === "") throw bad("spec.id is required");
  return { namespace: url.namespace, name: url.name, labels, annotations, id, provider };
}

/**
 * Decodes a provider PUT. Providers are cluster-wide (no namespace); they carry labels and
 * annotations like every Sensu resource (`sensuctl create` always adds
 * `sensu.io/managed_by: sensuctl`), checked by the domain's rules for secrets' labels. The Env
 * type takes no settings; an unsupported type is the domain's to refuse.
 */
export function decodeProvider(body: unknown, url: { name: string }): ProviderBody {
  const b = envelope(body, undefined);
  const metadata = metadataOf(b, url);
  checkName("name", url.name);
  const labels = stringMap(metadata, "labels", "metadata.labels");
  const annotations = stringMap(metadata, "annotations", "metadata.annotations");
  const type = optionalString(b, "type", "type") ?? "";
  const spec = b.spec ?? {};
  if (!isObject(spec)) throw bad("spec must be an object");
  if (type === "Env" && Object.keys(spec).length > 0) {
    throw bad("spec: the Env provider takes no settings (spec must be {})");
  }
  return { name: url.name, type, labels, annotations };
}
