/**
 * grpc.health.v1.Health: SERVING only while the database answers. The empty service name and
 * every service seald registers are known; any other name is NotFound on Check and
 * SERVICE_UNKNOWN on Watch, as the health protocol specifies.
 */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { Readiness } from "./readiness.js";

/** Builds the Health implementation for the given readiness and service names. */
export function healthService(
  readiness: Readiness,
  services: readonly string[],
  shutdown: AbortSignal,
): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services]);
  const status = (ready: boolean) => (ready ? Status.SERVING : Status.NOT_SERVING);
  return {
    async check(req) {
      if (!known.has(req.service)) {
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return { status: status(await readiness.check()) };
    },
    async *watch(req, ctx) {
      // The stream ends when the client goes away or the server shuts down.
      const signal = AbortSignal.any([ctx.signal, shutdown]);
      if (!known.has(req.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
        return;
      }
      await readiness.check();
      for await (const ready of readiness.watch(signal)) {
        yield { status: status(ready) };
      }
    },
  };
}
