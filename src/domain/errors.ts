/**
 * Domain errors: what went wrong in terms a caller can act on. They are mapped to Connect codes,
 * Sensu JSON and Kubernetes Status at the edge, each by one table; anything that is not a
 * DomainError is an internal error whose details stay in the log.
 */

/** The kinds of failure the domain reports. */
export type ErrorCode =
  | "not_found"
  | "already_exists"
  | "conflict"
  | "invalid_argument"
  | "permission_denied"
  | "unauthenticated"
  | "unavailable"
  | "resource_exhausted"
  | "failed_precondition"
  /** A stored record does not have the shape it was stored with (edited, or damaged). */
  | "data_loss";

/** One invalid field: its path (for example "spec.decrypters[1]") and what is wrong with it. */
export interface FieldViolation {
  readonly field: string;
  readonly message: string;
}

export interface ErrorDetails {
  /** The kind and name of the resource the error is about. */
  readonly resource?: { readonly kind: string; readonly name: string };
  readonly violations?: readonly FieldViolation[];
  /** For resource_exhausted: when the caller may try again. */
  readonly retryAfterSeconds?: number;
  /** For unauthenticated: no usable credentials at all, or credentials that are not valid. */
  readonly credentials?: "missing" | "invalid";
}

/** An error the domain raises on purpose; its message is safe to show to the caller. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
    this.name = "DomainError";
  }
}

/** The named resource does not exist. */
export function notFound(kind: string, name: string): DomainError {
  return new DomainError("not_found", `${kind} "${name}" not found`, { resource: { kind, name } });
}

/** The named resource exists already. */
export function alreadyExists(kind: string, name: string): DomainError {
  return new DomainError("already_exists", `${kind} "${name}" already exists`, {
    resource: { kind, name },
  });
}

/** A compare-and-set lost: the resource changed since the caller read it. */
export function conflict(kind: string, name: string, message: string): DomainError {
  return new DomainError("conflict", message, { resource: { kind, name } });
}

/** One or more fields are invalid; the message lists them all. */
export function invalid(violations: readonly FieldViolation[]): DomainError {
  const message = violations.map((v) => `${v.field}: ${v.message}`).join("; ");
  return new DomainError("invalid_argument", message, { violations });
}

/** The caller is authenticated but not allowed to do this. */
export function permissionDenied(message = "permission denied"): DomainError {
  return new DomainError("permission_denied", message);
}

/** The caller presented no usable credentials ("missing") or credentials that fail ("invalid"). */
export function unauthenticated(credentials: "missing" | "invalid"): DomainError {
  const message =
    credentials === "missing" ? "missing or unsupported credentials" : "invalid credentials";
  return new DomainError("unauthenticated", message, { credentials });
}

/**
 * A stored record of the named resource does not have the stored shape. The message names the
 * resource only; `problem` (for logs and the audit trail) says what is wrong.
 */
export class MalformedRecordError extends DomainError {
  constructor(
    kind: string,
    readonly resourceName: string,
    readonly problem: string,
  ) {
    super("data_loss", `the stored record of ${kind} "${resourceName}" is damaged`, {
      resource: { kind, name: resourceName },
    });
    this.name = "MalformedRecordError";
  }
}

/** Collects field violations so that one response names every bad field. */
export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, message: string): this {
    this.list.push({ field, message });
    return this;
  }

  get isEmpty(): boolean {
    return this.list.length === 0;
  }

  /** Throws an invalid_argument DomainError when any violation was added. */
  throwIfAny(): void {
    if (this.list.length > 0) throw invalid(this.list);
  }
}

/**
 * The error with the field paths of its violations renamed (a dialect's names for the domain's
 * neutral paths); any other error as it is.
 */
export function renamingFields(err: unknown, rename: (field: string) => string): unknown {
  if (!(err instanceof DomainError) || err.code !== "invalid_argument" || !err.details.violations)
    return err;
  return invalid(
    err.details.violations.map((v) => ({ field: rename(v.field), message: v.message })),
  );
}
