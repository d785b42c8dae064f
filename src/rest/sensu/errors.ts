/**
 * The one table from domain errors to Sensu's error responses: `{"message","code"}` with Sensu's
 * codes (0 internal, 1 invalid argument, 2 not found, 3 already exists, 4 permission denied,
 * 5 unauthenticated). Anything that is not a DomainError or a BodyError is a fault: its cause is
 * logged and the client reads "internal error".
 */

import { DomainError, type ErrorCode } from "../../domain/errors.js";
import type { NodeResponse, RequestMeta } from "../../domain/request.js";
import type { Logger } from "../../log.js";
import { BodyError, sendJson } from "../common.js";

const table: Record<ErrorCode, { readonly status: number; readonly code: number }> = {
  invalid_argument: { status: 400, code: 1 },
  failed_precondition: { status: 400, code: 1 },
  not_found: { status: 404, code: 2 },
  already_exists: { status: 409, code: 3 },
  // A lost compare-and-set: Sensu answers its store's conflicts as 409 "already exists".
  conflict: { status: 409, code: 3 },
  permission_denied: { status: 403, code: 4 },
  unauthenticated: { status: 401, code: 5 },
  // Sensu has no code for a refused address; it is an authentication refusal.
  resource_exhausted: { status: 429, code: 5 },
  unavailable: { status: 503, code: 0 },
  data_loss: { status: 500, code: 0 },
};

/** Sensu's fixed wording where it has one; the domain's (safe) message otherwise. */
function messageOf(err: DomainError): string {
  switch (err.code) {
    case "not_found":
      return "not found";
    case "permission_denied":
      return "unauthorized to perform action";
    case "unauthenticated":
      return err.details.credentials === "invalid" ? "invalid credentials" : "bad credentials";
    default:
      return err.message;
  }
}

/** Sends the Sensu error response for any error thrown while serving a request. */
export function sendError(
  res: NodeResponse,
  err: unknown,
  logger: Logger,
  meta: RequestMeta,
  route: string,
): void {
  if (err instanceof DomainError) {
    const { status, code } = table[err.code];
    const headers: Record<string, string> =
      err.details.retryAfterSeconds === undefined
        ? {}
        : { "retry-after": String(err.details.retryAfterSeconds) };
    sendJson(res, status, { message: messageOf(err), code }, headers);
    return;
  }
  if (err instanceof BodyError) {
    sendJson(res, err.kind === "too_large" ? 413 : 400, { message: err.message, code: 1 });
    return;
  }
  logger.error({ err, requestId: meta.requestId, route }, "sensu route failed");
  sendJson(res, 500, { message: "internal error", code: 0 });
}
