/**
 * Vitest setup file (every test file): wraps fetch so that the secret values in JSON request
 * bodies sent to the REST dialects are remembered for the log scan (see plaintexts.ts).
 */
import { rememberValuesIn } from "./plaintexts.js";

const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  if (typeof init?.body === "string") {
    try {
      rememberValuesIn(JSON.parse(init.body));
    } catch {
      // Not JSON (bad-input tests send anything): nothing to remember.
    }
  }
  return realFetch(input, init);
};
