/**
 * The access policy: one pure function that every entry point (RPC and REST alike) asks before
 * acting. It reads nothing but its arguments, so tests can call it directly.
 */
import {
  type Action,
  type AuthenticatedPrincipal,
  allNamespaces,
  isAdminAction,
  rolePermissions,
  secretActions,
} from "./principal.js";

/** The policy's answer; reason is for the audit log, never for the caller. */
export type Decision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: string };

/** The secret being acted on, when the decision depends on it (decrypt). */
export interface SecretFacts {
  readonly decrypters: readonly string[];
}

const allow: Decision = { allowed: true };

/**
 * Decides whether the principal may perform the action in the namespace (on the named secret).
 * Administrative actions need a grant in every namespace ("*"). Decrypt needs all three of: a
 * service account, a decrypt grant in the namespace, and, when the secret is known, the
 * principal's name in its decrypters; users never decrypt, admins included.
 */
export function authorize(
  principal: AuthenticatedPrincipal,
  action: Action,
  namespace: string,
  _name?: string,
  secret?: SecretFacts,
): Decision {
  if (action === secretActions.decrypt && principal.kind !== "service_account") {
    return { allowed: false, reason: "only service accounts decrypt" };
  }
  const cluster = isAdminAction(action);
  const granted = principal.bindings.some(
    (b) =>
      (b.namespace === allNamespaces || (!cluster && b.namespace === namespace)) &&
      rolePermissions[b.role].includes(action),
  );
  if (!granted) {
    return {
      allowed: false,
      reason: `no role grants ${action} in ${cluster ? "every namespace" : `namespace "${namespace}"`}`,
    };
  }
  if (action === secretActions.decrypt && secret && !secret.decrypters.includes(principal.name)) {
    return { allowed: false, reason: "not in the secret's decrypters" };
  }
  return allow;
}

/**
 * The namespaces in which the principal may perform the action: every namespace ("*") or a list.
 * Used to list across namespaces without revealing any the caller cannot read.
 */
export function allowedNamespaces(
  principal: AuthenticatedPrincipal,
  action: Action,
): "*" | string[] {
  const namespaces = new Set<string>();
  for (const b of principal.bindings) {
    if (!rolePermissions[b.role].includes(action)) continue;
    if (b.namespace === allNamespaces) return allNamespaces;
    namespaces.add(b.namespace);
  }
  return [...namespaces].sort();
}
