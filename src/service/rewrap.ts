/**
 * Master-key rotation: the re-wrap job moves every stored data key (and every namespace private
 * key) to the active master key without re-encrypting any value.
 *
 * One replica runs it at a time, holding a lease: leases are numbered generations, and a
 * generation is claimed by inserting its lease record, which only one replica can do (inserts on
 * a unique key are atomic on MongoDB and on FerretDB, where conditional updates are not). The
 * holder renews its lease while it works; when a lease lapses (the holder died), any replica may
 * claim the next generation and resume from the recorded position. The job is idempotent (a
 * record already under the target key is left alone) and throttled (a pause after every batch).
 */
import { randomUUID } from "node:crypto";
import type { KeyRing } from "../crypto/keyring.js";

export const rewrapPhases = ["secrets", "versions", "namespace_keys"] as const;
export type RewrapPhase = (typeof rewrapPhases)[number];

/** The job's recorded state. */
export interface RewrapJobState {
  readonly state: "idle" | "running" | "done" | "failed";
  readonly targetKeyId: string;
  readonly processed: number;
  readonly rewrapped: number;
  readonly total: number;
  readonly startTime: Date | undefined;
  readonly updateTime: Date | undefined;
  readonly holder: string;
  readonly error: string;
  /** The lease generation of the holder. */
  readonly generation: number;
  readonly phase: RewrapPhase;
  /** The last record id examined in the phase. */
  readonly after: string;
}

/** Per master key: how many stored records still depend on it. */
export interface KeyUsageCounts {
  values: number;
  history: number;
  namespaceKeys: number;
  tokens: number;
}

export interface RewrapStore {
  getJob(): Promise<RewrapJobState | undefined>;
  saveJob(job: RewrapJobState): Promise<void>;
  /** Inserts the lease of a generation; false when another replica holds it already. */
  claimLease(generation: number, holder: string, until: Date): Promise<boolean>;
  renewLease(generation: number, until: Date): Promise<void>;
  getLease(generation: number): Promise<{ holder: string; until: Date } | undefined>;
  usage(): Promise<Map<string, KeyUsageCounts>>;
  /** Ids of the next records of a phase, in id order after `after`. */
  batch(phase: RewrapPhase, after: string, limit: number): Promise<string[]>;
  /** Re-wraps one record under the ring's active key; false when it already was (or is gone). */
  rewrap(phase: RewrapPhase, id: string, ring: KeyRing): Promise<boolean>;
}

export interface RewrapOptions {
  readonly leaseMs?: number;
  readonly batchSize?: number;
  /** Pause after each batch, so the job never crowds out live traffic. */
  readonly pauseMs?: number;
  /** How often each replica checks for a job whose holder died. */
  readonly checkEveryMs?: number;
  readonly onProgress?: (job: RewrapJobState, remaining: number) => void;
  readonly onError?: (err: unknown) => void;
}

const idle: RewrapJobState = {
  state: "idle",
  targetKeyId: "",
  processed: 0,
  rewrapped: 0,
  total: 0,
  startTime: undefined,
  updateTime: undefined,
  holder: "",
  error: "",
  generation: 0,
  phase: "secrets",
  after: "",
};

/** Runs and supervises the re-wrap job on this replica. */
export class RewrapJob {
  readonly holder = `replica-${randomUUID()}`;
  private running: Promise<void> | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly leaseMs: number;
  private readonly batchSize: number;
  private readonly pauseMs: number;

  constructor(
    private readonly store: RewrapStore,
    private readonly ring: KeyRing,
    private readonly options: RewrapOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 10_000;
    this.batchSize = options.batchSize ?? 100;
    this.pauseMs = options.pauseMs ?? 20;
  }

  /** The recorded job state. */
  async status(): Promise<RewrapJobState> {
    return (await this.store.getJob()) ?? idle;
  }

  usage(): Promise<Map<string, KeyUsageCounts>> {
    return this.store.usage();
  }

