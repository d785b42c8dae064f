/**
 * Readiness: whether seald can serve requests, which today means whether the database answers.
 * One poller keeps a current value for Health/Watch; checks on demand (Health/Check, /readyz)
 * probe afresh so that a probe never answers from a stale cache.
 */

type Listener = (ready: boolean) => void;

/** Tracks whether a probe succeeds, polling it and notifying watchers on every change. */
export class Readiness {
  private ready = false;
  private inFlight: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly probe: () => Promise<boolean>,
    private readonly intervalMs = 1000,
  ) {}

  /** The last observed state. */
  get current(): boolean {
    return this.ready;
  }

  /** Starts polling in the background; the timer does not keep the process alive. */
  start(): void {
    if (this.timer) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Probes now; concurrent callers share one probe. */
  check(): Promise<boolean> {
    this.inFlight ??= this.probe()
      .catch(() => false)
      .then((ready) => {
        this.inFlight = undefined;
        this.set(ready);
        return ready;
      });
    return this.inFlight;
  }

  /** Yields the current state, then every change, until the signal aborts. */
  async *watch(signal: AbortSignal): AsyncGenerator<boolean> {
    const queue: boolean[] = [this.ready];
    let wake: (() => void) | undefined;
    const listener: Listener = (ready) => {
      queue.push(ready);
      wake?.();
    };
    const onAbort = () => wake?.();
    this.listeners.add(listener);
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      this.listeners.delete(listener);
      signal.removeEventListener("abort", onAbort);
    }
  }

  private set(ready: boolean): void {
    if (ready === this.ready) return;
    this.ready = ready;
    for (const listener of this.listeners) listener(ready);
  }
}
