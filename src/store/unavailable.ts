/**
 * Database outages as domain errors. While MongoDB is unreachable the driver fails each operation
 * after its server-selection timeout (2 s) with a network or selection error; the stores are
 * wrapped so those surface as DomainError "unavailable" (gRPC Unavailable, HTTP 503) rather than
 * as internal errors, and the caller knows to retry.
 */
import {
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
} from "mongodb";
import { DomainError } from "../domain/errors.js";

/** True for the driver errors that mean "the database cannot be reached now". */
export function isDatabaseUnavailable(err: unknown): boolean {
  return (
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError
  );
}

function translate(err: unknown): never {
  if (isDatabaseUnavailable(err))
    throw new DomainError("unavailable", "database unavailable, retry later");
  throw err;
}

/** Wraps a store so that every method's connectivity failures become "unavailable". */
export function translatingOutages<T extends object>(store: T): T {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        try {
          const result: unknown = value.apply(target, args);
          return result instanceof Promise ? result.catch(translate) : result;
        } catch (err) {
          return translate(err);
        }
      };
    },
  });
}