  /**
   * Starts a job towards the active key, unless one is running under a live lease (then that
   * one is returned). A job that finished or failed is started afresh.
   */
  async start(): Promise<RewrapJobState> {
    const current = await this.status();
    if (current.state === "running" && (await this.leaseAlive(current.generation))) return current;
    const generation = current.generation + 1;
    if (!(await this.store.claimLease(generation, this.holder, this.leaseUntil())))
      return this.status();
    const usage = await this.store.usage();
    let total = 0;
    for (const [id, u] of usage)
      if (id !== this.ring.activeId) total += u.values + u.history + u.namespaceKeys;
    const now = new Date();
    const job: RewrapJobState = {
      ...idle,
      state: "running",
      targetKeyId: this.ring.activeId,
      total,
      startTime: now,
      updateTime: now,
      holder: this.holder,
      generation,
    };
    await this.store.saveJob(job);
    this.launch(job);
    return job;
  }

  /** Checks now and then for a running job whose holder's lease lapsed, and takes it over. */
  supervise(): void {
    if (this.timer) return;
    this.timer = setInterval(
      () => void this.takeOverIfOrphaned().catch((e) => this.options.onError?.(e)),
      this.options.checkEveryMs ?? 5000,
    );
    this.timer.unref();
  }

  /** Stops supervising and waits for this replica's run to pause; the lease then lapses. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopping = true;
    await this.running;
  }

  /** Takes over a running job whose lease lapsed; true when this replica now runs it. */
  async takeOverIfOrphaned(): Promise<boolean> {
    if (this.running) return false;
    const job = await this.store.getJob();
    if (job?.state !== "running" || (await this.leaseAlive(job.generation))) return false;
    const generation = job.generation + 1;
    if (!(await this.store.claimLease(generation, this.holder, this.leaseUntil()))) return false;
    // Resume where the previous holder recorded it was; re-doing its last batch is harmless.
    const resumed: RewrapJobState = {
      ...job,
      holder: this.holder,
      generation,
      targetKeyId: this.ring.activeId,
      updateTime: new Date(),
    };
    await this.store.saveJob(resumed);
    this.launch(resumed);
    return true;
  }

  private launch(job: RewrapJobState): void {
    this.running = this.run(job)
      .catch(async (err: unknown) => {
        this.options.onError?.(err);
        await this.store.saveJob({
          ...job,
          state: "failed",
          error: err instanceof Error ? err.message : String(err),
          updateTime: new Date(),
        });
      })
      .finally(() => {
        this.running = undefined;
      });
  }

  private async run(start: RewrapJobState): Promise<void> {
    let job = start;
    while (!this.stopping) {
      // Another replica took over (our lease lapsed while we were paused): stop at once.
      const recorded = await this.store.getJob();
      if (recorded && recorded.generation !== job.generation) return;
      await this.store.renewLease(job.generation, this.leaseUntil());
      const ids = await this.store.batch(job.phase, job.after, this.batchSize);
      if (ids.length === 0) {
        const next = rewrapPhases[rewrapPhases.indexOf(job.phase) + 1];
        job = next
          ? { ...job, phase: next, after: "", updateTime: new Date() }
          : { ...job, state: "done", updateTime: new Date() };
        await this.store.saveJob(job);
        if (job.state === "done") {
          this.options.onProgress?.(job, 0);
          return;
        }
        continue;
      }
      let rewrapped = 0;
      for (const id of ids) if (await this.store.rewrap(job.phase, id, this.ring)) rewrapped++;
      job = {
        ...job,
        processed: job.processed + ids.length,
        rewrapped: job.rewrapped + rewrapped,
        after: ids.at(-1) ?? job.after,
        updateTime: new Date(),
      };
      await this.store.saveJob(job);
      this.options.onProgress?.(job, Math.max(0, job.total - job.rewrapped));
      await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
    }
  }

  private async leaseAlive(generation: number): Promise<boolean> {
    const lease = await this.store.getLease(generation);
    return lease !== undefined && lease.until.getTime() > Date.now();
  }

  private leaseUntil(): Date {
    return new Date(Date.now() + this.leaseMs);
  }
}
