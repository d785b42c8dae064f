import { isUtf8 } from "node:buffer";
import { timingSafeEqual } from "node:crypto";
import { inspect } from "node:util";

const REDACTED = "[REDACTED]";

const encoder = new TextEncoder();
// fatal: a lenient decoder would silently turn a binary value into U+FFFD garbage.
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Plaintext of a secret that prints, serialises and inspects as `[REDACTED]`; reading it takes an
 * `unsafeReveal*` call that reviewers can grep for.
 */
export class SecretValue {
  // An ES private field rather than a TypeScript `private`: util.inspect, Object.keys, spreading,
  // structuredClone and JSON.stringify cannot see it, even with customInspect turned off.
  #bytes: Uint8Array | undefined;

  private constructor(owned: Uint8Array) {
    this.#bytes = owned;
  }

  /** Wraps the UTF-8 encoding of a string. */
  static fromString(plaintext: string): SecretValue {
    return new SecretValue(encoder.encode(plaintext));
  }

  /** Wraps a copy of the given bytes, so the caller may zero or reuse its own buffer. */
  static fromBytes(plaintext: Uint8Array): SecretValue {
    return new SecretValue(Uint8Array.from(plaintext));
  }

  /** Length of the plaintext in bytes. */
  get byteLength(): number {
    return this.#live().byteLength;
  }

  /** Whether the plaintext is valid UTF-8, so unsafeRevealString() would succeed. Reveals nothing else. */
  get isUtf8(): boolean {
    return isUtf8(this.#live());
  }

  /** Whether dispose() has been called. */
  get isDisposed(): boolean {
    return this.#bytes === undefined;
  }

  /** Returns a copy of the plaintext bytes; the caller should zero it when done. */
  unsafeRevealBytes(): Uint8Array {
    return Uint8Array.from(this.#live());
  }

  /**
   * Returns the plaintext decoded as UTF-8, throwing if it is not valid UTF-8; JavaScript strings
   * cannot be zeroed, so prefer unsafeRevealBytes() where the caller can take bytes.
   */
  unsafeRevealString(): string {
    try {
      return strictDecoder.decode(this.#live());
    } catch (err) {
      if (err instanceof TypeError) {
        // The decoder's own message carries no content, but say plainly what went wrong.
        throw new TypeError("secret value is not valid UTF-8; read it as bytes");
      }
      throw err;
    }
  }

  /** Compares two values in time that depends only on their lengths. */
  equals(other: SecretValue): boolean {
    const a = this.#live();
    const b = other.#live();
    // Lengths are not secret here: the API reports byteLength anyway.
    return a.byteLength === b.byteLength && timingSafeEqual(a, b);
  }

  /** Zeroes the plaintext; every later use except printing throws. Calling it twice is harmless. */
  dispose(): void {
    this.#bytes?.fill(0);
    this.#bytes = undefined;
  }

  /** Returns `[REDACTED]`. */
  toString(): string {
    return REDACTED;
  }

  /** Returns `[REDACTED]`, so JSON.stringify and JSON loggers such as pino never see plaintext. */
  toJSON(): string {
    return REDACTED;
  }

  /** Returns `[REDACTED]` for template literals, string concatenation and `+value`. */
  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  /** Returns `[REDACTED]` for util.inspect, console.log and the REPL. */
  [inspect.custom](): string {
    return REDACTED;
  }

  #live(): Uint8Array {
    if (this.#bytes === undefined) {
      throw new Error("SecretValue used after dispose()");
    }
    return this.#bytes;
  }
}
