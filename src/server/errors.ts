/**
 * The one table from domain errors to Connect codes (which grpc-js and every gRPC client see as
 * the matching gRPC status).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { DomainError, type ErrorCode } from "../domain/errors.js";

const codes: Record<ErrorCode, Code> = {
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  // A stale resource_version: gRPC's convention for a lost compare-and-set.
  conflict: Code.Aborted,
  invalid_argument: Code.InvalidArgument,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  unavailable: Code.Unavailable,
  resource_exhausted: Code.ResourceExhausted,
  failed_precondition: Code.FailedPrecondition,
  data_loss: Code.DataLoss,
};

/** Converts a DomainError to the ConnectError a client receives. */
export function toConnectError(err: DomainError): ConnectError {
  const metadata = new Headers();
  if (err.details.retryAfterSeconds !== undefined) {
    metadata.set("retry-after", String(err.details.retryAfterSeconds));
  }
  return new ConnectError(err.message, codes[err.code], metadata);
}

export { DomainError };
