// A default import on purpose. The package's ESM build (dist/modules-esm) has only `ready` and a
// few helpers (memzero, to_base64, ...) as named exports; every crypto_* function and constant is
// attached to the default object when `ready` resolves. Its .d.mts still declares them as named
// exports, so `import { crypto_box_seal } from "libsodium-wrappers"` type-checks and then fails at
// load time ("does not provide an export named 'crypto_box_seal'"). Checked with
// libsodium-wrappers 0.8.4 under node 20, tsx and vitest: the default import works in all three.
import sodium from "libsodium-wrappers";

/** The initialised libsodium-wrappers library. */
export type Sodium = typeof sodium;

let loading: Promise<Sodium> | undefined;
let loaded: Sodium | undefined;

/** Initialises libsodium's WebAssembly module once and resolves to the ready library. */
export function loadSodium(): Promise<Sodium> {
  loading ??= sodium.ready.then(() => {
    loaded = sodium;
    return sodium;
  });
  return loading;
}

/** Returns the library initialised by loadSodium(), or throws if start-up never awaited it. */
export function requireSodium(): Sodium {
  // The sealing functions are synchronous (they sit on the hot read path), so they cannot await
  // `ready` themselves. Before `ready`, the crypto_* members of the default export are simply
  // missing, which would surface as an obscure "is not a function"; this says what to do instead.
  if (loaded === undefined) {
    throw new Error("libsodium is not initialised: await loadSodium() at start-up");
  }
  return loaded;
}
