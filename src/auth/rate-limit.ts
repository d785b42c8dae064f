/**
 * Brute-force protection: failed authentications are counted per remote address over a sliding
 * window. Each failure is answered a little later than the one before, and once an address
 * reaches the limit every request from it that needs authentication is refused until the window
 * has passed, with a good token too, so the refusal gives no oracle. Other addresses are not
 * affected. The counters are per replica and in memory, which bounds an attacker to the limit
 * times the number of replicas per window.
 */

export interface FailureLimiterOptions {
  readonly maxFailures: number;
  readonly windowMs: number;
  /** Extra delay per recorded failure, capped at maxDelayMs. */
  readonly delayStepMs?: number;
  readonly maxDelayMs?: number;
  readonly now?: () => number;
}

/** Counts authentication failures per address and decides when to slow down and refuse. */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
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

  /** Records a failure and returns how long to wait before answering it. */
  recordFailure(address: string): number {
    const recent = this.recent(address);
    recent.push(this.now());
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
    while (this.failures.size > 100_000) {
      const first = this.failures.keys().next().value;
      if (first === undefined) break;
      this.failures.delete(first);
    }
  }
}
