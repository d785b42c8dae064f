/**
 * The RPC layer in memory: the real service implementations (`services()` of
 * src/server/routes.ts) behind the real interceptor chain (`interceptors()` of
 * src/server/interceptors.ts), served through connect's createRouterTransport over the use cases
 * of memory-seald.ts. No socket, no HTTP server, no database.
 *
 * connect's in-memory transport gives no hook for per-request context values (its handler client
 * passes none), so the one part of src/server/http.ts it needs is done by an outermost
 * interceptor: a fresh request record per call, as the adapter makes one per request, in the
 * context under the same key. The records are kept for tests to read what the request log would.
 */

import type { DescService } from "@bufbuild/protobuf";
import {
  type Client,
  createClient,
  createRouterTransport,
  type Interceptor,
} from "@connectrpc/connect";
import { newRequestRecord, type RequestRecord } from "../../src/domain/request.js";
import { createLogger } from "../../src/log.js";
import { kRequest } from "../../src/server/context.js";
import { interceptors } from "../../src/server/interceptors.js";
import { Readiness } from "../../src/server/readiness.js";
import { publicServices, routes, services } from "../../src/server/routes.js";
import type { MemorySeald } from "./memory-seald.js";

/** The address every in-memory request comes from. */
export const inMemoryAddress = "192.0.2.20";

export interface InMemoryRpc {
  /** A client of the service that sends `token` (none when undefined) as a Bearer credential. */
  client<S extends DescService>(service: S, token?: string): Client<S>;
  /** Every request's record, in the order the calls arrived. */
  readonly requests: readonly RequestRecord[];
  /** The server's log lines (level error and above), parsed. */
  readonly logs: readonly Record<string, unknown>[];
}

/** Serves seald's RPC services over the given use cases in memory. */
export function inMemoryRpc(seald: MemorySeald): InMemoryRpc {
  const requests: RequestRecord[] = [];
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("error", {
    write: (line: string) => {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const withRequestRecord: Interceptor = (next) => (req) => {
    const record = newRequestRecord(
      { "x-request-id": req.header.get("x-request-id") ?? undefined },
      inMemoryAddress,
    );
    requests.push(record);
    req.contextValues.set(kRequest, record);
    return next(req);
  };
  const served = services({
    readiness: new Readiness(async () => true),
    shutdown: new AbortController().signal,
    access: seald.access,
    secrets: seald.secrets,
    keys: seald.keys,
    audit: seald.audit,
    guard: seald.guard,
  });
  const chain = interceptors({
    logger,
    publicServices,
    authenticator: seald.authenticator,
    limiter: seald.limiter,
    anonymous: seald.anonymous,
    failureAudit: seald.failureAudit,
  });
  return {
    requests,
    logs,
    client(service, token) {
      // The credential as a client sends it: a header on every call, set client-side.
      const credential: Interceptor = (next) => (req) => {
        if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
      const transport = createRouterTransport(routes(served), {
        router: { interceptors: [withRequestRecord, ...chain] },
        transport: { interceptors: [credential] },
      });
      return createClient(service, transport);
    },
  };
}
