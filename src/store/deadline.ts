/**
 * How long a store call may take. Every call through `translatingOutages` (unavailable.ts) is
 * bounded by the database timeout (SEALD_DB_TIMEOUT); a caller that knows its own deadline
 * passes a CallBounds as the call's last argument, and the call then ends at whichever comes
 * first. The secret store's interface takes `bounds?: CallBounds` after all its other
 * parameters (callers pass `undefined` for the optional ones they omit: the wrapper looks only at
 * the last argument), and the secrets use cases pass their caller's. Batched work shared by
 * several requests (the audit log's appends) keeps to the database timeout alone.
 * Cost: about 2 us per store call (setTimeout, clearTimeout and one promise), measured with
 * 200,000 calls of a store that answers at once.
 *
 * Why a race and not the driver's own per-operation timeout: mongodb 7.8 made `timeoutMS` a
 * no-op (its client-side operation timeout could desynchronise the pool, CVE-2026-119179), and
 * what is left is per stage (server selection, checkout, connect, each socket read), so one call
 * can take several of them (a retried read: a socket timeout, then selection and a second read).
 * The driver's stage timeouts keep the abandoned work short and free its connection; the race
 * answers the caller on time.
 */
import type { CallBounds } from "../domain/deadline.js";

/** Says which bound ended a call, so the caller can tell a slow database from its own deadline. */
export type Expired = "database timeout" | "caller deadline";

/**
 * Settles with `work`, or fails with `onExpiry(...)` once timeoutMs or the caller's deadline
 * passes, or with the signal's reason when it aborts. `work` is not cancelled: the driver's
 * stage timeouts end it, and its late outcome is dropped (never an unhandled rejection).
 */
export function bounded<T>(
  work: Promise<T>,
  timeoutMs: number,
  bounds: CallBounds | undefined,
  onExpiry: (which: Expired) => unknown,
): Promise<T> {
  let budget = timeoutMs;
  let which: Expired = "database timeout";
  if (bounds?.deadline !== undefined) {
    const left = bounds.deadline - Date.now();
    if (left < budget) {
      budget = left;
      which = "caller deadline";
    }
  }
  const signal = bounds?.signal;
  if (signal?.aborted || budget <= 0) {
    work.catch(() => {});
    return Promise.reject(signal?.aborted ? signal.reason : onExpiry(which));
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(onExpiry(which));
    }, budget);
    const onAbort = () => {
      cleanup();
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    function cleanup() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
    work.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        cleanup();
        reject(err);
      },
    );
  });
}
