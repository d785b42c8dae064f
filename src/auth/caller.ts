/**
 * Who is calling and from where: what every use case receives from the edge (RPC interceptor or
 * REST route) once authentication has succeeded.
 */
import type { AuthenticatedPrincipal } from "./principal.js";

/** Where a request came from, known before authentication. */
export interface RequestMeta {
  readonly requestId: string;
  readonly remoteAddress: string;
}

/** An authenticated request. */
export interface Caller extends RequestMeta {
  readonly principal: AuthenticatedPrincipal;
}
