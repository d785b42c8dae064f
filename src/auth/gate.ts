/**
 * The authentication gate shared by every entry point (the RPC interceptor and both REST
 * dialects): refuse addresses that keep failing, read the credential in the schemes the entry
 * point accepts, resolve it, and on failure audit it and slow the answer down.
 */
import { notePrincipal } from "../observe.js";
import { DomainError } from "../service/errors.js";
import type { Guard } from "../service/guard.js";
import { type Authenticator, credentialFrom, type Scheme } from "./authenticate.js";
import type { CallLimiter } from "./call-limit.js";
import type { Caller, RequestMeta } from "./caller.js";
import type { FailureLimiter } from "./rate-limit.js";

export interface GateDeps {
  readonly authenticator: Authenticator;
  readonly limiter: FailureLimiter;
  readonly guard: Guard;
  /** Bounds calls in flight per principal and address; the edge releases them. */
  readonly calls?: CallLimiter;
}

/**
 * Authenticates a request; throws DomainError "resource_exhausted" for a refused address and
 * "unauthenticated" (credentials "missing" or "invalid") otherwise. `action` names what was
 * attempted, for the audit record of a failure.
 */
export async function authenticateRequest(
  deps: GateDeps,
  meta: RequestMeta,
  authorization: string | undefined,
  schemes: readonly Scheme[],
  action: string,
): Promise<Caller> {
  const retryAfter = deps.limiter.retryAfterSeconds(meta.remoteAddress);
  if (retryAfter > 0) {
    throw new DomainError("resource_exhausted", "too many failed authentication attempts", {
      retryAfterSeconds: retryAfter,
    });
  }
  try {
    const principal = await deps.authenticator.authenticate(credentialFrom(authorization, schemes));
    notePrincipal(meta, principal.name);
    deps.calls?.admit(meta, principal.name);
    return { ...meta, principal };
  } catch (err) {
    if (!(err instanceof DomainError) || err.code !== "unauthenticated") throw err;
    await deps.guard.record(meta, action, "", "", "unauthenticated", err.message);
    // Only wrong credentials count towards a refusal: a client that forgot the header is not
    // guessing.
    if (err.details.credentials === "invalid") {
      const delay = deps.limiter.recordFailure(meta.remoteAddress);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    throw err;
  }
}
