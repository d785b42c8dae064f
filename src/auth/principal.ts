/**
 * Principals, roles and actions: the vocabulary of access control. Actions follow Grafana's
 * secret.securevalues permissions plus decrypt and the administrative actions.
 */

/** A person ("user") or a service identity ("service_account"). */
export type PrincipalKind = "user" | "service_account";

export const roles = ["admin", "editor", "reader", "decrypter"] as const;
/** A built-in role. */
export type Role = (typeof roles)[number];

/** Namespace value of a binding that applies in every namespace. */
export const allNamespaces = "*";

export const secretActions = {
  create: "secret.securevalues:create",
  read: "secret.securevalues:read",
  write: "secret.securevalues:write",
  delete: "secret.securevalues:delete",
  decrypt: "secret.securevalues:decrypt",
} as const;

/** Actions on secrets in one namespace. */
export type SecretAction = (typeof secretActions)[keyof typeof secretActions];

export const adminActions = {
  accessRead: "access:read",
  accessWrite: "access:write",
  auditRead: "audit:read",
  keysRead: "keys:read",
  keysWrite: "keys:write",
} as const;

/** Actions on the service itself; only a binding in every namespace ("*") can grant them. */
export type AdminAction = (typeof adminActions)[keyof typeof adminActions];

export type Action = SecretAction | AdminAction;

/** What each built-in role may do. */
export const rolePermissions: Readonly<Record<Role, readonly Action[]>> = {
  admin: [...Object.values(secretActions), ...Object.values(adminActions)],
  editor: [secretActions.create, secretActions.read, secretActions.write, secretActions.delete],
  reader: [secretActions.read],
  decrypter: [secretActions.decrypt],
};

/** A principal's role in one namespace or in every namespace. */
export interface Binding {
  readonly role: Role;
  readonly namespace: string;
}

/** The authenticated caller, as policy sees it. */
export interface AuthenticatedPrincipal {
  readonly name: string;
  readonly kind: PrincipalKind;
  readonly bindings: readonly Binding[];
}

export function isRole(value: string): value is Role {
  return (roles as readonly string[]).includes(value);
}

export function isAdminAction(action: Action): action is AdminAction {
  return (Object.values(adminActions) as string[]).includes(action);
}
