/**
 * The authentication gate shared by every entry point (the RPC interceptor and both REST
 * dialects): refuse addresses that keep failing, read the credential in the schemes the entry
 * point accepts, resolve it, and on failure audit it and slow the answer down. The principal is
 * noted on the request's record, for its log line.
 */
import { createHash } from "node:crypto";
import { DomainError } from "../domain/errors.js";
import type { RequestRecord } from "../domain/request.js";
import { type Authenticator, credentialFrom, type Scheme } from "./authenticate.js";
import type { CallLimiter } from "./call-limit.js";
import type { Caller } from "./caller.js";
import type { FailureAudit } from "./failure-audit.js";
import type { FailureLimiter } from "./rate-limit.js";

export interface GateDeps {
  readonly authenticator: Authenticator;
  /** Failed authentications (and lookups in flight) per address. */
  readonly limiter: FailureLimiter;
  /** Requests with no usable credential per address. */
  readonly anonymous: FailureLimiter;
  /** Where failed authentications are audited, aggregated per address and window. */
  readonly failureAudit: FailureAudit;
  /** Bounds calls in flight per principal and address; the edge releases them. */
  readonly calls?: CallLimiter;
}

function refused(retryAfterSeconds: number, message: string): DomainError {
  return new DomainError("resource_exhausted", message, { retryAfterSeconds });
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
  const address = request.remoteAddress;
  const blocked = deps.limiter.retryAfterSeconds(address);
  if (blocked > 0) throw refused(blocked, "too many failed authentication attempts");
  let credential: string;
  try {
    credential = credentialFrom(authorization, schemes);
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    // A client that forgot the header is not guessing, but it is not free either: anonymous
    // requests are counted per address and refused above their own limit.
    const wait = deps.anonymous.retryAfterSeconds(address);
    if (wait > 0) throw refused(wait, "too many requests without credentials");
    deps.anonymous.recordFailure(address);
    await deps.failureAudit.record(request, action, err.message);
    throw err;
  }
  // Concurrent calls with one credential share one place; the digest keeps the credential
  // itself out of the limiter's memory.
  const attempt = deps.limiter.begin(
    address,
    createHash("sha256").update(credential).digest("hex"),
  );
  if ("retryAfterSeconds" in attempt)
    throw refused(attempt.retryAfterSeconds, "too many failed authentication attempts");
  let principal: Awaited<ReturnType<Authenticator["authenticate"]>>;
  try {
    principal = await deps.authenticator.authenticate(credential);
  } catch (err) {
    if (!(err instanceof DomainError) || err.code !== "unauthenticated") {
      attempt.abandoned();
      throw err;
    }
    const delay = attempt.failed();
    await deps.failureAudit.record(request, action, err.message);
    await new Promise((resolve) => setTimeout(resolve, delay));
    throw err;
  }
  attempt.succeeded();
  request.principal = principal.name;
  // Above the bounds on calls in flight, refused (resource_exhausted) before any use case runs.
  deps.calls?.admit(request, principal.name);
  return { requestId: request.requestId, remoteAddress: address, principal };
}
