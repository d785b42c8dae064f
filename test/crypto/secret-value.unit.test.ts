import { Console } from "node:console";
import { Writable } from "node:stream";
import { format, inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { SecretValue } from "../../src/crypto/secret-value.js";

const PLAINTEXT = "hunter2-correct-horse-battery";

function captureConsole(): { console: Console; output: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    console: new Console({ stdout: sink, stderr: sink, colorMode: false }),
    output: () => chunks.join(""),
  };
}

describe("SecretValue", () => {
  it("holds the plaintext it was given", () => {
    const value = SecretValue.fromString(PLAINTEXT);
    expect(value.unsafeRevealString()).toBe(PLAINTEXT);
    expect(Buffer.from(value.unsafeRevealBytes()).toString("utf8")).toBe(PLAINTEXT);
    expect(value.byteLength).toBe(Buffer.byteLength(PLAINTEXT));
  });

  it("round-trips non-ASCII text and arbitrary bytes", () => {
    expect(SecretValue.fromString("pässwörd 🔑").unsafeRevealString()).toBe("pässwörd 🔑");
    const bytes = new Uint8Array([0, 255, 1, 254, 0]);
    expect(SecretValue.fromBytes(bytes).unsafeRevealBytes()).toEqual(bytes);
  });

  it("prints [REDACTED] through String, template literals, concatenation, JSON and inspect", () => {
    const value = SecretValue.fromString(PLAINTEXT);
    expect(String(value)).toBe("[REDACTED]");
    expect(`${value}`).toBe("[REDACTED]");
    expect(`password=${value}`).toBe("password=[REDACTED]");
    // biome-ignore lint/style/useTemplate: concatenation is the behaviour under test
    expect("password=" + value).toBe("password=[REDACTED]");
    expect(value.toString()).toBe("[REDACTED]");
    expect(JSON.stringify(value)).toBe('"[REDACTED]"');
    expect(JSON.stringify({ password: value })).toBe('{"password":"[REDACTED]"}');
    expect(inspect(value)).toBe("[REDACTED]");
    expect(inspect({ deep: { deeper: [value] } }, { depth: 10 })).toContain("[REDACTED]");
    expect(format("%s|%o|%O|%j", value, value, value, value)).toBe(
      '[REDACTED]|[REDACTED]|[REDACTED]|"[REDACTED]"',
    );
  });

  it("leaks nothing even where custom inspection is turned off or the object is copied", () => {
    const value = SecretValue.fromString(PLAINTEXT);
    const renderings = [
      inspect(value, { customInspect: false, showHidden: true, depth: 10 }),
      JSON.stringify({ ...value }),
      JSON.stringify(Object.getOwnPropertyNames(value)),
      inspect(structuredClone(value), { customInspect: false, showHidden: true }),
    ];
    for (const rendering of renderings) {
      expect(rendering).not.toContain(PLAINTEXT);
      expect(rendering).not.toContain("hunter2");
      // Bytes as a Uint8Array would show up as numbers: "104, 117, 110" is "hun".
      expect(rendering).not.toMatch(/104,\s*117,\s*110/);
    }
  });

  it("prints [REDACTED] through console.log, console.error, console.dir and format strings", () => {
    const { console, output } = captureConsole();
    const value = SecretValue.fromString(PLAINTEXT);
    console.log(value);
    console.log("%s / %o / %O / %j", value, value, value, value);
    console.log({ user: "ada", password: value });
    console.error("failed with", value);
    console.dir(value, { depth: 5 });
    console.table([{ value }]);
    const text = output();
    expect(text).toContain("[REDACTED]");
    expect(text).toContain("ada");
    expect(text).not.toContain("hunter2");
  });

  it("copies on the way in and on the way out", () => {
    const source = new Uint8Array([1, 2, 3]);
    const value = SecretValue.fromBytes(source);
    source.fill(9);
    expect(value.unsafeRevealBytes()).toEqual(new Uint8Array([1, 2, 3]));
    const revealed = value.unsafeRevealBytes();
    revealed.fill(7);
    expect(value.unsafeRevealBytes()).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("refuses every use after dispose, but still prints [REDACTED]", () => {
    const value = SecretValue.fromString(PLAINTEXT);
    const other = SecretValue.fromString(PLAINTEXT);
    expect(value.isDisposed).toBe(false);
    value.dispose();
    expect(value.isDisposed).toBe(true);
    expect(() => value.unsafeRevealBytes()).toThrow("SecretValue used after dispose()");
    expect(() => value.unsafeRevealString()).toThrow("SecretValue used after dispose()");
    expect(() => value.byteLength).toThrow("SecretValue used after dispose()");
    expect(() => value.equals(other)).toThrow("SecretValue used after dispose()");
    expect(() => other.equals(value)).toThrow("SecretValue used after dispose()");
    expect(String(value)).toBe("[REDACTED]");
    expect(JSON.stringify(value)).toBe('"[REDACTED]"');
    expect(() => value.dispose()).not.toThrow();
    expect(other.unsafeRevealString()).toBe(PLAINTEXT);
  });

  it("compares by content", () => {
    const a = SecretValue.fromString("same-length-1");
    expect(a.equals(SecretValue.fromString("same-length-1"))).toBe(true);
    expect(a.equals(SecretValue.fromString("same-length-2"))).toBe(false);
    expect(a.equals(SecretValue.fromString("same-length-1 "))).toBe(false);
    expect(a.equals(SecretValue.fromString(""))).toBe(false);
    expect(SecretValue.fromString("").equals(SecretValue.fromBytes(new Uint8Array()))).toBe(true);
  });

  it("refuses to decode bytes that are not UTF-8 as a string, without showing them", () => {
    const value = SecretValue.fromBytes(new Uint8Array([0x68, 0x69, 0xff]));
    expect(() => value.unsafeRevealString()).toThrow(
      new TypeError("secret value is not valid UTF-8; read it as bytes"),
    );
    expect(value.unsafeRevealBytes()).toEqual(new Uint8Array([0x68, 0x69, 0xff]));
  });

  it("tells whether it is UTF-8 text without revealing it", () => {
    expect(SecretValue.fromString("grüße ✓ 😀\u0000").isUtf8).toBe(true);
    expect(SecretValue.fromBytes(new Uint8Array([0x68, 0xff, 0xfe])).isUtf8).toBe(false);
    // A lone surrogate's would-be encoding (CESU-8) is not UTF-8 either.
    expect(SecretValue.fromBytes(new Uint8Array([0xed, 0xa0, 0x80])).isUtf8).toBe(false);
    const disposed = SecretValue.fromString("x");
    disposed.dispose();
    expect(() => disposed.isUtf8).toThrow("SecretValue used after dispose()");
  });
});
