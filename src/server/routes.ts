/**
 * Every Connect service seald serves, registered in this one file.
 */
import type { DescService } from "@bufbuild/protobuf";
import {
  type ConnectRouter,
  createServiceImplSpec,
  type ServiceImpl,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { AccessService } from "../../gen/secrets/v1/access_service_pb.js";
import { AuditService } from "../../gen/secrets/v1/audit_service_pb.js";
import { KeysService } from "../../gen/secrets/v1/keys_service_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import type { AuditLog } from "../auth/audit.js";
import type { Guard } from "../auth/guard.js";
import type { AccessUseCases } from "../service/access.js";
import type { KeyUseCases } from "../service/key-admin.js";
import type { SecretUseCases } from "../service/secrets.js";
import { accessRpc } from "./access-rpc.js";
import { auditRpc } from "./audit-rpc.js";
import { healthService } from "./health.js";
import { keysRpc } from "./keys-rpc.js";
import type { Readiness } from "./readiness.js";
import { ReflectionIndex, reflectionV1, reflectionV1alpha } from "./reflection.js";
import { secretsRpc } from "./secrets-rpc.js";

export interface RouteDeps {
  readonly readiness: Readiness;
  /** Aborted when the server begins shutting down; ends long-lived streams. */
  readonly shutdown: AbortSignal;
  readonly access: AccessUseCases;
  readonly secrets: SecretUseCases;
  readonly keys: KeyUseCases;
  readonly audit: AuditLog;
  readonly guard: Guard;
}

/** The application services: what health reports on and reflection describes. */
export const appServices = [SecretsService, AccessService, AuditService, KeysService] as const;

/** Services callable without credentials: probes and schema discovery. */
export const publicServices: ReadonlySet<string> = new Set([
  Health.typeName,
  ServerReflectionV1.typeName,
  ServerReflectionV1alpha.typeName,
]);

/** Every service the router serves. */
export const servedServices = [...appServices, Health, ServerReflectionV1, ServerReflectionV1alpha];

/**
 * One served service: its implementation as Connect's spec (what the lean gRPC path in
 * grpc-fast.ts calls) and the registration of that same implementation object on a router.
 */
export interface ServedService {
  readonly spec: ServiceImplSpec;
  register(router: ConnectRouter): void;
}

function served<S extends DescService>(service: S, impl: ServiceImpl<S>): ServedService {
  return {
    spec: createServiceImplSpec(service, impl),
    register: (router) => router.service(service, impl),
  };
}

/** Builds every service implementation once, so every protocol path calls the same objects. */
export function services(deps: RouteDeps): ServedService[] {
  const index = new ReflectionIndex(servedServices);
  return [
    served(SecretsService, secretsRpc(deps.secrets)),
    served(AccessService, accessRpc(deps.access)),
    served(AuditService, auditRpc(deps.audit, deps.guard)),
    served(KeysService, keysRpc(deps.keys)),
    served(
      Health,
      healthService(
        deps.readiness,
        appServices.map((s) => s.typeName),
        deps.shutdown,
      ),
    ),
    served(ServerReflectionV1, reflectionV1(index)),
    served(ServerReflectionV1alpha, reflectionV1alpha(index)),
  ];
}

/** Registers every service on a router. */
export function routes(all: readonly ServedService[]): (router: ConnectRouter) => void {
  return (router) => {
    for (const s of all) s.register(router);
  };
}
