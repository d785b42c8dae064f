/**
 * A caller's limits for the work done on its behalf: a deadline, cancellation, or both. The edge
 * makes them from the request (gRPC's grpc-timeout, Connect's timeout header) and the use cases
 * hand them to every store call, which ends at the bound or at the database timeout, whichever
 * comes first (src/store/deadline.ts).
 */

/** The caller's limits for a store call: a deadline, cancellation, or both. */
export class CallBounds {
  /**
   * @param deadline Date.now() time after which the caller no longer wants the answer.
   * @param signal aborted when the caller goes away (its reason is the error the call fails with).
   */
  constructor(
    readonly deadline?: number,
    readonly signal?: AbortSignal,
  ) {}

  /**
   * Bounds from a Connect HandlerContext (or anything shaped like one). Only the deadline is
   * taken: reading `signal` makes the lean gRPC path create an AbortController per call, which
   * its profile showed to cost; pass `new CallBounds(deadline, ctx.signal)` where
   * cancellation matters more than that.
   */
  static fromContext(ctx: { timeoutMs(): number | undefined }): CallBounds | undefined {
    const left = ctx.timeoutMs();
    return left === undefined ? undefined : new CallBounds(Date.now() + left);
  }
}

/** The bounds of work for a caller that may carry a deadline (Date.now() time). */
export function boundsOf(caller: {
  readonly deadline?: number | undefined;
}): CallBounds | undefined {
  return caller.deadline === undefined ? undefined : new CallBounds(caller.deadline);
}
