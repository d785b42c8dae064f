/**
 * Cross-cutting RPC behaviour, built in one place, outermost first:
 *
 * 1. errors: DomainErrors become their Connect code through one table; anything else is logged
 *    with its cause and answered as a bare "internal error", so no stack, driver message or value
 *    reaches a client.
 * 2. authentication: every service but health and reflection needs `authorization: Bearer`;
 *    repeated failures from one address are slowed and then refused (ResourceExhausted).
 *    Authentication is decided here, before any handler can look at a resource, so a caller
 *    without rights learns nothing about which secrets exist.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type Authenticator, credentialFrom } from "../auth/authenticate.js";
import type { FailureLimiter } from "../auth/rate-limit.js";
import type { Logger } from "../log.js";
import { DomainError } from "../service/errors.js";
import type { Guard } from "../service/guard.js";
import { kCaller, kRequestMeta } from "./context.js";
import { toConnectError } from "./errors.js";

export interface InterceptorDeps {
  readonly logger: Logger;
  readonly authenticator: Authenticator;
  readonly limiter: FailureLimiter;
  readonly guard: Guard;
  /** Services callable without credentials. */
  readonly publicServices: ReadonlySet<string>;
}

/** The interceptors every RPC passes through, outermost first. */
export function interceptors(deps: InterceptorDeps): Interceptor[] {
  return [errors(deps.logger), authentication(deps)];
}

function errors(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
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
    const meta = req.contextValues.get(kRequestMeta);
    const retryAfter = deps.limiter.retryAfterSeconds(meta.remoteAddress);
    if (retryAfter > 0) {
      throw new DomainError("resource_exhausted", "too many failed authentication attempts", {
        retryAfterSeconds: retryAfter,
      });
    }
    const action = `rpc:${req.service.typeName}/${req.method.name}`;
    try {
      const token = credentialFrom(req.header.get("authorization") ?? undefined, ["Bearer"]);
      const principal = await deps.authenticator.authenticate(token);
      req.contextValues.set(kCaller, { ...meta, principal });
    } catch (err) {
      if (!(err instanceof DomainError) || err.code !== "unauthenticated") throw err;
      await deps.guard.record(meta, action, "", "", "unauthenticated", err.message);
      if (err.details.credentials === "invalid") {
        const delay = deps.limiter.recordFailure(meta.remoteAddress);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      throw err;
    }
    return next(req);
  };
}
