/**
 * AccessService RPC handlers: translate messages to use-case calls and back. No rule lives here.
 */
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type AccessService,
  type Principal,
  PrincipalKind,
  type RoleBinding,
  type Token,
} from "../../gen/secrets/v1/access_service_pb.js";
import type { BindingRecord, TokenRecord } from "../auth/access-store-port.js";
import type { PrincipalKind as Kind } from "../auth/principal.js";
import type { AccessUseCases, PrincipalView } from "../service/access.js";
import { callerOf } from "./context.js";

type Init<T> = Omit<T, "$typeName" | "$unknown">;

const kindToProto: Record<Kind, PrincipalKind> = {
  user: PrincipalKind.USER,
  service_account: PrincipalKind.SERVICE_ACCOUNT,
};

function kindFromProto(kind: PrincipalKind): Kind | undefined {
  if (kind === PrincipalKind.USER) return "user";
  if (kind === PrincipalKind.SERVICE_ACCOUNT) return "service_account";
  return undefined;
}

function bindingToProto(b: BindingRecord): Init<RoleBinding> {
  return {
    principal: b.principal,
    role: b.role,
    namespace: b.namespace,
    createTime: timestampFromDate(b.createTime),
  };
}

function principalToProto(p: PrincipalView): Init<Principal> {
  return {
    name: p.name,
    kind: kindToProto[p.kind],
    displayName: p.displayName,
    roleBindings: p.bindings.map(bindingToProto) as RoleBinding[],
    createTime: timestampFromDate(p.createTime),
    createdBy: p.createdBy,
  };
}

function tokenToProto(t: TokenRecord): Init<Token> {
  return {
    id: t.id,
    principal: t.principal,
    description: t.description,
    createTime: timestampFromDate(t.createTime),
    ...(t.expireTime ? { expireTime: timestampFromDate(t.expireTime) } : {}),
    ...(t.revokeTime ? { revokeTime: timestampFromDate(t.revokeTime) } : {}),
  };
}

/** Builds the AccessService handlers over the use cases. */
export function accessRpc(access: AccessUseCases): ServiceImpl<typeof AccessService> {
  return {
    async createPrincipal(req, ctx) {
      const p = req.principal;
      const created = await access.createPrincipal(callerOf(ctx), {
        name: p?.name ?? "",
        kind: kindFromProto(p?.kind ?? PrincipalKind.UNSPECIFIED),
        displayName: p?.displayName ?? "",
      });
      return { principal: principalToProto(created) };
    },
    async getPrincipal(req, ctx) {
      return {
        principal: principalToProto(await access.getPrincipal(callerOf(ctx), req.name)),
      };
    },
    async listPrincipals(req, ctx) {
      const page = await access.listPrincipals(callerOf(ctx), req);
      return {
        principals: page.principals.map(principalToProto) as Principal[],
        nextPageToken: page.nextPageToken,
      };
    },
    async deletePrincipal(req, ctx) {
      await access.deletePrincipal(callerOf(ctx), req.name);
      return {};
    },
    async createToken(req, ctx) {
      const { token, secret } = await access.createToken(callerOf(ctx), {
        principal: req.principal,
        description: req.description,
        expireTime: req.expireTime ? timestampDate(req.expireTime) : undefined,
      });
      return { token: tokenToProto(token), secret };
    },
    async listTokens(req, ctx) {
      return {
        tokens: (await access.listTokens(callerOf(ctx), req.principal)).map(
          tokenToProto,
        ) as Token[],
      };
    },
    async revokeToken(req, ctx) {
      return { token: tokenToProto(await access.revokeToken(callerOf(ctx), req.id)) };
    },
    async grantRole(req, ctx) {
      const b = req.binding;
      const binding = await access.grantRole(callerOf(ctx), {
        principal: b?.principal ?? "",
        role: b?.role ?? "",
        namespace: b?.namespace ?? "",
      });
      return { binding: bindingToProto(binding) };
    },
    async revokeRole(req, ctx) {
      const b = req.binding;
      await access.revokeRole(callerOf(ctx), {
        principal: b?.principal ?? "",
        role: b?.role ?? "",
        namespace: b?.namespace ?? "",
      });
      return {};
    },
    async listRoleBindings(req, ctx) {
      const bindings = await access.listRoleBindings(callerOf(ctx), req);
      return { bindings: bindings.map(bindingToProto) as RoleBinding[] };
    },
  };
}
