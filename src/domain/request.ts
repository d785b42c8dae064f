/**
 * One request as the edge sees it: where it came from, and what the layers learn about it while
 * it runs (who it authenticated as, how an RPC ended). The transport creates one RequestRecord per
 * request and hands the same object to the RPC context, the REST routes and the authentication
 * gate; the request log reads it when the request ends. Nothing is kept beside it in module state.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

export type NodeRequest = IncomingMessage | Http2ServerRequest;
export type NodeResponse = ServerResponse | Http2ServerResponse;

/** Where a request came from, known before authentication. */
export interface RequestMeta {
  readonly requestId: string;
  readonly remoteAddress: string;
}

/** A request's origin plus the facts its log line reports, filled in while it runs. */
export interface RequestRecord extends RequestMeta {
  /** The principal it authenticated as; set by the authentication gate. */
  principal: string | undefined;
  /** An RPC's Connect code (gRPC answers HTTP 200 even on errors); set by the RPC layer. */
  outcome: string | undefined;
}

/** Answers one HTTP request routed to it (a REST dialect's prefix), with the request's record. */
export type RouteHandler = (req: NodeRequest, res: NodeResponse, request: RequestRecord) => void;

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request id a client sent in x-request-id when it is sane, otherwise a fresh UUID. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value && requestIdPattern.test(value) ? value : randomUUID();
}

/** A fresh record for a request with these headers from this address. */
export function newRequestRecord(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  remoteAddress: string,
): RequestRecord {
  return {
    requestId: requestIdFrom(headers["x-request-id"]),
    remoteAddress,
    principal: undefined,
    outcome: undefined,
  };
}
