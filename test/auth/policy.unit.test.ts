import { describe, expect, it } from "vitest";
import { allowedNamespaces, authorize } from "../../src/auth/policy.js";
import {
  type Action,
  type AuthenticatedPrincipal,
  adminActions,
  type PrincipalKind,
  type Role,
  roles,
  secretActions,
} from "../../src/auth/principal.js";

const who = (
  kind: PrincipalKind,
  role: Role,
  namespace: string,
  name = "p",
): AuthenticatedPrincipal => ({
  name,
  kind,
  bindings: [{ role, namespace }],
});

// The expected grants, written out independently of rolePermissions.
const expected: Record<
  Role,
  Record<"create" | "read" | "write" | "delete" | "decrypt" | "admin", boolean>
> = {
  admin: { create: true, read: true, write: true, delete: true, decrypt: true, admin: true },
  editor: { create: true, read: true, write: true, delete: true, decrypt: false, admin: false },
  reader: { create: false, read: true, write: false, delete: false, decrypt: false, admin: false },
  decrypter: {
    create: false,
    read: false,
    write: false,
    delete: false,
    decrypt: true,
    admin: false,
  },
};

describe("authorize", () => {
  const kinds: PrincipalKind[] = ["user", "service_account"];
  const secretEntries = Object.entries(secretActions) as [keyof typeof secretActions, Action][];

  for (const role of roles) {
    for (const kind of kinds) {
      for (const scope of ["team-a", "*"]) {
        it(`${role} ${kind} bound in ${scope}`, () => {
          const p = who(kind, role, scope);
          for (const [verb, action] of secretEntries) {
            // Users never decrypt, whatever their role.
            const want = expected[role][verb] && !(verb === "decrypt" && kind === "user");
            expect(authorize(p, action, "team-a").allowed, `${action} in team-a`).toBe(want);
            // A binding in one namespace grants nothing in another; "*" grants everywhere.
            expect(authorize(p, action, "team-b").allowed, `${action} in team-b`).toBe(
              want && scope === "*",
            );
          }
          for (const action of Object.values(adminActions)) {
            // Administrative actions need the admin role in every namespace.
            expect(authorize(p, action, "").allowed, action).toBe(
              expected[role].admin && scope === "*",
            );
          }
        });
      }
    }
  }

  it("lets a service account decrypt only when it is among the secret's decrypters", () => {
    const sa = who("service_account", "decrypter", "team-a", "billing");
    expect(
      authorize(sa, secretActions.decrypt, "team-a", "db", { decrypters: ["billing"] }).allowed,
    ).toBe(true);
    const denied = authorize(sa, secretActions.decrypt, "team-a", "db", { decrypters: ["other"] });
    expect(denied).toEqual({ allowed: false, reason: "not in the secret's decrypters" });
    expect(authorize(sa, secretActions.decrypt, "team-a", "db", { decrypters: [] }).allowed).toBe(
      false,
    );
  });

  it("never lets a user decrypt, not even an admin in every namespace listed in decrypters", () => {
    const admin = who("user", "admin", "*", "root");
    expect(
      authorize(admin, secretActions.decrypt, "team-a", "db", { decrypters: ["root"] }),
    ).toEqual({
      allowed: false,
      reason: "only service accounts decrypt",
    });
  });

  it("denies a principal with no bindings everything", () => {
    const nobody: AuthenticatedPrincipal = { name: "n", kind: "service_account", bindings: [] };
    for (const action of [...Object.values(secretActions), ...Object.values(adminActions)]) {
      expect(authorize(nobody, action, "team-a").allowed).toBe(false);
    }
  });

  it("combines bindings across namespaces", () => {
    const p: AuthenticatedPrincipal = {
      name: "p",
      kind: "user",
      bindings: [
        { role: "reader", namespace: "a" },
        { role: "editor", namespace: "b" },
      ],
    };
    expect(authorize(p, secretActions.write, "a").allowed).toBe(false);
    expect(authorize(p, secretActions.write, "b").allowed).toBe(true);
    expect(allowedNamespaces(p, secretActions.read)).toEqual(["a", "b"]);
    expect(allowedNamespaces(p, secretActions.write)).toEqual(["b"]);
    expect(allowedNamespaces(who("user", "reader", "*"), secretActions.read)).toBe("*");
  });
});
