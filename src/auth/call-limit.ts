/**
 * Calls in flight per principal and per remote address. The gate admits a call once it knows
 * the principal, and the edge releases it when the call's stream or response closes: a call
 * whose response the client never reads stays counted, so a token holder that opens streams and
 * never reads is bounded to its own share and cannot starve other callers. Above a bound the
 * call is refused with "resource_exhausted" (ResourceExhausted / HTTP 429 with Retry-After).
 * Counters are per replica and in memory, like the failure limiter's.
 */
import { DomainError } from "../domain/errors.js";
import type { RequestMeta } from "../domain/request.js";

export interface CallLimiterOptions {
  readonly maxPerPrincipal: number;
  readonly maxPerAddress: number;
}

/** Counts admitted calls per principal and per address; refuses above the bounds. */
export class CallLimiter {
  private readonly byPrincipal = new Map<string, number>();
  private readonly byAddress = new Map<string, number>();
  // The keys a call was counted under, until the edge releases it. A WeakMap, so that a call
  // the edge never releases (which would be a bug) cannot also leak its meta.
  private readonly held = new WeakMap<RequestMeta, { principal: string; address: string }>();
  /** Calls the edge has released: admitted later (a slow authentication), they are not counted. */
  private readonly released = new WeakSet<RequestMeta>();

  constructor(private readonly options: CallLimiterOptions) {}

  /**
   * Counts the call under its principal and address, or throws "resource_exhausted" when
   * either already has its bound in flight. Admitting the same call twice counts it once.
   */
  admit(meta: RequestMeta, principal: string): void {
    // A call whose response closed while it was being authenticated (the client went away) is
    // never counted: nothing would release it.
    if (this.held.has(meta) || this.released.has(meta)) return;
    const address = meta.remoteAddress;
    const p = this.byPrincipal.get(principal) ?? 0;
    const a = this.byAddress.get(address) ?? 0;
    if (p >= this.options.maxPerPrincipal || a >= this.options.maxPerAddress) {
      // Calls end within milliseconds normally; one second is a fair first backoff.
      throw new DomainError(
        "resource_exhausted",
        p >= this.options.maxPerPrincipal
          ? "too many calls in flight for this principal"
          : "too many calls in flight from this address",
        { retryAfterSeconds: 1 },
      );
    }
    this.byPrincipal.set(principal, p + 1);
    this.byAddress.set(address, a + 1);
    this.held.set(meta, { principal, address });
  }

  /** Releases the call's counts, if it was admitted; later calls for the same meta do nothing. */
  release(meta: RequestMeta): void {
    this.released.add(meta);
    const keys = this.held.get(meta);
    if (!keys) return;
    this.held.delete(meta);
    decrement(this.byPrincipal, keys.principal);
    decrement(this.byAddress, keys.address);
  }

  /** Calls in flight for a principal (tests and metrics). */
  inFlight(principal: string): number {
    return this.byPrincipal.get(principal) ?? 0;
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1;
  // Forget keys at zero, so the maps hold only callers with calls in flight.
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
