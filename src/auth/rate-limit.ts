/**
 * Brute-force protection: failed authentications are counted per remote address over a sliding
 * window. Each failure is answered a little later than the one before, and once an address
 * reaches the limit every request from it that needs authentication is refused until the window
 * has passed, with a good token too, so the refusal gives no oracle. Other addresses are not
 * affected. The counters are per replica and in memory, which bounds an attacker to the limit
 * times the number of replicas per window.
 *
 * Lookups still in flight count against the limit as if they had failed, so a burst of wrong
 * tokens sent at once is cut at the limit instead of all being tried: an address may have at most
 * `maxFailures` minus its recent failures distinct credentials being looked up at a time. The
 * same credential sent on many concurrent calls is one lookup (a client's first burst with a good
 * token is not refused).
 */

export interface FailureLimiterOptions {
  readonly maxFailures: number;
  readonly windowMs: number;
  /** Extra delay per recorded failure, capped at maxDelayMs. */
  readonly delayStepMs?: number;
  readonly maxDelayMs?: number;
  readonly now?: () => number;
}

/** One admitted lookup; end it exactly once. */
export interface Attempt {
  /** The credential was good: the attempt stops counting. */
  succeeded(): void;
  /** The credential was bad: recorded as a failure; returns how long to wait before answering. */
  failed(): number;
  /** The lookup ended without a verdict (the database failed): the attempt stops counting. */
  abandoned(): void;
}

/** Most addresses remembered; past it the oldest are forgotten first. */
const maxAddresses = 100_000;

/** Counts authentication failures per address and decides when to slow down and refuse. */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
  /** Per address: the keys of credentials being looked up, and how many calls share each. */
  private readonly pending = new Map<string, Map<string, number>>();
  private readonly now: () => number;

  constructor(private readonly options: FailureLimiterOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Seconds until the address may try again, or 0 when it is not blocked. */
  retryAfterSeconds(address: string): number {
    const recent = this.recent(address);
    if (recent.length < this.options.maxFailures) return 0;
    const oldest = recent[recent.length - this.options.maxFailures] ?? this.now();
    return Math.max(1, Math.ceil((oldest + this.options.windowMs - this.now()) / 1000));
  }

  /**
   * Admits a lookup of the credential known by `key` (a digest, never the credential) from the
   * address, or answers how many seconds to wait when its recent failures and the lookups it has
   * in flight already reach the limit. Calls sharing a key share one place.
   */
  begin(address: string, key: string): Attempt | { readonly retryAfterSeconds: number } {
    const blocked = this.retryAfterSeconds(address);
    if (blocked > 0) return { retryAfterSeconds: blocked };
    const pending = this.pending.get(address) ?? new Map<string, number>();
    if (!pending.has(key) && this.recent(address).length + pending.size >= this.options.maxFailures)
      return { retryAfterSeconds: 1 };
    pending.set(key, (pending.get(key) ?? 0) + 1);
    this.pending.set(address, pending);
    let ended = false;
    const end = () => {
      if (ended) return false;
      ended = true;
      const left = (pending.get(key) ?? 1) - 1;
      if (left > 0) pending.set(key, left);
      else pending.delete(key);
      if (pending.size === 0 && this.pending.get(address) === pending) this.pending.delete(address);
      return true;
    };
    return {
      succeeded: () => void end(),
      abandoned: () => void end(),
      failed: () => (end() ? this.recordFailure(address) : 0),
    };
  }

  /** Records a failure (or, for the anonymous counter, a request) and returns the delay. */
  recordFailure(address: string): number {
    const recent = this.recent(address);
    recent.push(this.now());
    this.failures.delete(address);
    this.failures.set(address, recent);
    this.prune();
    return Math.min(
      (this.options.delayStepMs ?? 50) * recent.length,
      this.options.maxDelayMs ?? 1000,
    );
  }

  private recent(address: string): number[] {
    const since = this.now() - this.options.windowMs;
    return (this.failures.get(address) ?? []).filter((t) => t > since);
  }

  private prune(): void {
    // Bound memory under a spray of addresses: forget the oldest addresses first.
    while (this.failures.size > maxAddresses) {
      const first = this.failures.keys().next().value;
      if (first === undefined) break;
      this.failures.delete(first);
    }
  }
}
