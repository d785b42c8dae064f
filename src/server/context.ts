/**
 * Context keys carried with each RPC: the request's origin (set by the adapter for every call)
 * and the authenticated caller (set by the authentication interceptor).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import type { Caller, RequestMeta } from "../auth/caller.js";

export const kRequestMeta = createContextKey<RequestMeta>({ requestId: "", remoteAddress: "" });
export const kCaller = createContextKey<Caller | undefined>(undefined);

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id a client sent in x-request-id when it is sane, otherwise a fresh UUID. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value && requestIdPattern.test(value) ? value : randomUUID();
}

const metas = new WeakMap<IncomingMessage | Http2ServerRequest, RequestMeta>();

/**
 * The request id and remote address of a request: one object per request, so that the request
 * log, the RPC context and the REST routes all see (and annotate) the same one.
 */
export function requestMeta(req: IncomingMessage | Http2ServerRequest): RequestMeta {
  let meta = metas.get(req);
  if (!meta) {
    meta = {
      requestId: requestIdFrom(req.headers["x-request-id"]),
      remoteAddress: req.socket?.remoteAddress ?? "",
    };
    metas.set(req, meta);
  }
  return meta;
}

/** Builds the per-request context values from the Node request. */
export function contextValuesFor(req: IncomingMessage | Http2ServerRequest): ContextValues {
  return contextValuesOf(requestMeta(req));
}

/** The per-request context values of a request whose RequestMeta is already known. */
export function contextValuesOf(meta: RequestMeta): ContextValues {
  const values = createContextValues();
  values.set(kRequestMeta, meta);
  return values;
}

/** The authenticated caller of a handler; the interceptor guarantees it for protected services. */
export function callerOf(values: ContextValues): Caller {
  const caller = values.get(kCaller);
  if (!caller) throw new Error("no authenticated caller in context: is the service protected?");
  return caller;
}
