/**
 * The authentication gate shared by every entry point (the RPC interceptor and both REST
 * dialects): refuse addresses that keep failing, read the credential in the schemes the entry
 * point accepts, resolve it, and on failure audit it and slow the answer down. The principal is
 * noted on the request's record, for its log line.
 */
import { DomainError } from "../domain/errors.js";
import type { RequestRecord } from "../domain/request.js";
import { type Authenticator, credentialFrom, type Scheme } from "./authenticate.js";
import type { Caller } from "./caller.js";
import type { Guard } from "./guard.js";
import type { FailureLimiter } from "./rate-limit.js";

export interface GateDeps {
  readonly authenticator: Authenticator;
  readonly limiter: FailureLimiter;
  readonly guard: Guard;
}

/**
 * Authenticates a request; throws DomainError "resource_exhausted" for a refused address and
 * "unauthenticated" (credentials "missing" or "invalid") otherwise. `action` names what was
 * attempted, for the audit record of a failure.
 */
export async function authenticateRequest(
  deps: GateDeps,
  request: RequestRecord,
  authorization: string | undefined,
  schemes: readonly Scheme[],
  action: string,
): Promise<Caller> {
  const retryAfter = deps.limiter.retryAfterSeconds(request.remoteAddress);
  if (retryAfter > 0) {
    throw new DomainError("resource_exhausted", "too many failed authentication attempts", {
      retryAfterSeconds: retryAfter,
    });
  }
  try {
    const principal = await deps.authenticator.authenticate(credentialFrom(authorization, schemes));
    request.principal = principal.name;
    return { requestId: request.requestId, remoteAddress: request.remoteAddress, principal };
  } catch (err) {
    if (!(err instanceof DomainError) || err.code !== "unauthenticated") throw err;
    await deps.guard.recordAnonymous(request, action, "unauthenticated", err.message);
    // Only wrong credentials count towards a refusal: a client that forgot the header is not
    // guessing.
    if (err.details.credentials === "invalid") {
      const delay = deps.limiter.recordFailure(request.remoteAddress);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    throw err;
  }
}
