/**
 * The request handler for the one port: plain HTTP probes and /metrics, the REST dialects by
 * path prefix, everything else to Connect. /healthz answers while the process runs; /readyz only
 * while the database answers, so that a load balancer stops sending traffic to a replica that
 * cannot serve it. Every request gets an x-request-id (the client's, when sane), one log line
 * and its metrics when it ends.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Authenticator } from "../auth/authenticate.js";
import type { CallLimiter } from "../auth/call-limit.js";
import type { FailureAudit } from "../auth/failure-audit.js";
import type { FailureLimiter } from "../auth/rate-limit.js";
import { decodeJsonForParser } from "../domain/json-text.js";
import {
  type NodeRequest,
  type NodeResponse,
  newRequestRecord,
  type RequestRecord,
  type RouteHandler,
} from "../domain/request.js";
import type { Logger } from "../log.js";
import { grafanaRoutes, grafanaServes } from "../rest/grafana/routes.js";
import { openapiDialectOf, openapiDocument } from "../rest/openapi.js";
import { restRouteTemplate } from "../rest/route-label.js";
import { sensuRoutes, sensuServes } from "../rest/sensu/routes.js";
import type { ProviderUseCases } from "../service/providers.js";
import { contextValuesOf } from "./context.js";
import { answerDecodeFailuresAsInvalid } from "./decode-errors.js";
import { createGrpcFastPath, type StreamHandler } from "./grpc-fast.js";
import { interceptors } from "./interceptors.js";
import type { RequestHandler } from "./listener.js";
import type { Metrics } from "./metrics.js";
import type { Readiness } from "./readiness.js";
import { publicServices, type RouteDeps, routes, servedServices, services } from "./routes.js";

type Res = ServerResponse | Http2ServerResponse;

export interface HandlerDeps extends RouteDeps {
  readonly logger: Logger;
  readonly readiness: Readiness;
  readonly authenticator: Authenticator;
  readonly limiter: FailureLimiter;
  readonly anonymous: FailureLimiter;
  readonly failureAudit: FailureAudit;
  /** Calls in flight per principal and address: admitted by the gate, released here. */
  readonly calls: CallLimiter;
  readonly providers: ProviderUseCases;
  readonly metrics: Metrics;
}

/**
 * connect decodes JSON messages with a lenient TextDecoder, which turns invalid UTF-8 into U+FFFD,
 * so a stored value would differ from the one sent. This decoder refuses it, and lone surrogate
 * escapes; connect answers the error invalid_argument, its message naming the field. connect-node's
 * option type leaves `textDecoder` out, but its handlers hand jsonOptions to connect's
 * createJsonSerialization, which reads it (@connectrpc/connect 2.1, protocol/serialization.js);
 * test/rest/not-text.test.ts fails if that ever stops.
 */
const strictJsonText = {
  textDecoder: { decode: (input?: Uint8Array) => decodeJsonForParser(input ?? new Uint8Array()) },
} as NonNullable<Parameters<typeof connectNodeAdapter>[0]["jsonOptions"]>;

/** Largest request message accepted by the RPC protocols. */
export const maxRequestBytes = 4 * 1024 * 1024;

/** What the one port runs: the request handler, and the lean gRPC path for HTTP/2 streams. */
export interface Handlers {
  readonly handler: RequestHandler;
  /** Takes the unary gRPC calls it can answer without Node's compatibility layer. */
  readonly stream: StreamHandler;
}

