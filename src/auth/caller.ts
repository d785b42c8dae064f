/**
 * Who is calling and from where: what every use case receives from the edge (RPC interceptor or
 * REST route) once authentication has succeeded.
 */
import type { RequestMeta } from "../domain/request.js";
import type { AuthenticatedPrincipal } from "./principal.js";

/** An authenticated request. */
export interface Caller extends RequestMeta {
  readonly principal: AuthenticatedPrincipal;
  /** When the caller stops waiting (Date.now() time), if it said: store calls end by then. */
  readonly deadline?: number;
}
