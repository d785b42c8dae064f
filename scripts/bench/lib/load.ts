/**
 * The load generator: a closed loop of `concurrency` workers, each calling, awaiting and calling
 * again until the duration is over; calls still in flight then finish and count. Throughput is
 * successful calls over the time until the last one finished, so a slow tail is not hidden.
 */
import { performance } from "node:perf_hooks";

/** One unit of work; rejects (or throws) on failure. */
export type Call = () => Promise<void>;

export interface LoadResult {
  readonly concurrency: number;
  readonly calls: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  /** From the first call to the end of the last one. */
  readonly seconds: number;
  readonly throughput: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
}

/**
 * Runs `call` from `concurrency` workers for `durationMs`, then waits for the stragglers. With
 * `minCalls`, calls keep starting after the duration until that many have started, for at most
 * `maxMs` in all (slow calls would otherwise leave a cell with one or two samples).
 */
export async function drive(
  call: Call,
  concurrency: number,
  durationMs: number,
  options: { minCalls?: number; maxMs?: number } = {},
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let issued = 0;
  const started = performance.now();
  const stopAt = started + durationMs;
  const hardStop = started + Math.max(durationMs, options.maxMs ?? 0);
  const minCalls = options.minCalls ?? 0;
  const more = () => {
    const now = performance.now();
    return now < stopAt || (issued < minCalls && now < hardStop);
  };
  const worker = async () => {
    while (more()) {
      issued++;
      const t0 = performance.now();
      try {
        await call();
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        firstError ??= describe(err);
        // A failing target answers at once; do not spin the CPU the other cells need.
        if (errors > 50) await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  return summarise(concurrency, latencies, errors, firstError, seconds);
}

function summarise(
  concurrency: number,
  latencies: number[],
  errors: number,
  firstError: string | undefined,
  seconds: number,
): LoadResult {
  const sorted = Float64Array.from(latencies).sort();
  const at = (q: number) =>
    sorted.length === 0
      ? Number.NaN
      : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    concurrency,
    calls: sorted.length,
    errors,
    firstError,
    seconds,
    throughput: sorted.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    meanMs: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    maxMs: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] ?? Number.NaN),
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 300);
  return String(err).slice(0, 300);
}

/**
 * Picks secrets by number from a seeded sequence that restarts with every cell, so that a seald
 * cell and its floor read the same records in the same order: on FerretDB a lookup costs a scan
 * up to the record, and cells of a few slow calls would otherwise compare luck.
 */
export class Picker {
  private state = 0;

  constructor(
    private readonly size: number,
    private readonly seed = 0x5eed,
  ) {
    this.reset();
  }

  reset(): void {
    this.state = this.seed;
  }

  /** The next number in [0, size) (mulberry32). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * this.size);
  }

  /** `count` distinct numbers in [0, size). */
  distinct(count: number): number[] {
    const picked = new Set<number>();
    while (picked.size < Math.min(count, this.size)) picked.add(this.next());
    return [...picked];
  }
}

/** A uniformly random integer in [0, n). */
export function randomBelow(n: number): number {
  return Math.floor(Math.random() * n);
}
