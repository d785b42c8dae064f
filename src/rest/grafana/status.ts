/**
 * Errors in Grafana's formats: Kubernetes Status objects, from one table over the domain's error
 * codes, except 401, which Grafana answers in its own JSON before the API server sees the request.
 * Validation field paths are mapped here from the domain's neutral names to Grafana's.
 */
import type { DomainError, ErrorCode, FieldViolation } from "../../domain/errors.js";
import { group, kind, resource } from "./wire.js";

/** The Kubernetes verbs of the routes, used in messages. */
export type Verb = "create" | "list" | "get" | "update" | "delete";

/** What an error is about, for its message and details. */
export interface ErrorContext {
  readonly verb: Verb | undefined;
  readonly namespace: string;
  /** The secure value's name; empty for lists. */
  readonly name: string;
  /** Whether the name was generated from metadata.generateName (its errors point there). */
  readonly generated: boolean;
  /** The authenticated principal, once known. */
  readonly principal: string;
}

interface Cause {
  readonly reason: string;
  readonly message: string;
  readonly field: string;
}

/** A Kubernetes Status object. */
export interface Status {
  readonly kind: "Status";
  readonly apiVersion: "v1";
  readonly metadata: Record<string, never>;
  readonly status: "Success" | "Failure";
  readonly message?: string;
  readonly reason?: string;
  readonly details?: {
    readonly name?: string;
    readonly group?: string;
    readonly kind?: string;
    readonly causes?: readonly Cause[];
    readonly retryAfterSeconds?: number;
  };
  readonly code: number;
}

/** An answer to send: status code, body, extra headers. */
export interface Answer {
  readonly code: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

/** Grafana's own 401 body: its auth middleware answers before any Kubernetes handler. */
export const unauthorizedBody = {
  message: "Unauthorized",
  messageId: "auth.unauthorized",
  statusCode: 401,
  traceID: "",
} as const;

/** The Status of a successful delete. */
export function deletedStatus(name: string): Status {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    details: { name, kind },
    code: 200,
  };
}

/** A failure Status about the context's secure value. */
export function failure(
  code: number,
  reason: string,
  message: string,
  ctx: Pick<ErrorContext, "name">,
  extra: { causes?: readonly Cause[]; retryAfterSeconds?: number } = {},
): Status {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    details: {
      ...(ctx.name !== "" ? { name: ctx.name } : {}),
      group,
      kind: resource,
      ...(extra.causes ? { causes: extra.causes } : {}),
      ...(extra.retryAfterSeconds !== undefined
        ? { retryAfterSeconds: extra.retryAfterSeconds }
        : {}),
    },
    code,
  };
}

/**
 * The 404 of a path no route matches, as the Kubernetes API server words it: about no resource,
 * so its details are empty.
 */
export function unknownPath(): Status {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: "the server could not find the requested resource",
    reason: "NotFound",
    details: {},
    code: 404,
  };
}

/**
 * The answer to GET /api/v1/namespaces/:name. When a namespaced GET is 404, kubectl asks for the
 * namespace itself and, if that is 404 too, reports the namespace's error instead of the
 * object's (cli-runtime's resource.Info.Get), so a Status 404 here would turn every
 * `kubectl get securevalue missing` into "the server could not find the requested resource".
 * seald keeps no namespace objects and lets nobody read them: the Forbidden that Kubernetes
 * answers a user without RBAC on namespaces (the usual case), after which kubectl shows the
 * object's own NotFound.
 */
export function namespaceForbidden(name: string, principal: string): Status {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `namespaces ${JSON.stringify(name)} is forbidden: User ${JSON.stringify(principal)} cannot get resource "namespaces" in API group "" in the namespace ${JSON.stringify(name)}`,
    reason: "Forbidden",
    details: { name, kind: "namespaces" },
    code: 403,
  };
}

const qualified = `${resource}.${group}`;
const quoted = (name: string) => (name === "" ? "" : ` ${JSON.stringify(name)}`);

