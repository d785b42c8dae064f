/**
 * Every Connect service seald serves, registered in this one file.
 */
import type { ConnectRouter } from "@connectrpc/connect";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { SecretsService } from "../../gen/secrets/v1/secrets_service_pb.js";
import { healthService } from "./health.js";
import type { Readiness } from "./readiness.js";
import { ReflectionIndex, reflectionV1, reflectionV1alpha } from "./reflection.js";
import { secretsRpc } from "./secrets-rpc.js";

export interface RouteDeps {
  readonly readiness: Readiness;
  /** Aborted when the server begins shutting down; ends long-lived streams. */
  readonly shutdown: AbortSignal;
}

/** The application services: what health reports on and reflection describes. */
export const appServices = [SecretsService] as const;

/** Registers every service on a router. */
export function routes(deps: RouteDeps): (router: ConnectRouter) => void {
  const reflected = [...appServices, Health, ServerReflectionV1, ServerReflectionV1alpha];
  const index = new ReflectionIndex(reflected);
  return (router) => {
    router.service(SecretsService, secretsRpc());
    router.service(
      Health,
      healthService(
        deps.readiness,
        appServices.map((s) => s.typeName),
        deps.shutdown,
      ),
    );
    router.service(ServerReflectionV1, reflectionV1(index));
    router.service(ServerReflectionV1alpha, reflectionV1alpha(index));
  };
}
