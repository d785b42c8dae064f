/**
 * Cross-cutting RPC behaviour, built in one place, outermost first. The same chain runs on
 * connect's handlers and on the lean unary gRPC path (grpc-fast.ts):
 *
 * 1. outcomes: the call's Connect code is noted on its request record, for the request log and
 *    the metrics (gRPC answers HTTP 200 whatever the outcome).
 * 2. errors: DomainErrors become their Connect code through one table; anything else is logged
 *    with its cause and answered as a bare "internal error", so no stack, driver message or value
 *    reaches a client.
 * 3. authentication: every service but health and reflection needs `authorization: Bearer`;
 *    repeated failures from one address are slowed and then refused (ResourceExhausted).
 *    Authentication is decided here, before any handler can look at a resource, so a caller
 *    without rights learns nothing about which secrets exist.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { authenticateRequest, type GateDeps } from "../auth/gate.js";
import { DomainError, MalformedRecordError } from "../domain/errors.js";
import type { Logger } from "../log.js";
import { kCaller, kRequest } from "./context.js";
import { toConnectError } from "./errors.js";

export interface InterceptorDeps extends GateDeps {
  readonly logger: Logger;
  /** Services callable without credentials. */
  readonly publicServices: ReadonlySet<string>;
}

/** The interceptors every RPC passes through, outermost first. */
export function interceptors(deps: InterceptorDeps): Interceptor[] {
  return [outcomes(), errors(deps.logger), authentication(deps)];
}

/** Notes each RPC's Connect code on its request record. */
function outcomes(): Interceptor {
  return (next) => async (req) => {
    const request = req.contextValues.get(kRequest);
    try {
      const res = await next(req);
      request.outcome = "ok";
      return res;
    } catch (err) {
      request.outcome = Code[ConnectError.from(err).code] ?? "unknown";
      throw err;
    }
  };
}

function errors(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (err instanceof MalformedRecordError) {
        logger.error({ procedure: req.method.name, problem: err.problem }, err.message);
      }
      if (err instanceof DomainError) throw toConnectError(err);
      if (err instanceof ConnectError) throw err;
      logger.error(
        { err, procedure: req.method.name, service: req.service.typeName },
        "unexpected error in RPC",
      );
      throw new ConnectError("internal error", Code.Internal);
    }
  };
}

function authentication(deps: InterceptorDeps): Interceptor {
  return (next) => async (req) => {
    if (deps.publicServices.has(req.service.typeName)) return next(req);
    const caller = await authenticateRequest(
      deps,
      req.contextValues.get(kRequest),
      req.header.get("authorization") ?? undefined,
      ["Bearer"],
      `rpc:${req.service.typeName}/${req.method.name}`,
    );
    req.contextValues.set(kCaller, caller);
    return next(req);
  };
}
