/**
 * Access management use cases: principals, tokens and role bindings. Every method authorises
 * through the guard (admin actions need a grant in every namespace), validates, acts, and
 * records the outcome in the audit trail.
 */
import { randomBytes } from "node:crypto";
import type {
  AccessStore,
  BindingRecord,
  PrincipalRecord,
  TokenRecord,
} from "../auth/access-store-port.js";
import type { Authenticator } from "../auth/authenticate.js";
import type { Caller } from "../auth/caller.js";
import type { Guard } from "../auth/guard.js";
import {
  adminActions,
  allNamespaces,
  isRole,
  type PrincipalKind,
  type Role,
} from "../auth/principal.js";
import { generateToken, hashToken } from "../auth/tokens.js";
import type { KeyRing } from "../crypto/keyring.js";
import { alreadyExists, DomainError, notFound, Violations } from "../domain/errors.js";
import { pageSize, pageTokenCodec } from "../domain/paging.js";
import { checkObjectName, checkPrincipalName, checkText } from "./validation.js";

export interface PrincipalInput {
  readonly name: string;
  readonly kind: PrincipalKind | undefined;
  readonly displayName: string;
}

export interface TokenInput {
  readonly principal: string;
  readonly description: string;
  readonly expireTime: Date | undefined;
}

export interface BindingInput {
  readonly principal: string;
  readonly role: string;
  readonly namespace: string;
}

/** A principal with its role bindings. */
export interface PrincipalView extends PrincipalRecord {
  readonly bindings: readonly BindingRecord[];
}

/** Access management over the access store. */
/** A principals list's page token: the name the next page starts after. */
const principalsPageToken = pageTokenCodec(
  { after: "string" },
  (t) => t.after,
  (name: string) => ({ after: name }),
);