/** The one table from domain errors to Grafana's answers. */
const table: Record<ErrorCode, (err: DomainError, ctx: ErrorContext) => Answer> = {
  not_found: (_err, ctx) => ({
    code: 404,
    body: failure(404, "NotFound", `${qualified}${quoted(ctx.name)} not found`, ctx),
  }),
  already_exists: (_err, ctx) => ({
    code: 409,
    body: failure(409, "AlreadyExists", `${qualified}${quoted(ctx.name)} already exists`, ctx),
  }),
  conflict: (_err, ctx) => ({
    code: 409,
    body: failure(
      409,
      "Conflict",
      `Operation cannot be fulfilled on ${qualified}${quoted(ctx.name)}: the object has been modified; please apply your changes to the latest version and try again`,
      ctx,
    ),
  }),
  invalid_argument: (err, ctx) => invalidAnswer(err.details.violations ?? [], ctx, err.message),
  permission_denied: (_err, ctx) => ({
    code: 403,
    body: failure(
      403,
      "Forbidden",
      `${qualified}${quoted(ctx.name)} is forbidden: User ${JSON.stringify(ctx.principal)} cannot ${ctx.verb ?? "access"} resource "${resource}" in API group "${group}" in the namespace ${JSON.stringify(ctx.namespace)}`,
      ctx,
    ),
  }),
  unauthenticated: () => ({ code: 401, body: unauthorizedBody }),
  resource_exhausted: (err, ctx) => {
    const retry = err.details.retryAfterSeconds ?? 1;
    return {
      code: 429,
      body: failure(429, "TooManyRequests", err.message, ctx, { retryAfterSeconds: retry }),
      headers: { "retry-after": String(retry) },
    };
  },
  unavailable: (err, ctx) => ({
    code: 503,
    body: failure(503, "ServiceUnavailable", err.message, ctx),
  }),
  failed_precondition: (err, ctx) => ({
    code: 409,
    body: failure(409, "Conflict", err.message, ctx),
  }),
  data_loss: (err, ctx) => ({
    code: 500,
    body: failure(500, "InternalError", `Internal error occurred: ${err.message}`, ctx),
  }),
};

/** Grafana's answer to a domain error. */
export function answerFor(err: DomainError, ctx: ErrorContext): Answer {
  return table[err.code](err, ctx);
}

/** The unexpected error's answer: nothing of the cause reaches the client. */
export function internalError(ctx: ErrorContext): Answer {
  return {
    code: 500,
    body: failure(500, "InternalError", "Internal error occurred: internal error", ctx),
  };
}

/** A 400 BadRequest Status. */
export function badRequest(message: string, ctx: ErrorContext): Answer {
  return { code: 400, body: failure(400, "BadRequest", message, ctx) };
}

/**
 * The 400 Invalid answer: one cause per bad field, in Grafana's paths; when a dialect rule and a
 * domain rule both reject a field, the first (the dialect's, which is the stricter) is kept.
 */
function invalidAnswer(
  violations: readonly FieldViolation[],
  ctx: ErrorContext,
  fallback: string,
): Answer {
  const causes: Cause[] = [];
  const seen = new Set<string>();
  for (const v of violations) {
    const field = grafanaField(v.field, ctx.generated);
    if (seen.has(field)) continue;
    seen.add(field);
    causes.push({ reason: "FieldValueInvalid", message: v.message, field });
  }
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const summary =
    list.length === 0 ? fallback : list.length === 1 ? list[0] : `[${list.join(", ")}]`;
  return {
    code: 400,
    body: failure(
      400,
      "Invalid",
      `${kind}.${group}${quoted(ctx.name)} is invalid: ${summary}`,
      ctx,
      {
        causes,
      },
    ),
  };
}

/**
 * Maps a domain field path to Grafana's: `description` is `spec.description`, `decrypters[1]` is
 * `spec.decrypters[1]`, `labels["app"]` is `metadata.labels[app]` (Kubernetes writes map keys
 * unquoted), and `name` is `metadata.generateName` when the name was generated from it.
 */
export function grafanaField(field: string, generated = false): string {
  if (field === "name") return generated ? "metadata.generateName" : "metadata.name";
  if (field === "namespace") return "metadata.namespace";
  const map = /^(labels|annotations)(?:\[(".*")\])?$/s.exec(field);
  if (map) {
    const key = map[2] === undefined ? "" : `[${JSON.parse(map[2]) as string}]`;
    return `metadata.${map[1]}${key}`;
  }
  const spec = /^(description|decrypters|keeper|ref|value)(\[\d+\]|\..*)?$/s.exec(field);
  if (spec) return spec[1] === "value" ? "spec.value" : `spec.${spec[1]}${spec[2] ?? ""}`;
  return field;
}