/** Builds the request handler for the one port. */
export function createHandler(deps: HandlerDeps): Handlers {
  const served = services(deps);
  const chain = interceptors({ ...deps, publicServices });
  // connect-node's default, stated so that the lean gRPC path negotiates the same.
  const acceptCompression = [compressionGzip, compressionBrotli];
  // connect-node asks for a request's context values with only the Node request in hand; this
  // map (of this handler, not of the module) hands it the record the handler made for it.
  const records = new WeakMap<NodeRequest, RequestRecord>();
  const connect = connectNodeAdapter({
    routes: (router) => {
      routes(served)(router);
      answerDecodeFailuresAsInvalid(router);
    },
    interceptors: chain,
    contextValues: (req) => {
      const request = records.get(req);
      if (!request) throw new Error("a request reached connect without a request record");
      return contextValuesOf(request);
    },
    readMaxBytes: maxRequestBytes,
    shutdownSignal: deps.shutdown,
    acceptCompression,
    jsonOptions: strictJsonText,
  });
  const stream = createGrpcFastPath({
    services: served.map((s) => s.spec),
    interceptors: chain,
    readMaxBytes: maxRequestBytes,
    acceptCompression,
    shutdownSignal: deps.shutdown,
    newRequest: newRequestRecord,
    contextValues: contextValuesOf,
    finished: (request, route, status, started) => {
      deps.calls.release(request);
      logRequest(deps, { request, protocol: "grpc", method: "POST", route, status, started });
    },
  });
  // Kubernetes discovery first (/api, /api/v1/..., /apis/...), then Sensu's, which takes every
  // other path under /api/ and its public /health and /version.
  const dialects: [string, (path: string) => boolean, RouteHandler][] = [
    ["grafana", grafanaServes, grafanaRoutes(deps)],
    ["sensu", sensuServes, sensuRoutes(deps)],
  ];
  const rpcPaths = new Set(
    servedServices.flatMap((service) =>
      service.methods.map((m) => `/${service.typeName}/${m.name}`),
    ),
  );
  const handler = (req: NodeRequest, res: NodeResponse) => {
    const started = process.hrtime.bigint();
    const request = newRequestRecord(req.headers, req.socket?.remoteAddress ?? "");
    res.setHeader("x-request-id", request.requestId);
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    let protocol = "http";
    let route = "other";
    res.once("close", () => {
      // The call counted against its principal until its response is gone, read or not.
      deps.calls.release(request);
      logRequest(deps, {
        request,
        protocol,
        method: req.method,
        route,
        status: res.statusCode,
        started,
      });
    });
    if (path === "/healthz" || path === "/readyz" || path === "/metrics") route = path;
    if (path === "/healthz") return probe(req, res, async () => true);
    if (path === "/readyz") return probe(req, res, () => deps.readiness.check());
    if (path === "/metrics") {
      deps.metrics.registry.metrics().then(
        (text) => send(res, 200, text, { "content-type": deps.metrics.registry.contentType }),
        () => send(res, 500, "metrics unavailable\n"),
      );
      return;
    }
    const openapi = openapiDialectOf(path);
    if (openapi) {
      route = "/openapi";
      // Public like /healthz: the documents describe the API, they hold nothing of its data.
      if (req.method !== "GET" && req.method !== "HEAD") {
        send(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
        return;
      }
      send(res, 200, openapiDocument(openapi), { "content-type": "application/json" });
      return;
    }
    for (const [dialect, serves, routes] of dialects) {
      if (serves(path)) {
        protocol = dialect;
        route = `${methodLabel(req.method)} ${restRouteTemplate(path)}`;
        return routes(req, res, request);
      }
    }
    protocol = rpcProtocol(req.headers["content-type"]);
    // Only known procedures become label values: an arbitrary path must not grow the metrics.
    route = rpcPaths.has(path) ? path : "unknown";
    records.set(req, request);
    connect(req, res);
  };
  return { handler, stream };
}

/** One finished request, as its log line and metrics record it. */
interface FinishedRequest {
  readonly request: RequestRecord;
  readonly protocol: string;
  readonly method: string | undefined;
  readonly route: string;
  readonly status: number;
  /** process.hrtime.bigint() when the request arrived. */
  readonly started: bigint;
}

/** Writes a finished request's log line and metrics; both request paths end here. */
function logRequest(deps: Pick<HandlerDeps, "logger" | "metrics">, r: FinishedRequest): void {
  const seconds = Number(process.hrtime.bigint() - r.started) / 1e9;
  const outcome = r.request.outcome ?? String(r.status);
  const { protocol, route } = r;
  deps.metrics.requests.inc({ protocol, route, outcome });
  deps.metrics.requestSeconds.observe({ protocol, route, outcome }, seconds);
  const line = {
    requestId: r.request.requestId,
    remoteAddress: r.request.remoteAddress,
    principal: r.request.principal,
    protocol,
    method: r.method,
    route,
    status: r.status,
    outcome,
    durationMs: Math.round(seconds * 1e6) / 1000,
  };
  // Probes and scrapes come every few seconds; keep them out of the info log.
  if (protocol === "http") deps.logger.debug(line, "request");
  else deps.logger.info(line, "request");
}

const labelledMethods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** A method as a label value: HTTP/2 lets a client send any token, which must not grow metrics. */
function methodLabel(method: string | undefined): string {
  return method !== undefined && labelledMethods.has(method) ? method : "OTHER";
}

function rpcProtocol(contentType: string | undefined): string {
  if (contentType?.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
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
