/**
 * Audit records of failed authentications, aggregated so that no client can flood the trail: the
 * first failure of each kind from an address in a window is recorded as it happens (who tried
 * what, from where, why it failed), and the repeats of that kind within the window become one
 * more record with their count when the window closes. The trail keeps every distinct fact, and
 * an address costs at most two records per kind of failure per window, however fast it tries.
 * Counts not yet written are in memory and per replica; close() writes them out.
 */
import type { RequestMeta } from "../domain/request.js";
import type { Guard } from "./guard.js";

export interface FailureAuditOptions {
  readonly windowMs: number;
  /** Most (address, reason) pairs counted at once; past it the oldest are written out early. */
  readonly maxTracked?: number;
  readonly now?: () => number;
}

interface Tracked {
  readonly origin: RequestMeta;
  readonly reason: string;
  readonly since: number;
  repeats: number;
}

/** The action of an aggregate record: the repeats of one kind of failure from one address. */
export const repeatedFailuresAction = "auth:repeated-failures";

export class FailureAudit {
  private readonly tracked = new Map<string, Tracked>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly maxTracked: number;

  constructor(
    private readonly guard: Pick<Guard, "recordAnonymous">,
    private readonly options: FailureAuditOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.maxTracked = options.maxTracked ?? 10_000;
    this.timer = setInterval(() => void this.flush(false), Math.max(1000, options.windowMs / 4));
    this.timer.unref();
  }

  /**
   * Audits one failed authentication: recorded now when it is the first of its kind from the
   * address in the window (resolving once it is stored), counted otherwise.
   */
  async record(origin: RequestMeta, action: string, reason: string): Promise<void> {
    const key = `${origin.remoteAddress}\u0000${reason}`;
    const now = this.now();
    const seen = this.tracked.get(key);
    if (seen && now - seen.since < this.options.windowMs) {
      seen.repeats++;
      return;
    }
    if (seen) {
      this.tracked.delete(key);
      await this.writeRepeats(seen);
    }
    this.tracked.set(key, { origin, reason, since: now, repeats: 0 });
    while (this.tracked.size > this.maxTracked) {
      const [oldest, entry] = this.tracked.entries().next().value ?? [];
      if (oldest === undefined || entry === undefined) break;
      this.tracked.delete(oldest);
      await this.writeRepeats(entry);
    }
    await this.guard.recordAnonymous(origin, action, "unauthenticated", reason);
  }

  /** Writes out every count (all of them, or only those whose window has closed). */
  async flush(all = true): Promise<void> {
    const now = this.now();
    for (const [key, entry] of [...this.tracked]) {
      if (!all && now - entry.since < this.options.windowMs) continue;
      this.tracked.delete(key);
      await this.writeRepeats(entry).catch(() => {
        // The database is away; the count is lost rather than retried forever. Its first
        // failure is in the trail already.
      });
    }
  }

  /** Stops the timer and writes out what is counted. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush(true);
  }

  private async writeRepeats(entry: Tracked): Promise<void> {
    if (entry.repeats === 0) return;
    const seconds = Math.round(this.options.windowMs / 1000);
    await this.guard.recordAnonymous(
      entry.origin,
      repeatedFailuresAction,
      "unauthenticated",
      `${entry.repeats} more failed authentications (${entry.reason}) from this address within ${seconds} s of the first`,
    );
  }
}