export class AccessUseCases {
  constructor(
    private readonly store: AccessStore,
    private readonly ring: KeyRing,
    private readonly guard: Guard,
    private readonly authenticator: Authenticator,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async createPrincipal(caller: Caller, input: PrincipalInput): Promise<PrincipalView> {
    const action = "access:principal.create";
    await this.guard.require(caller, adminActions.accessWrite, "", input.name);
    const v = new Violations();
    checkPrincipalName(v, "principal.name", input.name);
    if (input.kind === undefined)
      v.add("principal.kind", "must be PRINCIPAL_KIND_USER or PRINCIPAL_KIND_SERVICE_ACCOUNT");
    checkText(v, "principal.display_name", input.displayName, 256);
    v.throwIfAny();
    const record: PrincipalRecord = {
      name: input.name,
      kind: input.kind ?? "user",
      displayName: input.displayName,
      createTime: this.now(),
      createdBy: caller.principal.name,
    };
    if (!(await this.store.insertPrincipal(record))) {
      await this.guard.record(caller, action, "", input.name, "conflict", "name taken");
      throw alreadyExists("principal", input.name);
    }
    await this.guard.record(caller, action, "", input.name, "success");
    return { ...record, bindings: [] };
  }

  async getPrincipal(caller: Caller, name: string): Promise<PrincipalView> {
    await this.guard.require(caller, adminActions.accessRead, "", name);
    const p = await this.store.getPrincipal(name);
    if (!p) throw notFound("principal", name);
    return { ...p, bindings: await this.store.listBindings({ principal: name }) };
  }

  async listPrincipals(
    caller: Caller,
    page: { pageSize: number; pageToken: string },
  ): Promise<{ principals: PrincipalView[]; nextPageToken: string }> {
    await this.guard.require(caller, adminActions.accessRead, "");
    const limit = pageSize("page_size", page.pageSize);
    const after = page.pageToken
      ? principalsPageToken.decode("page_token", page.pageToken)
      : undefined;
    const found = await this.store.listPrincipals(after, limit + 1);
    const principals = await Promise.all(
      found.slice(0, limit).map(async (p) => ({
        ...p,
        bindings: await this.store.listBindings({ principal: p.name }),
      })),
    );
    const last = principals.at(-1);
    return {
      principals,
      nextPageToken: found.length > limit && last ? principalsPageToken.encode(last.name) : "",
    };
  }

  async deletePrincipal(caller: Caller, name: string): Promise<void> {
    await this.guard.require(caller, adminActions.accessWrite, "", name);
    if (name === caller.principal.name) {
      throw new DomainError("failed_precondition", "a principal cannot delete itself");
    }
    if (!(await this.store.deletePrincipal(name))) throw notFound("principal", name);
    this.authenticator.invalidate();
    await this.guard.record(caller, "access:principal.delete", "", name, "success");
  }

  async createToken(
    caller: Caller,
    input: TokenInput,
  ): Promise<{ token: TokenRecord; secret: string }> {
    await this.guard.require(caller, adminActions.accessWrite, "", input.principal);
    const v = new Violations();
    checkPrincipalName(v, "principal", input.principal);
    checkText(v, "description", input.description, 256);
    const now = this.now();
    if (input.expireTime && input.expireTime.getTime() <= now.getTime())
      v.add("expire_time", "must be in the future");
    v.throwIfAny();
    if (!(await this.store.getPrincipal(input.principal)))
      throw notFound("principal", input.principal);
    const secret = generateToken();
    const token: TokenRecord = {
      id: randomBytes(8).toString("hex"),
      principal: input.principal,
      ...hashToken(this.ring, secret),
      description: input.description,
      createTime: now,
      expireTime: input.expireTime,
    };
    await this.store.insertToken(token);
    await this.guard.record(
      caller,
      "access:token.create",
      "",
      input.principal,
      "success",
      `token ${token.id}`,
    );
    return { token, secret };
  }

  async listTokens(caller: Caller, principal: string): Promise<TokenRecord[]> {
    await this.guard.require(caller, adminActions.accessRead, "", principal);
    return this.store.listTokens(principal === "" ? undefined : principal);
  }

  async revokeToken(caller: Caller, id: string): Promise<TokenRecord> {
    await this.guard.require(caller, adminActions.accessWrite, "", id);
    const token = await this.store.revokeToken(id, this.now());
    if (!token) throw notFound("token", id);
    // This replica stops accepting it at once; others within their cache lifetime (1 s).
    this.authenticator.invalidate();
    await this.guard.record(
      caller,
      "access:token.revoke",
      "",
      token.principal,
      "success",
      `token ${id}`,
    );
    return token;
  }

  async grantRole(caller: Caller, input: BindingInput): Promise<BindingRecord> {
    await this.guard.require(caller, adminActions.accessWrite, "", input.principal);
    const role = this.checkBinding(input);
    const principal = await this.store.getPrincipal(input.principal);
    if (!principal) throw notFound("principal", input.principal);
    if (role === "decrypter" && principal.kind !== "service_account") {
      new Violations()
        .add("binding.role", "decrypter can only be granted to service accounts")
        .throwIfAny();
    }
    const binding: BindingRecord = {
      principal: input.principal,
      role,
      namespace: input.namespace,
      createTime: this.now(),
    };
    if (!(await this.store.insertBinding(binding))) {
      throw alreadyExists("role binding", `${input.principal}/${input.namespace}/${role}`);
    }
    this.authenticator.invalidate();
    await this.guard.record(
      caller,
      "access:role.grant",
      input.namespace,
      input.principal,
      "success",
      `role ${role}`,
    );
    return binding;
  }

  async revokeRole(caller: Caller, input: BindingInput): Promise<void> {
    await this.guard.require(caller, adminActions.accessWrite, "", input.principal);
    const role = this.checkBinding(input);
    if (
      !(await this.store.deleteBinding({
        principal: input.principal,
        role,
        namespace: input.namespace,
      }))
    ) {
      throw notFound("role binding", `${input.principal}/${input.namespace}/${role}`);
    }
    this.authenticator.invalidate();
    await this.guard.record(
      caller,
      "access:role.revoke",
      input.namespace,
      input.principal,
      "success",
      `role ${role}`,
    );
  }

  async listRoleBindings(
    caller: Caller,
    filter: { principal: string; namespace: string },
  ): Promise<BindingRecord[]> {
    await this.guard.require(caller, adminActions.accessRead, "");
    return this.store.listBindings({
      ...(filter.principal ? { principal: filter.principal } : {}),
      ...(filter.namespace ? { namespace: filter.namespace } : {}),
    });
  }

  private checkBinding(input: BindingInput): Role {
    const v = new Violations();
    checkPrincipalName(v, "binding.principal", input.principal);
    if (!isRole(input.role))
      v.add("binding.role", "must be one of admin, editor, reader, decrypter");
    if (input.namespace !== allNamespaces) checkObjectName(v, "binding.namespace", input.namespace);
    v.throwIfAny();
    return input.role as Role;
  }
}
