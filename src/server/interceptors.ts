/**
 * Cross-cutting RPC behaviour, built in one place and in a deliberate order. Today: errors that
 * are not ConnectErrors are logged with their cause and answered as a bare "internal error", so
 * no stack, driver message or value reaches a client.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../log.js";

/** The interceptors every RPC passes through, outermost first. */
export function interceptors(logger: Logger): Interceptor[] {
  return [internalErrors(logger)];
}

function internalErrors(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      logger.error({ err, procedure: req.url }, "unexpected error in RPC");
      throw new ConnectError("internal error", Code.Internal);
    }
  };
}
