/**
 * Context keys carried with each RPC: the request's record (set by the adapter for every call)
 * and the authenticated caller (set by the authentication interceptor).
 */
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import type { Caller } from "../auth/caller.js";
import type { RequestRecord } from "../domain/request.js";

export const kRequest = createContextKey<RequestRecord>({
  requestId: "",
  remoteAddress: "",
  principal: undefined,
  outcome: undefined,
});
export const kCaller = createContextKey<Caller | undefined>(undefined);

/** The per-request context values of a request whose record is already made. */
export function contextValuesOf(request: RequestRecord): ContextValues {
  const values = createContextValues();
  values.set(kRequest, request);
  return values;
}

/**
 * The authenticated caller of a handler (the interceptor guarantees it for protected services),
 * with the deadline the client set (grpc-timeout, Connect's timeout), so that the use cases bound
 * their store calls by it. Only the deadline is read: the handler's signal would make the lean
 * gRPC path build an AbortController per call.
 */
export function callerOf(ctx: {
  readonly values: ContextValues;
  timeoutMs(): number | undefined;
}): Caller {
  const caller = ctx.values.get(kCaller);
  if (!caller) throw new Error("no authenticated caller in context: is the service protected?");
  const left = ctx.timeoutMs();
  return left === undefined ? caller : { ...caller, deadline: Date.now() + left };
}
