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

/** The authenticated caller of a handler; the interceptor guarantees it for protected services. */
export function callerOf(values: ContextValues): Caller {
  const caller = values.get(kCaller);
  if (!caller) throw new Error("no authenticated caller in context: is the service protected?");
  return caller;
}
