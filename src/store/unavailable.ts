/**
 * Database outages as domain errors. Every store is wrapped so that a call that cannot be
 * answered now surfaces as DomainError "unavailable" (gRPC Unavailable, HTTP 503) rather than as
 * an internal error or a hang, and the caller knows to retry:
 *
 * - the database is down: the driver fails after server selection (SEALD_DB_TIMEOUT) with a
 *   network or selection error;
 * - the database stalls (a paused process, a hung host, a full disk): its sockets stay open and
 *   nothing answers. The driver's socket timeout closes the connection after SEALD_DB_TIMEOUT,
 *   but a retryable read then tries again, so each call is also raced against the timeout
 *   (deadline.ts) and answered at it;
 * - the caller's own deadline, when it passes a CallBounds as the last argument, ends the call
 *   sooner.
 *
 * A write answered "unavailable" may still happen (the database may have read it before it
 * stalled): the same as any timeout, and why every write is a compare-and-set or idempotent.
 */
import {
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
} from "mongodb";
import { CallBounds } from "../domain/deadline.js";
import { DomainError } from "../domain/errors.js";
import { bounded, type Expired } from "./deadline.js";

/** Driver errors without an exported class: a pool checkout that timed out or hit a closed pool. */
const unavailableNames = new Set(["MongoWaitQueueTimeoutError", "MongoPoolClosedError"]);

/** True for the driver errors that mean "the database cannot be reached now". */
export function isDatabaseUnavailable(err: unknown): boolean {
  return (
    // Network timeouts (MongoNetworkTimeoutError) and cleared pools are network errors too.
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError ||
    // A no-op since mongodb 7.8 (timeoutMS is ignored), kept should a future driver raise it.
    err instanceof MongoOperationTimeoutError ||
    (err instanceof Error && unavailableNames.has(err.name))
  );
}

function unavailable(): DomainError {
  return new DomainError("unavailable", "database unavailable, retry later");
}

function expired(which: Expired): DomainError {
  // The transport answers a passed caller deadline as DeadlineExceeded on its own; this is only
  // what the abandoned handler sees.
  return which === "caller deadline"
    ? new DomainError("unavailable", "deadline passed before the database answered")
    : unavailable();
}

function translate(err: unknown): never {
  if (isDatabaseUnavailable(err)) throw unavailable();
  throw err;
}

export interface OutageOptions {
  /** The most one store call may take (SEALD_DB_TIMEOUT). */
  readonly timeoutMs: number;
}

/**
 * Wraps a store so that every method's connectivity failures become "unavailable", and no
 * method's promise outlives the timeout, or the CallBounds passed as its last argument.
 */
export function translatingOutages<T extends object>(store: T, options: OutageOptions): T {
  const { timeoutMs } = options;
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const last = args[args.length - 1];
        const bounds = last instanceof CallBounds ? last : undefined;
        try {
          const result: unknown = value.apply(target, args);
          if (!(result instanceof Promise)) return result;
          return bounded(result.catch(translate), timeoutMs, bounds, expired);
        } catch (err) {
          return translate(err);
        }
      };
    },
  });
}
