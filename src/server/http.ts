/**
 * The request handler for the one port: plain HTTP probes first, everything else to Connect.
 * /healthz answers while the process runs; /readyz only while the database answers, so that a
 * load balancer stops sending traffic to a replica that cannot serve it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Authenticator } from "../auth/authenticate.js";
import type { FailureLimiter } from "../auth/rate-limit.js";
import type { Logger } from "../log.js";
import { contextValuesFor } from "./context.js";
import { interceptors } from "./interceptors.js";
import type { RequestHandler } from "./listener.js";
import type { Readiness } from "./readiness.js";
import { publicServices, type RouteDeps, routes } from "./routes.js";

type Res = ServerResponse | Http2ServerResponse;

export interface HandlerDeps extends RouteDeps {
  readonly logger: Logger;
  readonly readiness: Readiness;
  readonly authenticator: Authenticator;
  readonly limiter: FailureLimiter;
}

/** Largest request message accepted by the RPC protocols. */
export const maxRequestBytes = 4 * 1024 * 1024;

/** Builds the request handler for the one port. */
export function createHandler(deps: HandlerDeps): RequestHandler {
  const connect = connectNodeAdapter({
    routes: routes(deps),
    interceptors: interceptors({ ...deps, publicServices }),
    contextValues: contextValuesFor,
    readMaxBytes: maxRequestBytes,
    shutdownSignal: deps.shutdown,
  });
  return (req: IncomingMessage | Http2ServerRequest, res: Res) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path === "/healthz") return probe(req, res, async () => true);
    if (path === "/readyz") return probe(req, res, () => deps.readiness.check());
    connect(req, res);
  };
}

function probe(
  req: IncomingMessage | Http2ServerRequest,
  res: Res,
  ok: () => Promise<boolean>,
): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
    return;
  }
  ok().then(
    (ready) => send(res, ready ? 200 : 503, ready ? "ok\n" : "database unavailable\n"),
    () => send(res, 503, "database unavailable\n"),
  );
}

function send(res: Res, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-store",
    ...headers,
  });
  res.end(body);
}
